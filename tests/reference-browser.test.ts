import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumExecutable } from './helpers/chromium.js';
import { type Harness, startHarness } from './helpers/harness.js';

const SCREENSHOT = '.local/artifacts/reference.png';
const spec = JSON.parse(readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8'));
const operations = Object.entries(spec.paths as Record<string, Record<string, { summary: string }>>).flatMap(
  ([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, summary: op.summary })),
);

let h: Harness;
let browser: Browser;
beforeAll(async () => {
  const executablePath = await chromiumExecutable();
  h = await startHarness();
  // Driven by playwright-core, which downloads no browser of its own.
  browser = await chromium.launch({
    executablePath,
    // No name resolves except loopback: the page cannot reach the internet even if it tried.
    args: ['--no-sandbox', '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1'],
  });
});
afterAll(async () => {
  await browser?.close();
  await h?.stop();
});

describe('the hosted reference in a real browser, offline', () => {
  it('renders every operation from the service alone, sends a "Try it" request, and is saved as a screenshot', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // Every request leaving loopback is refused and recorded.
    const outside: string[] = [];
    await page.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
      outside.push(url.href);
      return route.abort('internetdisconnected');
    });
    // What the console says: Scalar's document validation and any failed load (a favicon 404) are errors.
    const consoleErrors: string[] = [];
    page.on('console', async (message) => {
      if (message.type() !== 'error' && message.type() !== 'warning') return;
      // The objects logged with the text (Scalar logs its errors as such), as JSON.
      const args = await Promise.all(message.args().map((a) => a.jsonValue().catch(() => String(a))));
      consoleErrors.push(`${message.type()}: ${JSON.stringify(args).slice(0, 4000)}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`pageerror: ${error.message}`));
    const failed: string[] = [];
    page.on('response', (r) => {
      if (r.status() >= 400 && new URL(r.url()).pathname !== '/api/cron/job-types')
        failed.push(`${r.status()} ${r.url()}`);
    });
    await page.goto(`${h.baseUrl}/reference`);

    // Each operation has its "Test Request" button, named by method and path, and its summary in the sidebar.
    for (const { method, path, summary } of operations) {
      await expect
        .poll(() => page.getByRole('button', { name: `Test Request (${method} ${path})`, exact: true }).count(), {
          timeout: 20_000,
          message: `${method} ${path}`,
        })
        .toBe(1);
      expect(await page.getByText(summary, { exact: true }).count(), summary).toBeGreaterThan(0);
    }
    mkdirSync('.local/artifacts', { recursive: true });
    await page.screenshot({ path: SCREENSHOT });

    // Try it: the token goes in the page's authentication box, the request to this service.
    await page
      .getByRole('textbox', { name: 'Bearer Token' })
      .first()
      .fill(await h.token('browser-user'));
    await page.getByRole('button', { name: 'Test Request (get /api/cron/job-types)', exact: true }).click();
    const answered = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/cron/job-types');
    await page.getByRole('button', { name: /^Send get request to / }).click();
    const response = await answered;
    expect(response.status()).toBe(200);
    expect(response.request().headers().authorization).toMatch(/^Bearer ey/);
    const body = (await response.json()) as { items: { name: string }[] };
    expect(body.items.map((t) => t.name)).toEqual(['sendEmail', 'generateReport']);
    // The client shows the answer.
    await expect.poll(() => page.getByText('"generateReport"').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-try-it.png') });

    expect(outside).toEqual([]);
    // No failed load (the favicon included) and nothing Scalar's document validation complains about.
    expect(failed).toEqual([]);
    expect(consoleErrors).toEqual([]);
    const icon = await fetch(`${h.baseUrl}/favicon.ico`);
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(20_000);
  }, 90_000);
});
