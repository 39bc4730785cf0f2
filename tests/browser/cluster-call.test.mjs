//! Real-browser test of a call whose two pages are served by different nodes
//! of one cluster: the test starts its own redis-server on a free loopback
//! port and two switchboard nodes on it (same --cluster). Alice opens the
//! built-in call app on node 1, bob on node 2; each sees the other online,
//! alice calls, bob accepts, video frames flow both ways, bob hangs up and
//! both pages show the end. Every signal between them crossed Redis.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';

import { startServer } from './lib/server.mjs';
import { launchBrowser, screenshot } from './lib/browser.mjs';
import { trackPeerConnections } from './lib/peer-connections.mjs';

const CLUSTER = `browser-call-${process.pid}`;

/** A free TCP port on 127.0.0.1. */
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

/** Resolves once something accepts TCP connections on `port` (or rejects after `ms`). */
async function waitListening(port, ms) {
  const giveUp = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > giveUp) throw new Error(`redis-server did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Starts redis-server (no persistence) on a free loopback port. */
async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  await Promise.race([
    waitListening(port, 5000),
    exited.then((code) => { throw new Error(`redis-server exited early (code ${code})`); }),
  ]);
  return {
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** The value of `series` in a node's /metrics (0 when absent). */
async function metric(node, series) {
  const body = await (await fetch(`${node.url}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Polls a node's metric until `ok(value)`, for at most `ms`. */
async function waitMetric(node, series, ok, ms = 10000) {
  const giveUp = Date.now() + ms;
  for (;;) {
    const v = await metric(node, series);
    if (ok(v)) return v;
    if (Date.now() > giveUp) throw new Error(`${series} stayed at ${v} on ${node.url}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const env = { redis: null, nodes: [], browser: null };

before(async () => {
  env.redis = await startRedis();
  // A short grace: a closed tab's peer is given up on (and unlisted) quickly.
  const args = ['--redis', env.redis.url, '--cluster', CLUSTER, '--node-timeout', '3', '--grace', '1'];
  env.nodes.push(await startServer(args));
  env.nodes.push(await startServer(args));
  for (const node of env.nodes) await waitMetric(node, 'switchboard_cluster_nodes', (v) => v === 2);
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await Promise.all(env.nodes.map((n) => n.stop()));
  await env.redis?.stop();
});

/** Opens the app served by `node` in a new tab and goes online as `name`. */
async function openAs(node, name) {
  const page = await env.browser.newPage();
  await trackPeerConnections(page);
  await page.goto(node.url + '/');
  await page.waitForFunction(() => document.getElementById('conn-state').dataset.state === 'open');
  await page.getByTestId('name-input').fill(name);
  await page.getByTestId('name-btn').click();
  await page.locator('#app-panel').waitFor({ state: 'visible' });
  return page;
}

async function assertState(page, expected) {
  await page.waitForFunction((s) => document.getElementById('call-state').dataset.state === s, expected)
    .catch(async (e) => {
      const actual = await page.evaluate(() => document.getElementById('call-state').dataset.state);
      throw new Error(`call state: expected '${expected}', still '${actual}' (${e.message})`);
    });
}

async function waitConnected(page, count) {
  await page.waitForFunction((n) => {
    const states = window.openPeerConnections().map((pc) => pc.connectionState);
    return states.length === n && states.every((s) => s === 'connected');
  }, count);
}

/** Waits until the remote video shows decoded frames; returns its width. */
async function waitRemoteVideo(page) {
  await page.waitForFunction(() => {
    const v = document.getElementById('remote-video');
    return v.videoWidth > 0 && v.readyState >= 2;
  });
  return page.evaluate(() => document.getElementById('remote-video').videoWidth);
}

/** Frames the remote video has decoded so far. */
function framesDecoded(page) {
  return page.evaluate(() => document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames);
}

test('a video call between pages served by two nodes of a cluster', async () => {
  const [n1, n2] = env.nodes;
  const alice = await openAs(n1, 'alice');
  await waitMetric(n2, 'switchboard_peers', (v) => v === 1);
  const bob = await openAs(n2, 'bob');
  for (const node of env.nodes) await waitMetric(node, 'switchboard_peers', (v) => v === 2);
  // Each node holds one of them; each page sees the other online.
  assert.equal(await metric(n1, 'switchboard_node_peers'), 1);
  assert.equal(await metric(n2, 'switchboard_node_peers'), 1);
  await alice.getByTestId('peer-bob').waitFor();
  await bob.getByTestId('peer-alice').waitFor();

  // The name alice holds on node 1 is refused to a page of node 2.
  const copycat = await env.browser.newPage();
  await copycat.goto(n2.url + '/');
  await copycat.waitForFunction(() => document.getElementById('conn-state').dataset.state === 'open');
  await copycat.getByTestId('name-input').fill('alice');
  await copycat.getByTestId('name-btn').click();
  await copycat.getByTestId('error').getByText('The name "alice" is taken; choose another.').waitFor();
  await copycat.close();

  await alice.getByTestId('call-bob').click();
  await assertState(alice, 'calling');
  const incoming = bob.getByTestId('incoming');
  await incoming.waitFor({ state: 'visible' });
  assert.match(await incoming.innerText(), /alice is calling you/);
  await bob.getByTestId('accept-btn').click();

  await waitConnected(alice, 1);
  await waitConnected(bob, 1);
  await assertState(alice, 'in-call');
  await assertState(bob, 'in-call');
  for (const page of [alice, bob]) {
    const w = await waitRemoteVideo(page);
    assert.ok(w > 0, `remote video has frames (videoWidth ${w})`);
    // Frames keep coming, not just one.
    const first = await framesDecoded(page);
    await page.waitForFunction((n) => document.getElementById('remote-video').getVideoPlaybackQuality().totalVideoFrames > n + 5, first);
  }
  await screenshot(alice, 'cluster-call-alice-node1');
  await screenshot(bob, 'cluster-call-bob-node2');

  await bob.getByTestId('hangup-btn').click();
  await assertState(bob, 'ended');
  await assertState(alice, 'ended');
  assert.match(await alice.getByTestId('call-state').innerText(), /bob hung up/);
  assert.equal(await alice.evaluate(() => window.openPeerConnections().length), 0);
  assert.equal(await bob.evaluate(() => window.openPeerConnections().length), 0);

  // Bob closes his tab on node 2: alice's list on node 1 loses him.
  await bob.close();
  await alice.getByTestId('peer-bob').waitFor({ state: 'detached' });
  await alice.close();
});
