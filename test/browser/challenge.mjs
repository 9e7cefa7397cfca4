// Drives real headless Chromium (Debian's chromium, through playwright-core)
// against a shield in under-attack mode and prints what happened as one
// JSON line; internal/app/mitigation_browser_test.go runs it and asserts.
//
//   node challenge.mjs --base http://127.0.0.1:PORT --mode MODE
//
// Modes:
//   js          JavaScript on: the interstitial's Web Worker solves the proof
//               of work and the page submits itself.
//   nojs-form   JavaScript off: the person waits, then presses the form's
//               Continue button (the meta refresh is held back so that the
//               button is what is tested).
//   nojs-wait   JavaScript off: the person does nothing; the <noscript> meta
//               refresh redeems the challenge.
// Then, in every mode, the donation form is filled in and submitted, and the
// exact request body the browser sent is reported with its SHA-256 next to
// the receipt's.
//
// Exit status: 0 with the JSON result (assertions are the Go test's), 2 when
// the browser could not be driven at all.

import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const base = arg('base');
const mode = arg('mode', 'js');
const executablePath = process.env.PORTCULLIS_CHROMIUM || '/usr/bin/chromium';
const watchdog = setTimeout(() => { console.error('challenge.mjs: watchdog: 90s passed'); process.exit(2); }, 90_000);

// The donation the person types; the textarea's newline is sent as CRLF.
export const donation = {
  amount: '25.50',
  name: 'Ada Lovelace-Byron',
  email: 'ada@example.org',
  message: 'Keep going! ünïcode & symbols = fine; 100% + more\nsecond line',
};

async function main() {
  if (!base) throw new Error('--base required');
  const userDataDir = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
  const out = { mode, chromium: '', requests: [] };
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      javaScriptEnabled: mode === 'js',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 30_000,
    });
    out.chromium = ctx.browser() ? ctx.browser().version() : '';
    const page = ctx.pages()[0] || await ctx.newPage();
    page.setDefaultTimeout(30_000);
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.origin !== new URL(base).origin) return;
      const e = { method: r.method(), path: u.pathname };
      if (u.pathname === '/.portcullis/verify') {
        const form = new URLSearchParams(r.method() === 'POST' ? (r.postData() || '') : u.search);
        e.nonce = form.get('n') || '';
      }
      out.requests.push(e);
    });
    page.on('response', (r) => {
      const u = new URL(r.url());
      for (let i = out.requests.length - 1; i >= 0; i--) {
        const e = out.requests[i];
        if (e.path === u.pathname && e.method === r.request().method() && e.status === undefined) {
          e.status = r.status();
          break;
        }
      }
    });
    if (mode === 'nojs-form') {
      // Hold back the meta refresh (a GET of the verify endpoint): the
      // person presses the button first.
      await page.route('**/.portcullis/verify?*', (route) =>
        route.request().method() === 'GET' ? route.abort('aborted') : route.continue());
    }

    // 1. The interstitial. Its body is taken as it passes (a route that
    // fetches and fulfils the first navigation): with JavaScript the page
    // can be solved and gone before response.text() could ask for it.
    let firstHtml = null;
    await page.route(base + '/', async (route) => {
      if (firstHtml !== null || route.request().method() !== 'GET') return route.continue();
      const resp = await route.fetch();
      firstHtml = await resp.text();
      await route.fulfill({ response: resp, body: firstHtml });
    });
    const t0 = Date.now();
    const first = await page.goto(base + '/', { waitUntil: 'domcontentloaded' });
    out.interstitialStatus = first.status();
    out.interstitialHeaders = { 'cache-control': first.headers()['cache-control'] || '', 'retry-after': first.headers()['retry-after'] || '' };
    // From the response itself: with JavaScript the page may already be
    // gone (solved and submitted) by the time the DOM could be asked.
    const html = firstHtml ?? await first.text();
    out.interstitialTitle = (html.match(/<title>([^<]*)<\/title>/) || [])[1] || '';
    out.interstitialLang = (html.match(/<html lang="([^"]*)"/) || [])[1] || '';
    out.interstitialHasForm = html.includes('<form id="pc-form"');

    // 2. Through it.
    if (mode === 'nojs-form') {
      const issued = Date.now();
      await page.waitForTimeout(5_300); // the person reads the page for five seconds
      out.waitedMs = Date.now() - issued;
      // Without scripting, <noscript> content is ordinary markup: its
      // Continue button is the form's only visible submit button.
      await page.locator('#pc-form button[type=submit]:visible').first().click({ noWaitAfter: true });
    }
    await page.waitForSelector('#hero-title', { timeout: 45_000 });
    out.landedMs = Date.now() - t0;
    out.landedTitle = await page.title();
    out.landedURL = page.url();
    out.cookies = (await ctx.cookies(base)).map((c) => c.name).sort();

    // 3. The donation form, body intact.
    const form = await page.goto(base + '/donate');
    out.donateFormStatus = form.status();
    await page.fill('#amount', donation.amount);
    await page.fill('#name', donation.name);
    await page.fill('#email', donation.email);
    await page.fill('#message', donation.message);
    const [req] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/donate'),
      page.click('form.form button[type=submit]'),
    ]);
    const resp = await req.response();
    const sent = req.postDataBuffer() || Buffer.alloc(0);
    await page.waitForSelector('#body-sha256');
    out.donation = {
      status: resp ? resp.status() : 0,
      contentType: (await req.headerValue('content-type')) || '',
      sentBody: sent.toString('latin1'),
      sentSha256: createHash('sha256').update(sent).digest('hex'),
      receiptSha256: (await page.textContent('#body-sha256')).trim(),
      headerSha256: resp ? (resp.headers()['x-demo-body-sha256'] || '') : '',
    };
  } finally {
    if (ctx) await ctx.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(() => { clearTimeout(watchdog); process.exit(0); }, (err) => {
  console.error('challenge.mjs: ' + (err && err.stack || err));
  process.exit(2);
});
