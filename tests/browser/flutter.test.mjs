//! Real-browser test of the `flutter` dialect: two tabs of our own test page
//! (tests/browser/pages/flutter, served with --static) follow the VertexChat
//! app's flow — `new`, offer with session_id "a-b", trickled candidates,
//! answer, buffered candidates — and reach a call with video both ways; then
//! the caller's `bye` ends it on both sides. Over HTTPS/WSS like the
//! original, with a certificate from `switchboard cert` that Chromium is told
//! to accept by its key (SPKI pin).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { binaryPath, startServer } from './lib/server.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';

const PAGES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pages/flutter');

let server;
let browser;
let base;
let certDir;

/** base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium pins it. */
function spkiPin(pemFile) {
  const spki = new X509Certificate(readFileSync(pemFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

before(async () => {
  certDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-flutter-cert-'));
  execFileSync(binaryPath(), ['cert', '--dir', certDir], { stdio: 'ignore' });
  const cert = path.join(certDir, 'ssl/server.cert');
  const key = path.join(certDir, 'ssl/server.key');
  server = await startServer(['--dialect', 'flutter', '--static', PAGES, '--tls-cert', cert, '--tls-key', key]);
  base = `https://127.0.0.1:${server.port}`;
  browser = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${spkiPin(cert)}`] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

async function open(id, name) {
  const page = await browser.newPage();
  await page.goto(`${base}/index.html?id=${id}&name=${name}`);
  await page.waitForFunction(() => window.flutterDebug?.state === 'online');
  return page;
}

async function waitCall(page) {
  await page.waitForFunction(() => window.flutterDebug.pcState() === 'connected');
  await page.waitForFunction(() => {
    const v = document.getElementById('remote-video');
    return v.videoWidth > 0 && v.readyState >= 2;
  });
}

test('flutter over HTTPS/WSS: new, invite, answer, media both ways, bye', async () => {
  const alice = await open('42', 'alice');
  const bob = await open('43', 'bob');
  assert.match(await alice.evaluate(() => window.flutterDebug.socketUrl), /^wss:\/\/127\.0\.0\.1:\d+\/ws$/);

  // Both see the full list, in `new` order.
  for (const page of [alice, bob]) {
    await page.getByTestId('peer-43').waitFor();
    const ids = await page.evaluate(() => window.flutterDebug.peers.map((p) => p.id));
    assert.deepEqual(ids, ['42', '43']);
  }
  const listed = await alice.evaluate(() => window.flutterDebug.peers[1]);
  assert.equal(listed.username, 'bob');
  assert.equal(listed.device_name, 'Chromium');

  await alice.getByTestId('call-43').click();
  await waitCall(alice);
  await waitCall(bob);
  for (const page of [alice, bob]) {
    const w = await page.evaluate(() => document.getElementById('remote-video').videoWidth);
    assert.ok(w > 0, `remote video has frames (videoWidth ${w})`);
    assert.equal(await page.evaluate(() => window.flutterDebug.sessionId), '42-43');
    assert.deepEqual(await page.evaluate(() => window.flutterDebug.errors), []);
  }
  await screenshot(alice, 'flutter-call-alice');
  await screenshot(bob, 'flutter-call-bob');

  // The caller hangs up: the quirky fan-out reaches both, each with its own id.
  await alice.getByTestId('hangup').click();
  await alice.waitForFunction(() => window.flutterDebug.state === 'online' && window.flutterDebug.bye);
  await bob.waitForFunction(() => window.flutterDebug.state === 'online' && window.flutterDebug.bye);
  assert.deepEqual(await alice.evaluate(() => window.flutterDebug.bye), { to: '42', session_id: '42-43' });
  assert.deepEqual(await bob.evaluate(() => window.flutterDebug.bye), { to: '43', session_id: '42-43' });

  // Closing a tab sends the shorter list to the rest.
  await bob.close();
  await alice.waitForFunction(() => window.flutterDebug.peers.length === 1);
  assert.equal(await alice.evaluate(() => window.flutterDebug.peers[0].id), '42');
});
