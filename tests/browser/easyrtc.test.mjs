//! Real-browser test of the `easyrtc` dialect: two tabs of our own page
//! (pages/easyrtc, served by --static) on EasyRTC's browser client
//! (`easyrtc.js` from the npm package, served at /easyrtc/) with the
//! socket.io 1.x client (served at /socket.io/socket.io.js), both from
//! node_modules. They log in, see each other in the room list, exchange
//! instant messages through the server, and make a video call with frames
//! both ways. Then EasyRTC's own instant-messaging, data-channel and
//! instant-messaging-rooms demo pages, unchanged; and its 1:1 audio/video and
//! multiparty demo pages, unchanged, in a browser given the old
//! `URL.createObjectURL(mediaStream)` API they were written for
//! (lib/legacy-stream-url.mjs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { useServerAndBrowser } from './lib/fixture.mjs';
import { startServer } from './lib/server.mjs';
import { screenshot } from './lib/browser.mjs';
import { legacyStreamUrl } from './lib/legacy-stream-url.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EASYRTC = path.join(HERE, 'node_modules/easyrtc');
const SOCKETIO1 = path.join(HERE, 'node_modules/socket.io-client-1/dist/socket.io.js');
const FILES = ['--easyrtc-api', path.join(EASYRTC, 'api'), '--socketio1-client', SOCKETIO1];

const env = useServerAndBrowser(['--dialect', 'easyrtc', '--static', path.join(HERE, 'pages/easyrtc'), ...FILES]);

async function open() {
  const page = await env.browser.newPage();
  await page.goto(`${env.server.url}/`);
  await page.waitForFunction(() => window.app && window.app.state.id !== null, null, { timeout: 15000 });
  return page;
}

const state = (page) => page.evaluate(() => window.app.state);

test('two tabs log in, see each other, exchange messages and make a video call with frames both ways', async () => {
  const alice = await open();
  const bob = await open();
  const aliceId = (await state(alice)).id;
  const bobId = (await state(bob)).id;
  assert.notEqual(aliceId, bobId);

  // Each sees the other in the room (the list excludes oneself).
  await alice.waitForFunction((id) => window.app.state.occupants.includes(id), bobId);
  await bob.waitForFunction((id) => window.app.state.occupants.includes(id), aliceId);

  // Instant messages through the server (easyrtcMsg), acked, both ways,
  // non-ASCII included.
  await alice.evaluate((id) => window.app.send(id, 'hello bob'), bobId);
  await bob.evaluate((id) => window.app.send(id, 'grüße, alice ✓'), aliceId);
  await bob.waitForFunction(() => window.app.state.messages.length === 1);
  await alice.waitForFunction(() => window.app.state.messages.length === 1);
  assert.deepEqual((await state(bob)).messages, [{ from: aliceId, msgType: 'chat', content: 'hello bob' }]);
  assert.deepEqual((await state(alice)).messages, [{ from: bobId, msgType: 'chat', content: 'grüße, alice ✓' }]);
  await alice.waitForFunction(() => window.app.state.acks.length === 1);
  assert.deepEqual((await state(alice)).acks, ['ack']);

  // A video call: offer, answer and candidates relayed by the server.
  await alice.click(`#occupants button:has-text("Call ${bobId}")`);
  for (const [page, other] of [[alice, bobId], [bob, aliceId]]) {
    await page.waitForFunction((id) => window.app.connectStatus(id) === easyrtc.IS_CONNECTED, other, { timeout: 20000 });
    await page.waitForFunction(() => window.app.remoteVideoWidth() > 0, null, { timeout: 20000 });
    const t0 = await page.evaluate(() => window.app.remoteVideoTime());
    await page.waitForFunction((t) => window.app.remoteVideoTime() > t, t0, { timeout: 10000 });
  }
  await screenshot(alice, 'easyrtc-1-caller');
  await screenshot(bob, 'easyrtc-2-callee');
  assert.deepEqual((await state(alice)).calls, [{ to: bobId, accepted: true }]);
  assert.deepEqual((await state(bob)).calls, [{ from: aliceId }]);
  for (const page of [alice, bob]) {
    assert.deepEqual((await state(page)).errors, []);
    assert.equal(await page.evaluate(() => window.app.transport()), 'websocket', 'upgraded from polling');
  }

  // Bob leaves: Alice's list empties (removeClient).
  await bob.close();
  await alice.waitForFunction(() => window.app.state.occupants.length === 0, null, { timeout: 10000 });
  await alice.close();
});

