//! Real-browser test of the `one2one` dialect: our own test page
//! (pages/one2one, served by the one2one listener's --static; it finds the
//! signaling socket at /call of its own origin, as the original client does)
//! in two headless Chromium tabs: register, call, auto-accept, media with
//! fake devices, a connected RTCPeerConnection and remote video frames on
//! both sides. Also: a taken name and a call to an unknown user are refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { screenshot } from './lib/browser.mjs';
import { useServerAndBrowser } from './lib/fixture.mjs';

const PAGES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pages/one2one');

const env = useServerAndBrowser(['--dialect', 'one2one', '--static', PAGES]);

async function openAs(name) {
  const page = await env.browser.newPage();
  // localhost, not 127.0.0.1: the original page only gets a camera on localhost.
  await page.goto(`http://localhost:${env.server.port}/`);
  await page.evaluate(() => window.o2o.open());
  assert.equal(await page.evaluate((n) => window.o2o.register(n), name), 'accepted');
  return page;
}

async function waitMedia(page) {
  await page.waitForFunction(() => window.o2o.connectionState() === 'connected');
  await page.waitForFunction(() => window.o2o.remoteVideoWidth() > 0);
}

test('two tabs call through switchboard: connected, frames both ways', async () => {
  const user1 = await openAs('user1');
  const user2 = await openAs('user2');

  // A taken name is refused; a call to an unknown user is rejected with a message.
  const other = await env.browser.newPage();
  await other.goto(`http://localhost:${env.server.port}/`);
  await other.evaluate(() => window.o2o.open());
  assert.equal(await other.evaluate(() => window.o2o.register('user1')), 'rejected');
  assert.equal(await other.evaluate(() => window.o2o.register('user3')), 'accepted');
  await other.evaluate(() => window.o2o.call('nobody'));
  await other.waitForFunction(() => window.o2o.state.rejection !== null);
  assert.equal(await other.evaluate(() => window.o2o.state.rejection), 'User not registered');
  await other.close();

  await user1.evaluate(() => window.o2o.call('user2'));
  await waitMedia(user1);
  await waitMedia(user2);
  for (const page of [user1, user2]) {
    const w = await page.evaluate(() => window.o2o.remoteVideoWidth());
    assert.ok(w > 0, `remote video has frames (videoWidth ${w})`);
    assert.deepEqual(await page.evaluate(() => window.o2o.state.errors), []);
  }
  await screenshot(user1, 'one2one-1-caller-in-call');
  await screenshot(user2, 'one2one-2-callee-in-call');

  // The quirky field names as the pages saw them.
  const got2 = await user2.evaluate(() => window.o2o.state.received);
  const incoming = got2.find((m) => m.id === 'incomingCall');
  assert.deepEqual(Object.keys(incoming), ['id', 'from', 'offer']);
  assert.equal(incoming.from, 'user1');
  const start = got2.find((m) => m.id === 'startCommunication');
  assert.equal(start.sdpAnswer.type, 'offer', "the callee gets the caller's offer back");
  const got1 = await user1.evaluate(() => window.o2o.state.received);
  const accepted = got1.find((m) => m.id === 'callResponse');
  assert.equal(accepted.response, 'accepted');
  assert.equal(accepted.sdpAnswer.type, 'answer');
  await user1.close();
  await user2.close();
});
