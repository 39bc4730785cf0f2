//! Real-browser test of the built-in call app over the native protocol:
//! two tabs choose names, A calls B, B accepts, media flows both ways, A hangs
//! up and both tabs show the end; then three tabs meet in a mesh room, and
//! two tabs meet through a room link. The tests see the app's state only as
//! the page shows it, and its RTCPeerConnections through an init script of
//! their own (lib/peer-connections.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { screenshot } from './lib/browser.mjs';
import { useServerAndBrowser } from './lib/fixture.mjs';
import { trackPeerConnections } from './lib/peer-connections.mjs';

const env = useServerAndBrowser();

/** Opens the app (at `url`, by default the test server's) in a new tab and goes online as `name`. */
async function openAs(name, url = env.server.url + '/') {
  const page = await env.browser.newPage();
  await trackPeerConnections(page);
  await page.goto(url);
  await waitOnline(page);
  await page.getByTestId('name-input').fill(name);
  await page.getByTestId('name-btn').click();
  await page.locator('#app-panel').waitFor({ state: 'visible' });
  return page;
}

/** Waits until the page shows its connection to the server as open. */
async function waitOnline(page) {
  await page.waitForFunction(() => document.getElementById('conn-state').dataset.state === 'open');
}

/** Waits until every open RTCPeerConnection of the page is `connected` (and there are `count`). */
async function waitConnected(page, count) {
  await page.waitForFunction((n) => {
    const states = window.openPeerConnections().map((pc) => pc.connectionState);
    return states.length === n && states.every((s) => s === 'connected');
  }, count);
}

/** Waits until the video element(s) matched by `selector` all show decoded frames. */
async function waitVideo(page, selector, count = 1) {
  await page.waitForFunction(([sel, n]) => {
    const videos = [...document.querySelectorAll(sel)];
    return videos.length === n && videos.every((v) => v.videoWidth > 0 && v.readyState >= 2);
  }, [selector, count]);
}

test('1:1 call: call, accept, media both ways, hang up', async () => {
  const alice = await openAs('alice');
  const bob = await openAs('bob');

  // Presence: each sees the other in the live list.
  await alice.getByTestId('peer-bob').waitFor();
  await bob.getByTestId('peer-alice').waitFor();
  await screenshot(alice, 'native-call-1-online');

  await alice.getByTestId('call-bob').click();
  await assertState(alice, 'calling');
  const incoming = bob.getByTestId('incoming');
  await incoming.waitFor({ state: 'visible' });
  assert.match(await incoming.innerText(), /alice is calling you/);
  await assertState(bob, 'ringing');
  await screenshot(bob, 'native-call-2-incoming');
  await bob.getByTestId('accept-btn').click();

  await waitConnected(alice, 1);
  await waitConnected(bob, 1);
  await waitVideo(alice, '#remote-video');
  await waitVideo(bob, '#remote-video');
  await assertState(alice, 'in-call');
  await assertState(bob, 'in-call');
  for (const page of [alice, bob]) {
    const w = await page.evaluate(() => document.getElementById('remote-video').videoWidth);
    assert.ok(w > 0, `remote video has frames (videoWidth ${w})`);
  }

  // The toggles act on the local tracks.
  await alice.getByTestId('mute-btn').click();
  assert.equal(await alice.evaluate(() => document.getElementById('local-video').srcObject.getAudioTracks()[0].enabled), false);
  assert.equal(await alice.getByTestId('mute-btn').getAttribute('aria-pressed'), 'true');
  await alice.getByTestId('camera-btn').click();
  assert.equal(await alice.evaluate(() => document.getElementById('local-video').srcObject.getVideoTracks()[0].enabled), false);
  await alice.getByTestId('camera-btn').click();
  await screenshot(alice, 'native-call-3-in-call-alice');
  await screenshot(bob, 'native-call-3-in-call-bob');

  await alice.getByTestId('hangup-btn').click();
  await assertState(alice, 'ended');
  await assertState(bob, 'ended');
  assert.match(await bob.getByTestId('call-state').innerText(), /alice hung up/);
  assert.equal(await alice.evaluate(() => window.openPeerConnections().length), 0);
  assert.equal(await bob.evaluate(() => window.openPeerConnections().length), 0);
  await screenshot(bob, 'native-call-4-ended');

  await alice.close();
  await bob.close();
});

