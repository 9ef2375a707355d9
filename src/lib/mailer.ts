import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import nodemailer from 'nodemailer';
import type { Env } from '../env.js';

export interface Mail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Stable per run, so a receiver can drop a duplicate delivery. */
  messageId: string;
}

/** The configuration variables `deliver` reads. */
export const MAIL_SETTINGS = ['SMTP_URL', 'MAIL_FROM', 'OUTBOX_DIR'] as const;

export type Delivery = { via: 'smtp'; messageId: string; accepted: string[] } | { via: 'outbox'; file: string };

/**
 * Sends through SMTP_URL when it is set; otherwise writes the message as an .eml file into
 * OUTBOX_DIR, named by message id, so a repeated run overwrites rather than duplicates.
 */
export async function deliver(mail: Mail, config: Pick<Env, (typeof MAIL_SETTINGS)[number]>): Promise<Delivery> {
  const message = { from: config.MAIL_FROM, ...mail };
  if (config.SMTP_URL) {
    // Bounded well inside a run's lock lifetime; nodemailer's own socket timeout is 10 minutes.
    const transport = nodemailer.createTransport({
      url: config.SMTP_URL,
      connectionTimeout: 15_000,
      greetingTimeout: 15_000,
      socketTimeout: 60_000,
    });
    try {
      const info = await transport.sendMail(message);
      return { via: 'smtp', messageId: info.messageId, accepted: info.accepted.map(String) };
    } finally {
      transport.close();
    }
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const info = await transport.sendMail(message);
  const dir = resolve(config.OUTBOX_DIR);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${mail.messageId.replace(/^<|>$/g, '').replace(/[^A-Za-z0-9.@_-]/g, '_')}.eml`);
  await writeFile(file, info.message as Buffer);
  return { via: 'outbox', file };
}