// EasyRTC's own demo pages, unchanged, served from the package folder at
// /demos/ as the original serves them. (Its audio/video demos cannot run in
// a current browser as is: EasyRTC 1.1.0 shows streams with
// URL.createObjectURL(stream), which browsers no longer take. Those tabs get
// the `legacyStreamUrl` init script, see the tests at the end.)
async function openDemo(server, page, { legacy = false } = {}) {
  const tab = await env.browser.newPage();
  if (legacy) await tab.addInitScript(legacyStreamUrl);
  await tab.goto(`${server.url}/demos/${page}`);
  await tab.waitForFunction(() => /I am /.test(document.getElementById('iam').textContent), null, { timeout: 15000 });
  return tab;
}

const idOf = (tab) => tab.evaluate(() => document.getElementById('iam').textContent.replace('I am ', '').trim());

test('EasyRTC\'s own instant-messaging, data-channel and rooms demo pages, unchanged', async () => {
  const server = await startServer(['--dialect', 'easyrtc', '--static', EASYRTC, ...FILES]);
  try {
    // Instant messages through the server.
    const one = await openDemo(server, 'demo_instant_messaging.html');
    const two = await openDemo(server, 'demo_instant_messaging.html');
    const twoId = await idOf(two);
    await one.waitForFunction((id) => document.getElementById('otherClients').textContent.includes(id), twoId, { timeout: 10000 });
    await one.fill('#sendMessageText', 'hi from the demo');
    await one.click(`#otherClients button:has-text("${twoId}")`);
    await two.waitForFunction(() => document.getElementById('conversation').textContent.includes('hi from the demo'), null, { timeout: 10000 });
    await screenshot(two, 'easyrtc-3-demo-im');
    await one.close();
    await two.close();

    // A data channel: offer, answer and candidates through the server, then
    // a message peer to peer.
    const a = await openDemo(server, 'demo_data_channel_messaging.html');
    const b = await openDemo(server, 'demo_data_channel_messaging.html');
    const bId = await idOf(b);
    await a.waitForSelector(`#connect_${bId}`, { timeout: 10000 });
    await a.click(`#connect_${bId}`);
    await a.waitForFunction((id) => !document.getElementById(`send_${id}`).disabled, bId, { timeout: 20000 });
    await a.fill('#sendMessageText', 'over the data channel');
    await a.click(`#send_${bId}`);
    await b.waitForFunction(() => document.getElementById('conversation').textContent.includes('over the data channel'), null, { timeout: 10000 });
    await screenshot(b, 'easyrtc-4-demo-data-channel');
    await a.close();
    await b.close();

    // Rooms: log in with a username, join a room from the room list
    // (getRoomList, roomJoin), see each other in it, write to the room.
    const roomsTab = async (name) => {
      const tab = await env.browser.newPage();
      await tab.goto(`${server.url}/demos/demo_instant_messaging_rooms.html`);
      await tab.fill('#userNameField', name);
      await tab.click('#connectButton');
      await tab.waitForSelector('#roomblock_default', { state: 'attached', timeout: 15000 });
      return tab;
    };
    const ann = await roomsTab('ann');
    const bob = await roomsTab('bob');
    await ann.click('#quickJoinBlock button:has-text("Join room1(0)")');
    await ann.waitForSelector('#roomOccupant_room1', { state: 'attached', timeout: 10000 });
    await bob.click('button:has-text("Refresh")');
    await bob.click('#quickJoinBlock button:has-text("Join room1(1)")', { timeout: 10000 });
    await ann.waitForFunction(() => document.getElementById('roomOccupant_room1').textContent.includes('bob'), null, { timeout: 10000 });
    await bob.waitForFunction(() => document.getElementById('roomOccupant_room1').textContent.includes('ann'), null, { timeout: 10000 });
    await ann.fill('#sendMessageText', 'to room1');
    await ann.click('#roomblock_room1 > button');
    await bob.waitForFunction(() => /room=room1:\s*to room1/.test(document.getElementById('conversation').textContent), null, { timeout: 10000 });
    await screenshot(bob, 'easyrtc-5-demo-rooms');
    await ann.close();
    await bob.close();
  } finally {
    await server.stop();
  }
});


