//! Real-browser test of the `offers` dialect: our own test page
//! (pages/offers, served by --static; the socket.io client bundle served by
//! switchboard at /socket.io/socket.io.js) in headless Chromium tabs over
//! HTTPS, as the original runs. One tab clicks Call, the other clicks the
//! "Answer <name>" button that appeared, and both reach a connected
//! RTCPeerConnection with remote video frames. A later tab is shown the
//! (answered) offer in availableOffers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer, binaryPath } from './lib/server.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PAGES = path.join(HERE, 'pages/offers');
const BUNDLE = path.join(HERE, 'node_modules/socket.io-client/dist/socket.io.js');

let certDir;
let server;
let browser;
let origin;

before(async () => {
  certDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-offers-browser-'));
  execFileSync(binaryPath(), ['cert', '--dir', certDir], { stdio: 'ignore' });
  server = await startServer(['--dialect', 'offers', '--static', PAGES, '--socketio-client', BUNDLE,
    '--tls-cert', path.join(certDir, 'cert.crt'), '--tls-key', path.join(certDir, 'cert.key')]);
  origin = `https://localhost:${server.port}`;
  // The test CA is not in Chromium's store; a user would import ca.crt.
  browser = await launchBrowser({ args: ['--ignore-certificate-errors'] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

async function open(user) {
  const page = await browser.newPage();
  await page.goto(`${origin}/?user=${encodeURIComponent(user)}`);
  await page.waitForFunction(() => window.offers && window.offers.state.connected === true);
  return page;
}

async function connectedWithFrames(page) {
  await page.waitForFunction(() => window.offers.connectionState() === 'connected');
  await page.waitForFunction(() => window.offers.remoteVideoWidth() > 0);
}

test('offer board in two tabs over HTTPS: call, answer, connected with frames both ways', async () => {
  const alice = await open('Rob-alice');
  const bob = await open('Rob-bob');

  await alice.click('#call');
  await bob.click('#answers button:has-text("Answer Rob-alice")');
  await connectedWithFrames(alice);
  await connectedWithFrames(bob);
  await screenshot(alice, 'offers-1-offerer');
  await screenshot(bob, 'offers-2-answerer');

  for (const page of [alice, bob]) {
    assert.deepEqual(await page.evaluate(() => window.offers.state.errors), []);
    // The page started on long-polling and upgraded, as the original client does.
    assert.equal(await page.evaluate(() => window.offers.transport()), 'websocket');
  }
  const answered = await alice.evaluate(() => window.offers.state.answered);
  assert.equal(answered.answererUserName, 'Rob-bob');
  assert.equal(answered.answer.type, 'answer');
  // The offerer's candidates reached the answerer: in the ack and/or trickled.
  const bobState = await bob.evaluate(() => window.offers.state);
  assert.ok(Array.isArray(bobState.acked), 'the newAnswer ack resolved with an array');
  assert.ok(bobState.acked.length + bobState.candidatesIn > 0, 'bob got the offerer candidates');
  assert.ok((await alice.evaluate(() => window.offers.state.candidatesIn)) > 0, 'alice got bob\'s candidates');

  // A newcomer is shown the board (answered offers included, as in the original).
  const carol = await open('Rob-carol');
  await carol.waitForSelector('#answers button:has-text("Answer Rob-alice")');
  const seen = await carol.evaluate(() => window.offers.state.offersSeen);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].answererUserName, 'Rob-bob');
  await carol.close();
  await alice.close();
  await bob.close();
});
