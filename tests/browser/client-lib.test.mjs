//! Tests of web/switchboard.js as a library, in a real browser against a real
//! server: replies and error codes, events, ICE servers from the welcome, and
//! automatic resume after the server drops the connection.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startServer } from './lib/server.mjs';
import { launchBrowser } from './lib/browser.mjs';

let server;
let browser;
let page;

before(async () => {
  // A low rate limit lets the resume test get itself disconnected on purpose.
  server = await startServer(['--ice-server', 'stun:127.0.0.1:3478', '--rate', '5', '--burst', '30']);
  browser = await launchBrowser();
  page = await browser.newPage();
  // Any same-origin page will do: the module is imported dynamically.
  await page.goto(server.url + '/style.css');
  await page.evaluate(async () => {
    window.lib = await import('/switchboard.js');
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('requests resolve with replies and reject with coded errors', async () => {
  const out = await page.evaluate(async () => {
    const { Switchboard, SwitchboardError } = window.lib;
    const a = new Switchboard({ storage: null });
    const b = new Switchboard({ storage: null });
    const wa = await a.connect();
    await b.connect();
    const named = await a.setName('libby');
    const taken = await b.setName('libby').catch((e) => e);
    const nobody = await b.call('nobody-here').catch((e) => e);
    const pong = await a.ping();
    a.close();
    b.close();
    return {
      welcomeId: wa.id, id: a.id, named,
      taken: { isError: taken instanceof SwitchboardError && taken instanceof Error, code: taken.code, message: taken.message },
      nobody: nobody.code, pong: pong.type,
    };
  });
  assert.equal(out.id, out.welcomeId);
  assert.match(out.id, /^p\d+$/);
  assert.deepEqual(out.named, { name: 'libby', peers: [] });
  assert.deepEqual(out.taken, { isError: true, code: 'name_taken', message: "the name 'libby' is taken; choose another" });
  assert.equal(out.nobody, 'unknown_peer');
  assert.equal(out.pong, 'pong');
});

test('events: presence, ring, accept, signal, hangup', async () => {
  const out = await page.evaluate(async () => {
    const { Switchboard } = window.lib;
    const a = new Switchboard({ storage: null });
    const b = new Switchboard({ storage: null });
    await a.connect();
    await b.connect();
    await a.setName('ev-a');
    const online = a.once('online');
    await b.setName('ev-b');
    const seen = await online;
    const ring = b.once('ring');
    const call = await a.call('ev-b', { video: true });
    const rang = await ring;
    const accepted = a.once('accepted');
    await b.accept(call);
    const acc = await accepted;
    const got = b.once('signal');
    a.signal(b.id, { call, sdp: { type: 'offer', sdp: 'v=0' } });
    const sig = await got;
    const ended = b.once('ended');
    await a.hangup(call);
    const end = await ended;
    const offline = a.once('offline');
    b.close();
    const off = await offline;
    a.close();
    return { seen: seen.peer.name, rang, call, acc: acc.by.name, sig, end, off: off.peer.name, aId: a.id };
  });
  assert.equal(out.seen, 'ev-b');
  assert.deepEqual(out.rang, { type: 'ring', call: out.call, from: { id: out.aId, name: 'ev-a' }, meta: { video: true } });
  assert.equal(out.acc, 'ev-b');
  assert.deepEqual(out.sig, { type: 'signal', from: { id: out.aId, name: 'ev-a' }, data: { call: out.call, sdp: { type: 'offer', sdp: 'v=0' } } });
  assert.deepEqual(out.end, { type: 'ended', call: out.call, reason: 'hangup' });
  assert.equal(out.off, 'ev-b');
});

test('ICE servers come from the welcome', async () => {
  const ice = await page.evaluate(async () => {
    const sb = new window.lib.Switchboard({ storage: null });
    await sb.connect();
    const servers = sb.iceServers;
    sb.close();
    return servers;
  });
  assert.deepEqual(ice, [{ urls: ['stun:127.0.0.1:3478'] }]);
});

test('a connection dropped by the server resumes the same session', async () => {
  const out = await page.evaluate(async () => {
    const sb = new window.lib.Switchboard();
    await sb.connect();
    await sb.setName('resumer');
    const id = sb.id;
    const closed = sb.once('close');
    const back = sb.once('welcome');
    // Far over --rate/--burst: the server closes with 1008 and keeps the session.
    for (let i = 0; i < 300; i++) sb.send({ type: 'ping' });
    const close = await closed;
    const welcome = await back;
    const peers = await sb.listPeers();
    const saved = JSON.parse(sessionStorage.getItem('switchboard:' + sb.url));
    sb.close();
    return { id, close, welcome, peers, saved };
  });
  assert.equal(out.close.code, 1008);
  assert.equal(out.close.reconnecting, true);
  assert.equal(out.welcome.resumed, true);
  assert.equal(out.welcome.id, out.id);
  assert.ok(Array.isArray(out.peers));
  assert.equal(out.saved.name, 'resumer');
  assert.equal(out.saved.token, out.welcome.resume);
});