// The init script itself, on a plain page: a MediaStream becomes a token URL
// shown through srcObject (property and setAttribute), other sources stay
// native (a Blob still gets a real, fetchable blob URL), and assigning
// another src detaches the stream.
test('the legacy createObjectURL(MediaStream) init script emulates the old API and leaves blob URLs alone', async () => {
  const tab = await env.browser.newPage();
  await tab.addInitScript(legacyStreamUrl);
  await tab.goto(`${env.server.url}/`);
  const r = await tab.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true });
    const token = URL.createObjectURL(stream);
    const a = document.createElement('video');
    a.src = token;
    const b = document.createElement('video');
    b.setAttribute('src', token);
    const blobUrl = URL.createObjectURL(new Blob(['hi'], { type: 'text/plain' }));
    const fetched = await (await fetch(blobUrl)).text();
    const c = document.createElement('video');
    c.src = blobUrl;
    const out = {
      token, isToken: window.__legacyStreamUrl.isToken(token),
      aStream: a.srcObject === stream, aSrc: a.src, aAttr: a.getAttribute('src'),
      bStream: b.srcObject === stream,
      blobIsToken: window.__legacyStreamUrl.isToken(blobUrl), fetched,
      cSrc: c.src === blobUrl, cStream: c.srcObject,
    };
    a.src = '';
    out.cleared = a.srcObject;
    URL.revokeObjectURL(token);
    out.revoked = !window.__legacyStreamUrl.isToken(token);
    out.bKeeps = b.srcObject === stream;
    URL.revokeObjectURL(blobUrl);
    out.blobRevoked = await fetch(blobUrl).then(() => false, () => true);
    stream.getTracks().forEach((t) => t.stop());
    return out;
  });
  assert.match(r.token, /^blob:http:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]{36}$/);
  assert.equal(r.isToken, true);
  assert.deepEqual([r.aStream, r.aSrc, r.aAttr, r.bStream], [true, r.token, null, true]);
  assert.deepEqual([r.blobIsToken, r.fetched, r.cSrc, r.cStream], [false, 'hi', true, null]);
  assert.deepEqual([r.cleared, r.revoked, r.bKeeps, r.blobRevoked], [null, true, true, true]);
  await tab.close();
});

/** Waits until <video id> in `tab` shows decoded frames that keep coming. */
async function framesDecode(tab, id) {
  await tab.waitForFunction((id) => {
    const v = document.getElementById(id);
    return v.videoWidth > 0 && v.readyState >= 2;
  }, id, { timeout: 20000 });
  const n = await tab.evaluate((id) => document.getElementById(id).getVideoPlaybackQuality().totalVideoFrames, id);
  await tab.waitForFunction(([id, n]) => document.getElementById(id).getVideoPlaybackQuality().totalVideoFrames > n + 5, [id, n], { timeout: 10000 });
  const t0 = await tab.evaluate((id) => document.getElementById(id).currentTime, id);
  await tab.waitForFunction(([id, t]) => document.getElementById(id).currentTime > t, [id, t0], { timeout: 10000 });
}

/** The messages in EasyRTC's error dialog (easyrtc.showError) of `tab`. */
const shownErrors = (tab) => tab.evaluate(() =>
  [...document.querySelectorAll('#easyrtcErrorDialog .easyrtcErrorDialog_element')].map((e) => e.textContent));

/** How <video id> in `tab` got its stream: through a token URL, and whether it is a remote one. */
const videoSource = (tab, id) => tab.evaluate((id) => {
  const v = document.getElementById(id);
  return {
    viaToken: window.__legacyStreamUrl.isToken(v.src),
    remote: v.srcObject instanceof MediaStream && v.srcObject !== easyrtc.getLocalStream(),
    tracks: v.srcObject ? v.srcObject.getVideoTracks().length : 0,
  };
}, id);

