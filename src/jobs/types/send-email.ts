import { z } from 'zod';
import type { Env } from '../../env.js';
import { deliver, MAIL_SETTINGS } from '../../lib/mailer.js';
import { defineJobType, type PayloadRefusal, PermanentError } from '../job-type.js';

/** The named templates; `{{param}}` is replaced by the payload's params, HTML-escaped in the HTML part. */
const TEMPLATES = {
  reminder: { params: ['title'], text: 'Reminder: {{title}}\n\n{{note}}' },
  digest: { params: ['count'], text: 'You have {{count}} new items since your last digest.' },
  plain: { params: ['body'], text: '{{body}}' },
} as const satisfies Record<string, { params: readonly string[]; text: string }>;

type TemplateName = keyof typeof TEMPLATES;

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function render(template: TemplateName, params: Record<string, string | number | boolean>) {
  const fill = (escapeValue: (s: string) => string) =>
    TEMPLATES[template].text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => escapeValue(String(params[key] ?? '')));
  const text = fill((s) => s);
  const html = `<!doctype html><html><body><p>${fill(escapeHtml).replace(/\n/g, '<br>')}</p></body></html>`;
  return { text, html };
}

const paramValue = z.union([z.string().max(2000), z.number(), z.boolean()]);
const requiredParam = (template: TemplateName, name: string) =>
  z.union([z.string().max(2000), z.number(), z.boolean()], {
    error: (issue) =>
      issue.input === undefined
        ? `template "${template}" needs param "${name}"`
        : 'must be a string of at most 2000 characters, a number or a boolean',
  });

/**
 * zod's email pattern plus RFC 5321's lengths (local part 64, domain label 63), published in
 * the spec so it accepts exactly what the service does (Schemathesis sent a 100-character
 * local part that zod took and the spec's email format does not).
 */
const EMAIL =
  // The spec publishes this source; unescaped, oasdiff reads the same pattern as another (breaking).
  // biome-ignore lint/complexity/noUselessEscapeInRegex: see above
  /^(?=[^@]{1,64}@)(?:[A-Za-z0-9_'+\-]+\.)*[A-Za-z0-9_'+\-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9\-]{0,62}\.)+[A-Za-z]{2,63}$/;

// ASCII spelled out: a JSON Schema \w is Unicode in some validators, in JavaScript it is not.
const PARAM_NAME = /^[A-Za-z0-9_]{1,50}$/;

/**
 * A template's params: any placeholder values, its required ones by name. Required in the
 * schema itself (one variant per template) rather than checked afterwards, so the spec and
 * the generated client say what each template needs (Schemathesis found a `plain` without
 * `body` that the spec allowed and the service refused). Not `record.and(object)`: zod's
 * intersection then drops badly named keys silently instead of refusing them.
 */
const needs = (template: TemplateName) => TEMPLATES[template].params.join(', ');

const paramsFor = (template: TemplateName) =>
  z
    .object(Object.fromEntries(TEMPLATES[template].params.map((name) => [name, requiredParam(template, name)])))
    .catchall(paramValue)
    .superRefine((params, ctx) => {
      for (const key of Object.keys(params)) {
        if (!PARAM_NAME.test(key))
          ctx.addIssue({ code: 'custom', path: [key], message: 'param names are 1-50 letters, digits or _' });
      }
    })
    .meta({
      description: `Values for the template placeholders; "${template}" needs ${needs(template)}.`,
      propertyNames: { pattern: PARAM_NAME.source },
    });

const variant = <T extends TemplateName>(template: T) =>
  z.strictObject({
    to: z.email({ pattern: EMAIL }).max(254).meta({ description: 'Recipient address.', pattern: EMAIL.source }),
    subject: z.string().min(1).max(200).meta({ description: 'Subject line.' }),
    template: z.literal(template).meta({
      description: 'reminder (params: title, note?), digest (params: count), plain (params: body).',
    }),
    params: paramsFor(template),
  });

const payload = z.discriminatedUnion('template', [variant('reminder'), variant('digest'), variant('plain')]);

