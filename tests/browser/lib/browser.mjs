//! Launches headless Chromium for browser tests: fake camera and microphone,
//! no network chatter, a fresh temporary profile removed on close.

import { chromium } from 'playwright-core';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Where screenshots go (gitignored). */
export const ARTIFACTS = path.join(ROOT, 'artifacts');

/** Chromium flags for tests: fake media, loopback WebRTC, nothing external. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

/**
 * Launches Chromium with a fresh profile. Each `newPage()` is a new tab
 * (tabs have separate sessionStorage, so each is a separate app user).
 * @param {{executablePath?: string, args?: string[]}} [opts]
 * @returns {Promise<{context: import('playwright-core').BrowserContext, newPage: () => Promise<import('playwright-core').Page>, close: () => Promise<void>}>}
 */
export async function launchBrowser(opts = {}) {
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'switchboard-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opts.executablePath ?? process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
    permissions: ['camera', 'microphone'],
    viewport: { width: 1100, height: 760 },
  });
  const pages = [];
  return {
    context,
    /** A new tab; console errors are echoed to help debugging. */
    async newPage() {
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
      pages.push(page);
      return page;
    },
    async close() {
      await context.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true }).catch(() => {});
    },
  };
}

/** Saves a screenshot of `page` as artifacts/NAME.png. */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
