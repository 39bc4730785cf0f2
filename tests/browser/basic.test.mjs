//! Real-browser test of the `basic` dialect: our own test page
//! (pages/basic, served by the basic listener's --static) in two headless
//! Chromium tabs follows the basic/ client flow (login, offer sent before it
//! is set locally, answer, trickled candidates) with fake media and reaches a
//! connected RTCPeerConnection with remote video frames on both sides; then
//! hang-up (`leave`) and the disconnect `leave`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { screenshot } from './lib/browser.mjs';
import { useServerAndBrowser } from './lib/fixture.mjs';

const PAGES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pages/basic');

const env = useServerAndBrowser(['--dialect', 'basic', '--static', PAGES]);

/** Opens the test page in a new tab and logs in as `name`. */
async function openAs(name) {
  const page = await env.browser.newPage();
  // Any path upgrades; use one unlike the page's to show it.
  await page.goto(`${env.server.url}/index.html?ws=${encodeURIComponent(env.server.wsUrl + '/signal')}`);
  await page.evaluate(() => window.basic.open());
  await page.evaluate((n) => window.basic.login(n), name);
  return page;
}

async function waitMedia(page) {
  await page.waitForFunction(() => window.basic.connectionState() === 'connected');
  await page.waitForFunction(() => window.basic.remoteVideoWidth() > 0);
}

test('two tabs call through switchboard: connected, frames both ways, leave', async () => {
  const alice = await openAs('alice');
  const bob = await openAs('bob');

  // A second login under a taken name is refused.
  const eve = await env.browser.newPage();
  await eve.goto(`${env.server.url}/index.html?ws=${encodeURIComponent(env.server.wsUrl)}`);
  await eve.evaluate(() => window.basic.open());
  await assert.rejects(eve.evaluate(() => window.basic.login('alice')), /login refused/);
  await eve.close();

  await alice.evaluate(() => window.basic.call('bob'));
  await waitMedia(alice);
  await waitMedia(bob);
  for (const page of [alice, bob]) {
    const w = await page.evaluate(() => window.basic.remoteVideoWidth());
    assert.ok(w > 0, `remote video has frames (videoWidth ${w})`);
    assert.deepEqual(await page.evaluate(() => window.basic.state.errors), []);
  }
  await screenshot(alice, 'basic-1-alice-in-call');
  await screenshot(bob, 'basic-2-bob-in-call');

  // What bob saw: the offer named its sender; candidates carried no name.
  const bobGot = await bob.evaluate(() => window.basic.state.received);
  const offer = bobGot.find((m) => m.type === 'offer');
  assert.equal(offer.name, 'alice');
  assert.equal(offer.offer.type, 'offer');
  assert.ok(bobGot.some((m) => m.type === 'candidate'), 'bob got trickled candidates');
  // What alice saw: the answer without a sender name.
  const answer = (await alice.evaluate(() => window.basic.state.received)).find((m) => m.type === 'answer');
  assert.deepEqual(Object.keys(answer), ['type', 'answer']);

  // Hang-up: alice sends leave; bob resets.
  await alice.evaluate(() => window.basic.hangUp());
  await bob.waitForFunction(() => window.basic.state.leaves === 1);
  // alice's server-side link to bob survives her own leave, so closing her
  // tab tells bob once more (once: we do not repeat it per message sent).
  await alice.close();
  await bob.waitForFunction(() => window.basic.state.leaves === 2);
  await bob.close();
});