/** The configuration variables `recipientRefusal` reads. */
const RECIPIENT_RULES = ['EMAIL_ALLOWED_DOMAINS', 'EMAIL_ALLOW_OWN_ADDRESS'] as const;

/**
 * Whom an email may go to, so the service cannot be used to mail strangers: an address at one of
 * EMAIL_ALLOWED_DOMAINS (exact domain, any case), or, with EMAIL_ALLOW_OWN_ADDRESS, the author's
 * own verified address from the token.
 */
export function recipientRefusal(
  to: string,
  config: Pick<Env, (typeof RECIPIENT_RULES)[number]>,
  authorEmail: string | null,
): PayloadRefusal | undefined {
  const address = to.trim().toLowerCase();
  const domain = address.slice(address.lastIndexOf('@') + 1);
  if (config.EMAIL_ALLOWED_DOMAINS.includes(domain)) return undefined;
  if (config.EMAIL_ALLOW_OWN_ADDRESS && authorEmail && authorEmail.trim().toLowerCase() === address) return undefined;
  const allowed = [
    ...(config.EMAIL_ALLOWED_DOMAINS.length ? [`an address at ${config.EMAIL_ALLOWED_DOMAINS.join(', ')}`] : []),
    ...(config.EMAIL_ALLOW_OWN_ADDRESS ? ['your own address (the email claim of your token)'] : []),
  ];
  return {
    path: 'to',
    message: `recipient not allowed: send to ${
      allowed.join(' or ') || 'nobody (email is turned off by the configuration)'
    }`,
  };
}

/** An address `recipientRefusal` lets this author send to: their own, else one at an allowed domain. */
function allowedRecipient(config: Pick<Env, (typeof RECIPIENT_RULES)[number]>, authorEmail: string | null) {
  if (config.EMAIL_ALLOW_OWN_ADDRESS && authorEmail) return authorEmail;
  const domain = config.EMAIL_ALLOWED_DOMAINS[0];
  return domain ? `someone@${domain}` : undefined;
}

const example = { to: 'me@example.com', subject: 'Your digest', template: 'digest', params: { count: 3 } } as const;

export const sendEmail = defineJobType({
  name: 'sendEmail',
  label: 'Send an email',
  summary: 'Renders a named template and sends it by email.',
  payload,
  example,
  // With no address allowed at all (no allowed domain, no email claim) email is off for this caller;
  // the example then keeps its placeholder, and creating it is refused as the docs say.
  exampleFor: ({ rules, authorEmail }) => ({ ...example, to: allowedRecipient(rules, authorEmail) ?? example.to }),
  roles: ['user', 'admin'],
  // An SMTP server that stops answering must not hold a worker slot for long; a refused
  // delivery is usually temporary, so it is retried.
  policy: { timeoutMs: 30_000, maxAttempts: 3, backoffMs: 5_000 },
  settings: [...RECIPIENT_RULES, ...MAIL_SETTINGS],
  payloadRules: RECIPIENT_RULES,
  checkPayload: (p, { rules, authorEmail }) => recipientRefusal(p.to, rules, authorEmail),
  async handler(p, ctx) {
    // Checked again at run time: the configuration may have narrowed since the job was saved.
    const refusal = recipientRefusal(p.to, ctx.settings, ctx.payloadAuthorEmail);
    // Permanent: retrying cannot make the recipient allowed.
    if (refusal) throw new PermanentError(`not sent: ${refusal.message}`);
    const { text, html } = render(p.template, p.params);
    // The Message-ID is the run's, so a duplicate delivery of one run is recognisable downstream.
    const delivery = await deliver(
      { to: p.to, subject: p.subject, text, html, messageId: `<run-${ctx.runId}@cron-jobs>` },
      ctx.settings,
    ).catch((error: { responseCode?: number; message?: string }) => {
      // 5xx is the server's final word (unknown mailbox, refused sender); 4xx and network errors may pass.
      if ((error.responseCode ?? 0) >= 500)
        throw new PermanentError(`the mail server refused the message: ${error.message}`);
      throw error;
    });
    ctx.logger.info({ delivery }, 'email sent');
    return { ...delivery };
  },
});
