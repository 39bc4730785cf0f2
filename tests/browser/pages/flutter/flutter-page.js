// Test client for the `flutter` dialect. Our own code, following the
// documented flow of VertexChat's `Signaling` class (protocols.md §4.5):
// open the socket, wait, send `new`; invite = offer with session_id
// "<self>-<peer>" and candidates trickled at once; the callee answers, then
// adds the candidates it buffered. Debug state is on window.flutterDebug.
'use strict';

const params = new URLSearchParams(location.search);
const selfId = params.get('id') || String(Math.floor(Math.random() * 1e6));
const username = params.get('name') || 'user' + selfId;
const delay = Number(params.get('delay') ?? 2000);

const $ = (id) => document.getElementById(id);
const debug = { state: 'connecting', peers: [], received: [], errors: [], sessionId: null };
window.flutterDebug = debug;
$('me').textContent = `${username} (${selfId})`;

let pc = null;
let peerId = null;
let localStream = null;
let buffered = [];

function setState(s) {
  debug.state = s;
  $('state').textContent = s;
  $('hangup').disabled = !(s === 'calling' || s === 'in-call');
}

const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);

debug.socketUrl = socket.url;

function send(type, data) {
  socket.send(JSON.stringify({ type, data }));
}

socket.onopen = () => {
  // Like the app: give the server time to drop an old connection of ours.
  setTimeout(() => {
    send('new', { device_name: 'Chromium', id: selfId, username, user_agent: navigator.userAgent });
    setState('online');
  }, delay);
};
socket.onclose = () => setState('closed');
socket.onmessage = (e) => {
  const msg = JSON.parse(e.data);
  debug.received.push(msg.type);
  const handler = handlers[msg.type];
  if (handler) handler(msg.data).catch((err) => debug.errors.push(String(err)));
  // Unknown types (`error` included) are ignored, as by the app.
};

const handlers = {
  async peers(list) {
    debug.peers = list;
    const ul = $('peers');
    ul.replaceChildren();
    for (const p of list) {
      const li = document.createElement('li');
      li.dataset.testid = `peer-${p.id}`;
      li.textContent = `${p.username ?? '?'} (${p.id}) ${p.device_name ?? ''} `;
      if (p.id !== selfId) {
        const b = document.createElement('button');
        b.textContent = 'Call';
        b.dataset.testid = `call-${p.id}`;
        b.onclick = () => invite(p.id).catch((err) => debug.errors.push(String(err)));
        li.append(b);
      }
      ul.append(li);
    }
  },
  async offer(data) {
    peerId = data.id;
    debug.sessionId = data.session_id;
    setState('answering');
    pc = await createPc(data.id, data.session_id);
    await pc.setRemoteDescription(data.description);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    send('answer', { to: data.id, id: selfId, description: { sdp: answer.sdp, type: answer.type }, session_id: data.session_id });
    for (const c of buffered) await pc.addIceCandidate(c);
    buffered = [];
    setState('in-call');
  },
  async answer(data) {
    if (!pc) return;
    await pc.setRemoteDescription(data.description);
    for (const c of buffered) await pc.addIceCandidate(c);
    buffered = [];
    setState('in-call');
  },
  async candidate(data) {
    const c = new RTCIceCandidate(data.candidate);
    if (pc && pc.remoteDescription) await pc.addIceCandidate(c);
    else buffered.push(c);
  },
  async bye(data) {
    debug.bye = data;
    endCall();
  },
};

async function createPc(remoteId, sessionId) {
  // No STUN in tests: host candidates only.
  const conn = new RTCPeerConnection({ iceServers: [] });
  pc = conn;
  localStream ??= await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: 640, height: 480, frameRate: 30, facingMode: 'user' },
  });
  $('local-video').srcObject = localStream;
  for (const track of localStream.getTracks()) conn.addTrack(track, localStream);
  conn.onicecandidate = (e) => {
    if (!e.candidate) return;
    const { candidate, sdpMid, sdpMLineIndex } = e.candidate;
    send('candidate', { to: remoteId, id: selfId, candidate: { sdpMLineIndex, sdpMid, candidate }, session_id: sessionId });
  };
  conn.ontrack = (e) => { $('remote-video').srcObject = e.streams[0]; };
  return conn;
}

async function invite(id) {
  peerId = id;
  const sessionId = `${selfId}-${id}`;
  debug.sessionId = sessionId;
  setState('calling');
  const conn = await createPc(id, sessionId);
  const offer = await conn.createOffer({ offerToReceiveAudio: true, offerToReceiveVideo: true });
  await conn.setLocalDescription(offer);
  send('offer', { to: id, id: selfId, description: { sdp: offer.sdp, type: offer.type }, session_id: sessionId, media: 'video' });
}

function endCall() {
  pc?.close();
  pc = null;
  peerId = null;
  buffered = [];
  $('remote-video').srcObject = null;
  setState('online');
}

$('hangup').onclick = () => {
  send('bye', { session_id: debug.sessionId, from: selfId });
};

debug.pcState = () => pc?.connectionState ?? null;
debug.peerId = () => peerId;