test('1:1 call: rejected call and busy callee are shown', async () => {
  const carol = await openAs('carol');
  const dave = await openAs('dave');
  await carol.getByTestId('peer-dave').waitFor();

  // A taken name is refused with a hint; the tab stays on the name form.
  const copycat = await env.browser.newPage();
  await copycat.goto(env.server.url + '/');
  await copycat.getByTestId('name-input').fill('carol');
  await copycat.getByTestId('name-btn').click();
  await copycat.getByTestId('error').getByText('The name "carol" is taken; choose another.').waitFor();
  assert.equal(await copycat.getByTestId('name-panel').isVisible(), true);
  await screenshot(copycat, 'native-call-0-name-taken');
  await copycat.close();

  await carol.getByTestId('call-dave').click();
  await dave.getByTestId('incoming').waitFor({ state: 'visible' });
  await dave.getByTestId('reject-btn').click();
  await assertState(carol, 'ended');
  await carol.getByTestId('error').getByText('dave declined the call').waitFor();

  // While dave rings for erin, carol's call finds him busy.
  const erin = await openAs('erin');
  await erin.getByTestId('peer-dave').waitFor();
  await erin.getByTestId('call-dave').click();
  await dave.getByTestId('incoming').waitFor({ state: 'visible' });
  await carol.getByTestId('call-dave').click();
  await carol.getByTestId('error').getByText('dave is busy in another call').waitFor();
  await screenshot(carol, 'native-call-5-busy');
  // erin gives up; dave's prompt goes away and shows the missed call.
  await erin.getByTestId('hangup-btn').click();
  await dave.getByTestId('incoming').waitFor({ state: 'hidden' });
  await dave.getByTestId('call-state').getByText('Missed call from erin').waitFor();

  for (const p of [carol, dave, erin]) await p.close();
});

test('reload during a call resumes the session and reconnects the media', async () => {
  const fay = await openAs('fay');
  const gus = await openAs('gus');
  await fay.getByTestId('peer-gus').waitFor();
  await fay.getByTestId('call-gus').click();
  await gus.getByTestId('incoming').waitFor({ state: 'visible' });
  await gus.getByTestId('accept-btn').click();
  await waitConnected(fay, 1);
  await waitConnected(gus, 1);
  const gusId = await gus.getByTestId('me').getAttribute('data-peer-id');
  assert.match(gusId, /^p\d+$/);
  const fayPc = await fay.evaluateHandle(() => window.openPeerConnections()[0]);

  await gus.reload();
  await waitOnline(gus);
  assert.equal(await gus.getByTestId('me').getAttribute('data-peer-id'), gusId, 'same peer id after the reload');
  assert.equal(await gus.getByTestId('me').getAttribute('data-name'), 'gus');
  // gus re-offers; fay replaces her connection and both get media again.
  await fay.waitForFunction((old) => {
    const pcs = window.openPeerConnections();
    return pcs.length === 1 && pcs[0] !== old && pcs[0].connectionState === 'connected';
  }, fayPc);
  await waitConnected(gus, 1);
  await waitVideo(gus, '#remote-video');
  await waitVideo(fay, '#remote-video');
  await assertState(gus, 'in-call');

  await gus.getByTestId('hangup-btn').click();
  await assertState(fay, 'ended');
  await fay.close();
  await gus.close();
});

test('a partner that closes its tab ends the call as disconnected', async () => {
  // A short grace so the away partner is given up on quickly.
  const quick = await startServer(['--grace', '1']);
  try {
    const hal = await openAs('hal', quick.url + '/');
    const ida = await openAs('ida', quick.url + '/');
    await hal.getByTestId('call-ida').click();
    await ida.getByTestId('incoming').waitFor({ state: 'visible' });
    await ida.getByTestId('accept-btn').click();
    await waitConnected(hal, 1);
    await ida.close();
    await assertState(hal, 'ended');
    await hal.getByTestId('error').getByText('ida disconnected').waitFor();
    await hal.getByTestId('peer-ida').waitFor({ state: 'detached' });
    await screenshot(hal, 'native-call-7-partner-gone');
    await hal.close();
  } finally {
    await quick.stop();
  }
});

