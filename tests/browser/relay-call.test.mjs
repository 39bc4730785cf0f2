//! Real-browser test of a call through the embedded TURN relay: the server
//! runs its STUN/TURN server on loopback (--turn-listen, loopback peers
//! allowed), two tabs of the built-in call app get its turn: URL and minted
//! credentials in their welcome, and an init script of the test (not the
//! app) makes every RTCPeerConnection relay-only (iceTransportPolicy
//! 'relay'). So the call connects only if the relay carries the media; the
//! test checks that it does both ways and that the app says "relayed".

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { screenshot } from './lib/browser.mjs';
import { useServerAndBrowser } from './lib/fixture.mjs';
import { trackPeerConnections } from './lib/peer-connections.mjs';

// Port 0: the server binds a free UDP port, logs it, and hands out that one.
const env = useServerAndBrowser([
  '--turn-listen', '127.0.0.1:0',
  '--turn-secret', 'relay-test-secret-7f3a',
  '--turn-allow-loopback-peers',
]);

/** The embedded TURN server's port, from the server's `TURN listening (udp) addr=` line. */
function turnPort() {
  const m = env.server.logs().match(/TURN listening \(udp\) addr=127\.0\.0\.1:(\d+)\s/);
  assert.ok(m, `the server logs its TURN address; its output:\n${env.server.logs()}`);
  return Number(m[1]);
}

/**
 * From the page's next navigation on, every RTCPeerConnection it makes uses
 * only relay candidates, whatever configuration the app passes.
 * @param {import('playwright-core').Page} page
 */
async function forceRelay(page) {
  await page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = new Proxy(Native, {
      construct(target, [config, ...rest], newTarget) {
        return Reflect.construct(target, [{ ...config, iceTransportPolicy: 'relay' }, ...rest], newTarget);
      },
    });
    const setConfiguration = Native.prototype.setConfiguration;
    Native.prototype.setConfiguration = function (config) {
      return setConfiguration.call(this, { ...config, iceTransportPolicy: 'relay' });
    };
  });
}

/** Opens the app in a relay-only tab and goes online as `name`. */
async function openAs(name) {
  const page = await env.browser.newPage();
  await forceRelay(page);
  await trackPeerConnections(page);
  await page.goto(env.server.url + '/');
  await page.waitForFunction(() => document.getElementById('conn-state').dataset.state === 'open');
  await page.getByTestId('name-input').fill(name);
  await page.getByTestId('name-btn').click();
  await page.locator('#app-panel').waitFor({ state: 'visible' });
  return page;
}

/** Waits until the page has exactly one open RTCPeerConnection and it is `connected`. */
async function waitConnected(page) {
  await page.waitForFunction(() => {
    const pcs = window.openPeerConnections();
    return pcs.length === 1 && pcs[0].connectionState === 'connected';
  });
}

/** Waits until the remote video shows decoded frames. */
async function waitVideo(page) {
  await page.waitForFunction(() => {
    const v = document.getElementById('remote-video');
    return v.videoWidth > 0 && v.readyState >= 2;
  });
}

/**
 * What the page's one open connection says about itself: its configuration,
 * the types of all its local candidates, the selected pair's candidates, and
 * the video frames decoded so far.
 */
function connectionFacts(page) {
  return page.evaluate(async () => {
    const pc = window.openPeerConnections()[0];
    const config = pc.getConfiguration();
    const stats = [...(await pc.getStats()).values()];
    const byId = new Map(stats.map((s) => [s.id, s]));
    const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = transport && byId.get(transport.selectedCandidatePairId);
    const video = stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'video');
    const local = pair && byId.get(pair.localCandidateId);
    const remote = pair && byId.get(pair.remoteCandidateId);
    return {
      policy: config.iceTransportPolicy,
      urls: config.iceServers.flatMap((s) => [s.urls].flat()),
      localTypes: stats.filter((s) => s.type === 'local-candidate').map((s) => s.candidateType),
      local: local && { type: local.candidateType, address: local.address, relayProtocol: local.relayProtocol, url: local.url },
      remote: remote && { type: remote.candidateType, address: remote.address },
      framesDecoded: video?.framesDecoded ?? 0,
    };
  });
}

test('a relay-only call connects through the embedded TURN server and shows its path as relayed', async () => {
  const port = turnPort();
  const turnUrl = `turn:127.0.0.1:${port}?transport=udp`;
  const una = await openAs('una');
  const vic = await openAs('vic');
  await una.getByTestId('peer-vic').waitFor();
  await una.getByTestId('call-vic').click();
  await vic.getByTestId('incoming').waitFor({ state: 'visible' });
  await vic.getByTestId('accept-btn').click();

  for (const page of [una, vic]) {
    await waitConnected(page);
    await waitVideo(page);
    await page.locator('[data-testid="call-path"][data-path="relayed"]').waitFor();
    assert.equal(await page.getByTestId('call-path').innerText(), 'relayed');
  }

  const before = new Map();
  for (const [name, page] of [['una', una], ['vic', vic]]) {
    const f = await connectionFacts(page);
    // The app used the welcome's embedded TURN server, and the init script made it relay-only.
    assert.equal(f.policy, 'relay', `${name}: iceTransportPolicy`);
    assert.ok(f.urls.includes(turnUrl), `${name}: ${turnUrl} among the ICE servers ${JSON.stringify(f.urls)}`);
    assert.ok(f.localTypes.length > 0 && f.localTypes.every((t) => t === 'relay'),
      `${name}: only relay candidates gathered (${f.localTypes})`);
    // Both ends of the selected pair are relay addresses on the embedded server.
    assert.equal(f.local?.type, 'relay', `${name}: selected local candidate ${JSON.stringify(f.local)}`);
    assert.equal(f.local.address, '127.0.0.1');
    assert.equal(f.local.relayProtocol, 'udp');
    assert.equal(f.remote?.type, 'relay', `${name}: selected remote candidate ${JSON.stringify(f.remote)}`);
    assert.equal(f.remote.address, '127.0.0.1');
    assert.ok(f.framesDecoded > 0, `${name}: video frames decoded (${f.framesDecoded})`);
    before.set(name, f.framesDecoded);
  }
  // Frames keep coming through the relay, both ways.
  for (const [name, page] of [['una', una], ['vic', vic]]) {
    await page.waitForFunction(async (n) => {
      const stats = [...(await window.openPeerConnections()[0].getStats()).values()];
      return (stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'video')?.framesDecoded ?? 0) > n + 10;
    }, before.get(name)).catch((e) => { throw new Error(`${name}: no more frames decoded after ${before.get(name)} (${e.message})`); });
  }
  await screenshot(una, 'relay-call-1-relayed-una');
  await screenshot(vic, 'relay-call-1-relayed-vic');

  await una.getByTestId('hangup-btn').click();
  for (const page of [una, vic]) {
    await page.waitForFunction(() => document.getElementById('call-state').dataset.state === 'ended');
    assert.equal(await page.getByTestId('call-path').isVisible(), false);
    assert.equal(await page.evaluate(() => window.openPeerConnections().length), 0);
  }
  await una.close();
  await vic.close();
});
