// The dashboard page in Debian's Chromium, driven by playwright-core (never a downloaded browser):
// real traffic on every front, then what an operator sees and does.
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPS_TOKEN, scrape, startBusyServer, type BusyServer } from './busy-server.js';

const CHROMIUM = '/usr/bin/chromium';
/** Where the screenshot goes (gitignored); CI keeps it with the run's output. */
const OUTPUT = fileURLToPath(new URL('../../test-results/', import.meta.url));
// Headless, and none of the background connections this machine's closed network refuses.
const ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// What the functions run in the page touch (they run in Chromium; this program has no DOM types).
interface PageElement {
  readonly textContent: string | null;
  querySelector(selector: string): PageElement | null;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
  readonly body: { readonly classList: { contains(name: string): boolean } };
};

const missing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is missing (apt-get install chromium; .ci/run does)`;
if (missing && process.env.CI === 'true') throw new Error(`CI=true: ${missing}`);

describe.skipIf(missing !== null)(`dashboard in Chromium${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let browser: Browser;
  let busy: BusyServer;
  let page: Page;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    busy = await startBusyServer({}, { keep: true });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (dialog) => void dialog.accept());
    await page.goto(`${busy.ops}/`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await busy?.close();
  });

  it('asks for the ops token, refuses a wrong one, and goes live with the right one', async () => {
    await page.locator('#login-panel').waitFor({ state: 'visible' });
    await expect(page.locator('#main').isHidden()).resolves.toBe(true);
    await page.fill('#token', 'not-the-token-0123456789');
    await page.click('#login button[type=submit]');
    await page.locator('#login-error', { hasText: 'That token was refused.' }).waitFor();
    await page.fill('#token', OPS_TOKEN);
    await page.click('#login button[type=submit]');
    await page.locator('#status', { hasText: 'live' }).waitFor();
    await expect(page.locator('#login-panel').isHidden()).resolves.toBe(true);
  });

  it('shows the figures /metrics has, per front', async () => {
    const metrics = await scrape(busy.ops);
    // A snapshot taken after the scrape: nothing moves, so both must agree.
    const before = await page.locator('#updated').textContent();
    await page.waitForFunction((text) => document.getElementById('updated')?.textContent !== text, before);
    const shown = await page.$$eval('[data-metric]', (nodes) =>
      nodes.map((node) => [node.getAttribute('data-metric') ?? '', Number(node.getAttribute('data-value'))] as const),
    );
    const names = shown.map(([name]) => name);
    for (const expected of ['noray_active_hosts', 'noray_relay_count', 'noray_relay_packets_total', 'noray_lobby_lobbies', 'noray_wsrelay_clients', 'noray_tcprelay_ids']) {
      expect(names).toContain(expected);
    }
    for (const [name, value] of shown) expect([name, value]).toEqual([name, metrics.get(name) ?? 0]);
    expect(await page.locator('[data-front="noray"] dd[data-metric="noray_relay_packets_total"]').textContent()).toBe('30');
    expect(await page.locator('[data-front="wsrelay"] dd[data-metric="noray_wsrelay_clients"]').textContent()).toBe('2');
    // One connect pair of one went on to connect-relay.
    await expect(page.locator('[data-front="noray"] dd').filter({ hasText: '100 %' }).count()).resolves.toBeGreaterThan(0);
    await expect(page.locator('#chart canvas').count()).resolves.toBeGreaterThan(0);
    mkdirSync(OUTPUT, { recursive: true });
    await page.screenshot({ path: `${OUTPUT}dashboard.png`, fullPage: true });
  });

  it('filters the host table by the search box', async () => {
    const hosts = page.locator('[data-table="noray.hosts"] tbody tr');
    await expect(hosts.count()).resolves.toBe(2);
    await page.fill('#search', 'alph');
    await page.waitForFunction(() => document.querySelectorAll('[data-table="noray.hosts"] tbody tr').length === 1);
    await expect(hosts.first().locator('td').first().textContent()).resolves.toBe('alpha-host');
    await expect(page.locator('[data-table="wsrelay.rooms"] .empty').textContent()).resolves.toBe('no match');
  });

  it('ends a host session from the page: its control connection is closed', async () => {
    const host = busy.players.get('alpha-host');
    if (!host) throw new Error('no host');
    await page.locator('[data-table="noray.hosts"] tbody tr', { hasText: 'alpha-host' }).locator('button[data-action="end-session"]').click();
    expect(await host.next('error')).toBe('session');
    await host.waitClosed();
    await page.locator('#notice', { hasText: 'alpha-host: done' }).waitFor();
    await page.fill('#search', '');
    // Unfiltered again, and the ended host gone from it.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-table="noray.hosts"] tbody tr')];
      return rows.map((row) => row.querySelector('td')?.textContent).join() === 'bravo-client';
    });
    expect(busy.players.get('bravo-client')?.closed).toBe(false);
  });

  it('says so plainly when the server goes away', async () => {
    await busy.app.stop();
    await page.locator('#banner', { hasText: 'Disconnected from the server' }).waitFor({ timeout: 10_000 });
    await expect(page.locator('#status').textContent()).resolves.toBe('disconnected');
    await expect(page.evaluate(() => document.body.classList.contains('stale'))).resolves.toBe(true);
  }, 20_000);
});