test('mesh room: three tabs all connected to each other', async () => {
  const names = ['ann', 'ben', 'cid'];
  const pages = [];
  for (const n of names) {
    const page = await openAs(`${n}-room`);
    await page.getByTestId('room-input').fill('standup');
    await page.getByTestId('room-join').click();
    await assertState(page, 'room');
    pages.push(page);
  }
  for (const page of pages) {
    await waitConnected(page, 2);
    await waitVideo(page, 'video[data-testid="room-video"]', 2);
    // Each member's tile shows the path of its media.
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="room-path"][data-path="direct"]').length === 2);
  }
  await screenshot(pages[2], 'native-call-6-room');
  assert.match(await pages[0].getByTestId('call-state').innerText(), /ben-room/);

  // One leaves: the others drop its connection and keep theirs.
  await pages[2].getByTestId('room-leave').click();
  await waitConnected(pages[0], 1);
  await waitConnected(pages[1], 1);
  for (const p of pages) await p.close();
});

test('a call over loopback shows its media path as direct', async () => {
  const jo = await openAs('jo');
  const kim = await openAs('kim');
  await jo.getByTestId('peer-kim').waitFor();
  await jo.getByTestId('call-kim').click();
  await kim.getByTestId('incoming').waitFor({ state: 'visible' });
  await kim.getByTestId('accept-btn').click();
  for (const page of [jo, kim]) {
    await waitConnected(page, 1);
    await page.locator('[data-testid="call-path"][data-path="direct"]').waitFor();
    assert.equal(await page.getByTestId('call-path').innerText(), 'direct');
  }
  await screenshot(jo, 'native-call-8-path');

  await jo.getByTestId('hangup-btn').click();
  await assertState(kim, 'ended');
  for (const page of [jo, kim]) assert.equal(await page.getByTestId('call-path').isVisible(), false);
  await jo.close();
  await kim.close();
});

test('a room link opens the app in that room, and a second tab with it joins', async () => {
  const link = `${env.server.url}/?room=r1`;
  const lea = await openAs('lea', link);
  await assertState(lea, 'room');
  assert.match(await lea.getByTestId('call-state').innerText(), /^In room "r1"/);

  // The link to share is shown, and the copy button copies that.
  assert.equal(await lea.getByTestId('room-link').inputValue(), link);
  await lea.evaluate(() => {
    // A stand-in clipboard: headless Chromium has no real one without a permission.
    Object.defineProperty(navigator, 'clipboard', { value: { writeText: async (text) => { window.copied = text; } } });
  });
  await lea.getByTestId('copy-link').click();
  assert.equal(await lea.evaluate(() => window.copied), link);

  const max = await openAs('max', link);
  await assertState(max, 'room');
  for (const page of [lea, max]) {
    await waitConnected(page, 1);
    await waitVideo(page, 'video[data-testid="room-video"]', 1);
    await page.locator('[data-testid="room-path"][data-path="direct"]').waitFor();
  }
  assert.match(await lea.getByTestId('call-state').innerText(), /with max/);
  assert.match(await max.getByTestId('call-state').innerText(), /with lea/);
  await screenshot(max, 'native-call-9-room-link');

  // Leaving takes the room out of the address, so a reload does not rejoin.
  await max.getByTestId('room-leave').click();
  await assertState(max, 'ended');
  assert.equal(max.url(), env.server.url + '/');
  await waitConnected(lea, 0);
  await lea.close();
  await max.close();
});

async function assertState(page, expected) {
  await page.waitForFunction((s) => document.getElementById('call-state').dataset.state === s, expected)
    .catch(async (e) => {
      const actual = await page.evaluate(() => document.getElementById('call-state').dataset.state);
      throw new Error(`call state: expected '${expected}', still '${actual}' (${e.message})`);
    });
}
