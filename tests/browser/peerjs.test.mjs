//! The official npm `peerjs` client (1.5.x) in headless Chromium against
//! switchboard's peerjs dialect: two tabs open Peers, exchange messages over
//! a data connection both ways, then place a media call with fake devices
//! and see decoded remote video frames on both sides.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from './lib/server.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));

let server;
let browser;
let site;

before(async () => {
  // Our page plus the client library, served by switchboard's --static.
  site = await mkdtemp(path.join(os.tmpdir(), 'switchboard-peerjs-site-'));
  await cp(path.join(HERE, 'pages/peerjs'), site, { recursive: true });
  await cp(path.join(HERE, 'node_modules/peerjs/dist/peerjs.min.js'), path.join(site, 'peerjs.min.js'));
  server = await startServer(['--dialect', 'peerjs', '--static', site]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (site) await rm(site, { recursive: true, force: true });
});

async function openPeer(id) {
  const page = await browser.newPage();
  await page.goto(server.url + '/index.html');
  const got = await page.evaluate((id) => window.pj.start(id), id);
  return { page, id: got };
}

test('data connection: messages both ways through switchboard', async () => {
  const alice = await openPeer('alice');
  // No id given: the client asks the server for one (GET /peerjs/id).
  const bob = await openPeer(null);
  assert.match(bob.id, /^[0-9a-f-]{36}$/);

  await alice.page.evaluate((id) => window.pj.connect(id, 3), bob.id);
  await bob.page.waitForFunction(() => window.pj.received.length === 3);
  await alice.page.waitForFunction(() => window.pj.received.length === 3);
  assert.deepEqual(await bob.page.evaluate(() => window.pj.received), ['ping 0', 'ping 1', 'ping 2']);
  assert.deepEqual(await alice.page.evaluate(() => window.pj.received), ['pong 0', 'pong 1', 'pong 2']);
  for (const p of [alice, bob]) assert.deepEqual(await p.page.evaluate(() => window.pj.errors), []);
  await alice.page.close();
  await bob.page.close();
});

test('media call with fake devices: remote video frames on both sides', async () => {
  const carol = await openPeer('carol');
  const dave = await openPeer('dave');
  await carol.page.evaluate((id) => window.pj.call(id), 'dave');
  await carol.page.waitForFunction(() => window.pj.remoteFrames > 5);
  await dave.page.waitForFunction(() => window.pj.remoteFrames > 5);
  await screenshot(carol.page, 'peerjs-call-caller');
  await screenshot(dave.page, 'peerjs-call-callee');
  for (const p of [carol, dave]) {
    const size = await p.page.evaluate(() => document.getElementById('remote').videoWidth);
    assert.ok(size > 0, 'remote video has a size');
    assert.deepEqual(await p.page.evaluate(() => window.pj.errors), []);
  }
});

test('an id in use is refused with the client\'s unavailable-id error', async () => {
  const page = await browser.newPage();
  await page.goto(server.url + '/index.html');
  await openPeer('erin');
  const err = await page.evaluate(() => window.pj.start('erin').then(() => 'opened', (e) => e.message));
  assert.match(err, /unavailable-id/);
});
