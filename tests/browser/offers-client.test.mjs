//! The `offers` dialect against the real npm socket.io-client v4 (the
//! library the original app's page loads), in Node: join with auth, offer,
//! answer with emitWithAck, trickle candidates both ways. Over HTTPS with a
//! certificate from `switchboard cert` (trusted through its CA, as a browser
//! that imported it would), for each transport setting the client has:
//! polling only, polling upgraded to websocket (the default), websocket only.
//! Plus one run over plain HTTP (--no-tls).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { io } from 'socket.io-client';
import { startServer, binaryPath } from './lib/server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BUNDLE = path.join(HERE, 'node_modules/socket.io-client/dist/socket.io.js');
const WAIT_MS = 10000;

const OFFER = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
const ANSWER = { type: 'answer', sdp: 'v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n' };
const cand = (n, ufrag) => ({
  candidate: `candidate:${n} 1 udp 2122260223 127.0.0.1 ${50000 + n} typ host`,
  sdpMid: '0', sdpMLineIndex: 0, usernameFragment: ufrag,
});

let certDir;
let tlsServer;
let plainServer;
let ca;

before(async () => {
  certDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-offers-cert-'));
  execFileSync(binaryPath(), ['cert', '--dir', certDir], { stdio: 'ignore' });
  ca = readFileSync(path.join(certDir, 'ca.crt'));
  tlsServer = await startServer(['--dialect', 'offers', '--socketio-client', BUNDLE,
    '--tls-cert', path.join(certDir, 'cert.crt'), '--tls-key', path.join(certDir, 'cert.key')]);
  plainServer = await startServer(['--dialect', 'offers', '--no-tls', '--socketio-client', BUNDLE]);
});

after(async () => {
  await tlsServer?.stop();
  await plainServer?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

/** Resolves with the event's first argument, or fails after WAIT_MS. */
function next(socket, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${WAIT_MS} ms`)), WAIT_MS);
    socket.once(event, (arg) => { clearTimeout(timer); resolve(arg); });
  });
}

/** Connects as the original page does: `io.connect(url, {auth: {userName, password}})`. */
async function join(url, userName, transports, password = 'x') {
  const socket = io(url, {
    auth: { userName, password }, transports, ca, forceNew: true, reconnection: false,
  });
  await next(socket, 'connect');
  return socket;
}

/** Waits until the server has handled what `socket` sent before (its
 *  events are handled in order; a newAnswer matching no offer is acked []). */
async function barrier(socket) {
  assert.deepEqual(await socket.timeout(WAIT_MS).emitWithAck('newAnswer', { offererUserName: '(barrier)' }), []);
}

let users = 0;

async function exchange(url, transports) {
  const a = `Rob-${++users}`;
  const b = `Rob-${++users}`;
  const offerer = await join(url, a, transports);
  const answerer = await join(url, b, transports);
  if (transports.includes('websocket') && offerer.io.engine.transport.name !== 'websocket') {
    await Promise.all([next(offerer.io.engine, 'upgrade'), answerer.io.engine.transport.name === 'websocket'
      ? null : next(answerer.io.engine, 'upgrade')]);
  }
  try {
    const awaiting = next(answerer, 'newOfferAwaiting');
    offerer.emit('newOffer', OFFER);
    const [offerObj] = await awaiting;
    assert.deepEqual(offerObj, {
      offererUserName: a, offer: OFFER, offerIceCandidates: [],
      answererUserName: null, answer: null, answererIceCandidates: [],
    });

    // Candidates flow before any answer exists; the server holds them.
    offerer.emit('sendIceCandidateToSignalingServer', { iceCandidate: cand(1, 'aa'), iceUserName: a, didIOffer: true });
    await barrier(offerer);

    const response = next(offerer, 'answerResponse');
    offerObj.answer = ANSWER;
    const held = await answerer.timeout(WAIT_MS).emitWithAck('newAnswer', offerObj);
    assert.deepEqual(held, [cand(1, 'aa')], 'the ack carries the candidates gathered so far');
    const answered = await response;
    assert.equal(answered.answererUserName, b);
    assert.deepEqual(answered.answer, ANSWER);

    const toOfferer = next(offerer, 'receivedIceCandidateFromServer');
    answerer.emit('sendIceCandidateToSignalingServer', { iceCandidate: cand(2, 'bb'), iceUserName: b, didIOffer: false });
    assert.deepEqual(await toOfferer, cand(2, 'bb'));

    const toAnswerer = next(answerer, 'receivedIceCandidateFromServer');
    offerer.emit('sendIceCandidateToSignalingServer', { iceCandidate: cand(3, 'aa'), iceUserName: a, didIOffer: true });
    assert.deepEqual(await toAnswerer, cand(3, 'aa'));

    const expected = transports.length === 1 ? transports[0] : 'websocket';
    assert.equal(offerer.io.engine.transport.name, expected);
    assert.equal(answerer.io.engine.transport.name, expected);

    // A newcomer is shown the board, this (answered) offer included.
    const late = io(url, { auth: { userName: `Rob-${++users}`, password: 'x' }, transports, ca, forceNew: true, reconnection: false });
    const board = await next(late, 'availableOffers');
    late.close();
    const mine = board.find((o) => o.offererUserName === a);
    assert.deepEqual(mine.offerIceCandidates, [cand(1, 'aa'), cand(3, 'aa')]);
    assert.equal(mine.answererUserName, b);
  } finally {
    offerer.close();
    answerer.close();
  }
}

test('npm socket.io-client over HTTPS, long-polling only', async () => {
  await exchange(`https://localhost:${tlsServer.port}/`, ['polling']);
});

test('npm socket.io-client over HTTPS, polling upgraded to websocket (client default)', async () => {
  await exchange(`https://localhost:${tlsServer.port}/`, ['polling', 'websocket']);
});

test('npm socket.io-client over HTTPS, websocket only', async () => {
  await exchange(`https://localhost:${tlsServer.port}/`, ['websocket']);
});

test('npm socket.io-client over plain HTTP (--no-tls)', async () => {
  await exchange(`http://127.0.0.1:${plainServer.port}/`, ['polling', 'websocket']);
});

test('a wrong password connects, then the server disconnects (not connect_error)', async () => {
  const socket = io(`https://localhost:${tlsServer.port}/`, {
    auth: { userName: 'Mallory', password: 'nope' }, ca, forceNew: true, reconnection: false,
  });
  let connectError = null;
  socket.on('connect_error', (e) => { connectError = e; });
  const disconnected = next(socket, 'disconnect');
  await next(socket, 'connect');
  assert.equal(await disconnected, 'io server disconnect');
  assert.equal(connectError, null);
  socket.close();
});

test('the client bundle is served at /socket.io/socket.io.js', async () => {
  const res = await fetch(`http://127.0.0.1:${plainServer.port}/socket.io/socket.io.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /javascript/);
  assert.equal(await res.text(), readFileSync(BUNDLE, 'utf8'));
});
