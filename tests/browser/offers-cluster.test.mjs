//! Real-browser test of the `offers` dialect on two nodes over one Redis
//! (docs/dialects/offers.md §7): the offerer's tab is served by node 1, the
//! answerer's by node 2. The answerer is shown the offer made on the other
//! node, answers it, and both tabs reach a connected RTCPeerConnection with
//! remote video frames. A newcomer on node 1 is shown the offer answered on
//! node 2. Plain HTTP (--no-tls) on 127.0.0.1, a secure context.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { startServer } from './lib/server.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PAGES = path.join(HERE, 'pages/offers');
const BUNDLE = path.join(HERE, 'node_modules/socket.io-client/dist/socket.io.js');

let redis;
let nodes = [];
let browser;

/** A free loopback port. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`. */
async function listening(port) {
  const give_up = Date.now() + 10000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > give_up) throw new Error(`redis-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until `/metrics` of `node` has `series` at `value`. */
async function metric(node, series, value) {
  const give_up = Date.now() + 10000;
  for (;;) {
    const body = await (await fetch(`${node.url}/metrics`)).text();
    const line = body.split('\n').find((l) => l.startsWith(`${series} `));
    if (line && Number(line.split(' ')[1]) === value) return;
    if (Date.now() > give_up) throw new Error(`${series} on ${node.url} is not ${value}: ${line}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' });
  await listening(port);
  const args = ['--dialect', 'offers', '--no-tls', '--static', PAGES, '--socketio-client', BUNDLE,
    '--redis', `redis://127.0.0.1:${port}`, '--cluster', 'offers-browser'];
  nodes = [await startServer(args), await startServer(args)];
  // Both nodes see each other's board peer.
  for (const node of nodes) await metric(node, 'switchboard_peers', 2);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const node of nodes) await node.stop();
  redis?.kill('SIGKILL');
});

async function open(node, user) {
  const page = await browser.newPage();
  await page.goto(`${node.url}/?user=${encodeURIComponent(user)}`);
  await page.waitForFunction(() => window.offers && window.offers.state.connected === true);
  return page;
}

async function connectedWithFrames(page) {
  await page.waitForFunction(() => window.offers.connectionState() === 'connected');
  await page.waitForFunction(() => window.offers.remoteVideoWidth() > 0);
}

test('offer board on two nodes: offer on node 1, answer on node 2, connected with frames both ways', async () => {
  const [n1, n2] = nodes;
  const alice = await open(n1, 'Rob-alice');
  const bob = await open(n2, 'Rob-bob');
  for (const node of nodes) await metric(node, 'switchboard_peers', 4);

  await alice.click('#call');
  // The offer made on node 1 appears on node 2's page.
  await bob.click('#answers button:has-text("Answer Rob-alice")');
  await connectedWithFrames(alice);
  await connectedWithFrames(bob);
  await screenshot(alice, 'offers-cluster-1-offerer-node1');
  await screenshot(bob, 'offers-cluster-2-answerer-node2');

  for (const page of [alice, bob]) {
    assert.deepEqual(await page.evaluate(() => window.offers.state.errors), []);
  }
  const answered = await alice.evaluate(() => window.offers.state.answered);
  assert.equal(answered.answererUserName, 'Rob-bob');
  assert.equal(answered.answer.type, 'answer');
  assert.ok((await alice.evaluate(() => window.offers.state.candidatesIn)) > 0, 'alice got bob\'s candidates');

  // A newcomer on node 1 is shown the offer, answered on node 2.
  const carol = await open(n1, 'Rob-carol');
  await carol.waitForSelector('#answers button:has-text("Answer Rob-alice")');
  const seen = await carol.evaluate(() => window.offers.state.offersSeen);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].answererUserName, 'Rob-bob');
  await carol.close();
  await alice.close();
  await bob.close();
});
