// Test client for the `one2one` dialect, driven by
// tests/browser/one2one.test.mjs through window.o2o. Written for
// switchboard's tests from protocols.md §3.5; STUN-free, fake media.
'use strict';

(() => {
  // As the original derives it: same host and port as the page, path /call.
  const wsUrl = 'ws://' + location.hostname + ':' + location.port + '/call';
  const state = {
    name: null,
    status: 'idle', // idle -> waiting (registered) -> calling / in-call
    received: [],
    errors: [],
    rejection: null,
  };
  let ws;
  let pc = null;
  let pending = []; // remote candidates waiting for a stable pc with a remote description

  const $ = (id) => document.getElementById(id);
  const show = (s) => { $('state').textContent = s; };
  const log = (s) => { $('log').textContent += s + '\n'; };
  const send = (m) => ws.send(JSON.stringify(m));

  function newPeerConnection() {
    pc = new RTCPeerConnection({ iceServers: [] });
    pending = [];
    pc.onicecandidate = (e) => { if (e.candidate) send({ id: 'onIceCandidate', candidate: e.candidate }); };
    pc.ontrack = (e) => { $('remote').srcObject = e.streams[0]; };
    pc.onsignalingstatechange = () => { if (pc.signalingState === 'stable') flush(); };
  }

  function canAdd() {
    return pc && pc.signalingState === 'stable' && pc.remoteDescription;
  }

  function flush() {
    if (!canAdd()) return;
    const queued = pending;
    pending = [];
    for (const c of queued) pc.addIceCandidate(c).catch((e) => state.errors.push('addIceCandidate: ' + e));
  }

  async function media() {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, frameRate: 15 } });
    $('local').srcObject = stream;
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
  }

  async function onIncomingCall(m) {
    if (state.status !== 'waiting') return; // the original's reject path throws: nothing is sent
    state.status = 'in-call';
    newPeerConnection();
    await media();
    await pc.setRemoteDescription(m.offer);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    send({ id: 'incomingCallResponse', from: m.from, callResponse: 'accept', sdpOffer: pc.localDescription });
    show('accepted call from ' + m.from);
  }

  async function onCallResponse(m) {
    if (m.response !== 'accepted') {
      state.rejection = m.message ?? m.response;
      state.status = 'waiting';
      show('rejected: ' + state.rejection);
      return;
    }
    await pc.setRemoteDescription(m.sdpAnswer);
    show('in call');
  }

  async function onStartCommunication(m) {
    // The server sends the caller's offer back here; the original client
    // applies it as the remote description, so do we.
    await pc.setRemoteDescription(m.sdpAnswer).catch((e) => log('startCommunication: ' + e));
    show('in call');
  }

  function onIceCandidate(m) {
    if (canAdd()) pc.addIceCandidate(m.candidate).catch((e) => state.errors.push('addIceCandidate: ' + e));
    else pending.push(m.candidate);
  }

  const handlers = {
    registerResponse: (m) => { if (m.response === 'accepted') state.status = 'waiting'; },
    incomingCall: onIncomingCall,
    callResponse: onCallResponse,
    startCommunication: onStartCommunication,
    iceCandidate: onIceCandidate,
  };

  window.o2o = {
    state,
    open() {
      ws = new WebSocket(wsUrl);
      ws.onmessage = async (ev) => {
        const m = JSON.parse(ev.data);
        state.received.push(m);
        log('< ' + ev.data.slice(0, 120));
        try { await handlers[m.id]?.(m); } catch (e) { state.errors.push(m.id + ': ' + e); }
      };
      return new Promise((resolve, reject) => {
        ws.onopen = () => {
          setInterval(() => send({ id: 'ping' }), 30000);
          show('connected');
          resolve();
        };
        ws.onerror = () => reject(new Error('WebSocket to ' + wsUrl + ' failed'));
      });
    },
    /** Registers; resolves with the server's response ("accepted"/"rejected"). */
    async register(name) {
      state.name = name;
      const before = state.received.length;
      send({ id: 'register', name });
      for (;;) {
        const r = state.received.slice(before).find((m) => m.id === 'registerResponse');
        if (r) return r.response;
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    /** The caller: media, offer, setLocalDescription, then `call`. */
    async call(to) {
      state.status = 'calling';
      newPeerConnection();
      await media();
      const offer = await pc.createOffer({ offerToReceiveAudio: true, offerToReceiveVideo: true });
      await pc.setLocalDescription(offer);
      send({ id: 'call', from: state.name, to, sdpOffer: pc.localDescription });
      show('calling ' + to);
    },
    list() { send({ id: 'list' }); },
    connectionState: () => pc?.connectionState ?? 'none',
    remoteVideoWidth: () => $('remote').videoWidth,
  };
})();
