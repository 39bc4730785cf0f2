//! Real-browser test of the `easyrtc` dialect: two tabs of our own page
//! (pages/easyrtc, served by --static) on EasyRTC's browser client
//! (`easyrtc.js` from the npm package, served at /easyrtc/) with the
//! socket.io 1.x client (served at /socket.io/socket.io.js), both from
//! node_modules. They log in, see each other in the room list, exchange
//! instant messages through the server, and make a video call with frames
//! both ways. Then EasyRTC's own instant-messaging, data-channel and
//! instant-messaging-rooms demo pages, unchanged.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { useServerAndBrowser } from './lib/fixture.mjs';
import { startServer } from './lib/server.mjs';
import { screenshot } from './lib/browser.mjs';

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
// a current browser: EasyRTC 1.1.0 shows streams with
// URL.createObjectURL(stream), which browsers no longer take.)
async function openDemo(server, page) {
  const tab = await env.browser.newPage();
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