test('EasyRTC\'s own 1:1 audio/video demo page, unchanged, calls with video frames both ways', async () => {
  const server = await startServer(['--dialect', 'easyrtc', '--static', EASYRTC, ...FILES]);
  try {
    const one = await openDemo(server, 'demo_audio_video_simple.html', { legacy: true });
    const two = await openDemo(server, 'demo_audio_video_simple.html', { legacy: true });
    const oneId = await idOf(one);
    const twoId = await idOf(two);
    // They see each other (a button per other client).
    await one.waitForSelector(`#otherClients button:has-text("${twoId}")`, { timeout: 10000 });
    await two.waitForSelector(`#otherClients button:has-text("${oneId}")`, { timeout: 10000 });
    // Own camera in #selfVideo.
    for (const tab of [one, two]) await framesDecode(tab, 'selfVideo');
    // One calls the other; the demo accepts automatically.
    await one.click(`#otherClients button:has-text("${twoId}")`);
    for (const [tab, other] of [[one, twoId], [two, oneId]]) {
      await tab.waitForFunction((id) => easyrtc.getConnectStatus(id) === easyrtc.IS_CONNECTED, other, { timeout: 20000 });
      await framesDecode(tab, 'callerVideo');
      assert.deepEqual(await videoSource(tab, 'callerVideo'), { viaToken: true, remote: true, tracks: 1 });
    }
    for (const tab of [one, two]) assert.deepEqual(await shownErrors(tab), []);
    await screenshot(one, 'easyrtc-6-demo-av-caller');
    await screenshot(two, 'easyrtc-7-demo-av-callee');
    await one.close();
    await two.close();
  } finally {
    await server.stop();
  }
});

test('EasyRTC\'s own multiparty demo page, unchanged: three tabs each see the other two\'s video', async () => {
  const server = await startServer(['--dialect', 'easyrtc', '--static', EASYRTC, ...FILES]);
  try {
    // Each newcomer calls everyone already in the room (callEverybodyElse),
    // so they arrive one after another.
    const tabs = [];
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const tab = await env.browser.newPage();
      await tab.addInitScript(legacyStreamUrl);
      await tab.goto(`${server.url}/demos/demo_multiparty.html`);
      await tab.waitForFunction(() => !!easyrtc.myEasyrtcid, null, { timeout: 15000 });
      ids.push(await tab.evaluate(() => easyrtc.myEasyrtcid));
      tabs.push(tab);
      for (const t of tabs) await t.waitForFunction((n) => easyrtc.getConnectionCount() === n, i, { timeout: 20000 });
    }
    for (const [k, tab] of tabs.entries()) {
      // Slots 0..2 show callers in boxes box1..box3; the two others fill two.
      const slots = await tab.evaluate(() => [0, 1, 2].map((i) => easyrtc.getIthCaller(i)));
      const others = ids.filter((_, j) => j !== k);
      assert.deepEqual(slots.filter(Boolean).sort(), [...others].sort(), `tab ${k} talks to the two others`);
      for (const other of others) {
        const box = `box${slots.indexOf(other) + 1}`;
        assert.equal(await tab.evaluate((b) => getComputedStyle(document.getElementById(b)).visibility, box), 'visible');
        await framesDecode(tab, box);
        assert.deepEqual(await videoSource(tab, box), { viaToken: true, remote: true, tracks: 1 });
      }
      // The only error allowed is the demo's own: EasyRTC calls a call's
      // success callback twice (remote stream, then ICE connected), and the
      // demo's callSuccess dials the next peer each time, so the third tab
      // dials its first peer a second time while that call is pending.
      const errors = await shownErrors(tab);
      assert.ok(errors.every((e) => e === 'Call already pending acceptance'), `tab ${k} errors: ${errors}`);
      await screenshot(tab, `easyrtc-${8 + k}-demo-multiparty`);
    }
    for (const tab of tabs) await tab.close();
  } finally {
    await server.stop();
  }
});
