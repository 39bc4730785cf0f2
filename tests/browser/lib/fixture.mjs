//! The usual setup of a browser test file: one switchboard server and one
//! headless Chromium for all its tests, both stopped after the last one.

import { before, after } from 'node:test';

import { startServer } from './server.mjs';
import { launchBrowser } from './browser.mjs';

/**
 * Registers `before`/`after` hooks that start the server with `args` and a
 * browser; the returned object's `server` and `browser` are set once the
 * hooks have run.
 * @param {string[]} [args] switchboard arguments (besides --listen)
 * @returns {{server: Awaited<ReturnType<typeof startServer>>, browser: Awaited<ReturnType<typeof launchBrowser>>}}
 */
export function useServerAndBrowser(args = []) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await startServer(args);
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}
