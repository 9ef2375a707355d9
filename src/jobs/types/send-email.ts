import { z } from 'zod';
import { deliver } from '../../lib/mailer.js';
import { defineJobType } from '../job-type.js';

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
  const fill = (escape: (s: string) => string) =>
    TEMPLATES[template].text.replace(/\{\{(\w+)\}\}/g, (_, key: string) => escape(String(params[key] ?? '')));
  const text = fill((s) => s);
  const html = `<!doctype html><html><body><p>${fill(escapeHtml).replace(/\n/g, '<br>')}</p></body></html>`;
  return { text, html };
}

const paramValue = z.union([z.string().max(2000), z.number(), z.boolean()]);
const requiredParam = (template: TemplateName, name: string) =>
  z.union([z.string().max(2000), z.number(), z.boolean()], {
    error: (issue) => (issue.input === undefined ? `template "${template}" needs param "${name}"` : 'must be a string of at most 2000 characters, a number or a boolean'),
  });

/**
 * A template's params: any placeholder values, its required ones by name. Required in the
 * schema itself (one variant per template) rather than checked afterwards, so the spec and
 * the generated client say what each template needs (Schemathesis found a `plain` without
 * `body` that the spec allowed and the service refused).
 */
const paramsFor = (template: TemplateName) =>
  z
    .record(z.string().regex(/^\w{1,50}$/), paramValue)
    .and(z.object(Object.fromEntries(TEMPLATES[template].params.map((name) => [name, requiredParam(template, name)]))))
    .meta({ description: `Values for the template placeholders; "${template}" needs ${TEMPLATES[template].params.join(', ')}.` });

const variant = <T extends TemplateName>(template: T) =>
  z.strictObject({
    to: z.email().max(254).meta({ description: 'Recipient address.' }),
    subject: z.string().min(1).max(200).meta({ description: 'Subject line.' }),
    template: z.literal(template).meta({
      description: 'reminder (params: title, note?), digest (params: count), plain (params: body).',
    }),
    params: paramsFor(template),
  });

const payload = z.discriminatedUnion('template', [variant('reminder'), variant('digest'), variant('plain')]);

export const sendEmail = defineJobType({
  name: 'sendEmail',
  summary: 'Renders a named template and sends it by email.',
  payload,
  roles: ['user', 'admin'],
  async handler(p, ctx) {
    const { text, html } = render(p.template, p.params);
    // The Message-ID is the run's, so a duplicate delivery of one run is recognisable downstream.
    const delivery = await deliver(
      { to: p.to, subject: p.subject, text, html, messageId: `<run-${ctx.runId}@cron-jobs>` },
      ctx.config,
    );
    ctx.logger.info({ delivery }, 'email sent');
    return { ...delivery };
  },
});
