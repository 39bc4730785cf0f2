// Test client for the `basic` dialect, driven by tests/browser/basic.test.mjs
// through window.basic. Written for switchboard's tests from protocols.md
// §1.2 (client flow); STUN-free, fake media from Chromium's flags.
'use strict';

(() => {
  const wsUrl = new URLSearchParams(location.search).get('ws') || 'ws://localhost:8888';
  const state = {
    name: null,
    connectedUser: null,
    received: [], // every frame from the server, parsed
    errors: [],
    leaves: 0,
  };
  let conn;
  let pc = null;
  let stream = null;

  const $ = (id) => document.getElementById(id);
  const show = (s) => { $('state').textContent = s; };
  const log = (s) => { $('log').textContent += s + '\n'; };

  // The original client's send(): adds the current peer as `name`.
  function send(message) {
    if (state.connectedUser) message.name = state.connectedUser;
    conn.send(JSON.stringify(message));
  }

  function setupPeerConnection() {
    pc = new RTCPeerConnection({ iceServers: [] });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    pc.ontrack = (e) => { $('theirs').srcObject = e.streams[0]; };
    pc.onicecandidate = (e) => {
      if (e.candidate) send({ type: 'candidate', candidate: e.candidate });
    };
  }

  async function onLogin(success) {
    if (!success) { show('login refused'); return; }
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    $('yours').srcObject = stream;
    setupPeerConnection();
    show('logged in as ' + state.name);
  }

  async function onOffer(offer, name) {
    state.connectedUser = name;
    await pc.setRemoteDescription(offer);
    const answer = await pc.createAnswer();
    pc.setLocalDescription(answer); // as the original: answer is sent right away
    send({ type: 'answer', answer });
    show('answered ' + name);
  }

  function onLeave() {
    state.leaves += 1;
    state.connectedUser = null;
    $('theirs').srcObject = null;
    pc.close();
    pc.onicecandidate = null;
    pc.ontrack = null;
    setupPeerConnection();
    show('peer left');
  }

  const handlers = {
    login: (m) => onLogin(m.success),
    offer: (m) => onOffer(m.offer, m.name),
    answer: (m) => pc.setRemoteDescription(m.answer),
    candidate: (m) => { pc.addIceCandidate(m.candidate); show('in call'); },
    leave: () => onLeave(),
  };

  window.basic = {
    state,
    /** Opens the socket; resolves once it is open. */
    open() {
      conn = new WebSocket(wsUrl);
      conn.onmessage = async (ev) => {
        const m = JSON.parse(ev.data);
        state.received.push(m);
        log('< ' + ev.data.slice(0, 120));
        try { await handlers[m.type]?.(m); } catch (e) { state.errors.push(String(e)); }
      };
      return new Promise((resolve, reject) => {
        conn.onopen = () => { show('connected'); resolve(); };
        conn.onerror = () => reject(new Error('WebSocket to ' + wsUrl + ' failed'));
      });
    },
    /** Logs in; resolves when the page has its media and peer connection. */
    async login(name) {
      state.name = name;
      send({ type: 'login', name });
      while (!pc) {
        if (state.received.some((m) => m.type === 'login' && !m.success)) throw new Error('login refused');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    /** The caller's side: the offer is sent first, then set locally. */
    async call(peer) {
      state.connectedUser = peer;
      const offer = await pc.createOffer();
      send({ type: 'offer', offer });
      await pc.setLocalDescription(offer);
      show('calling ' + peer);
    },
    /** Hang-up: send leave, then reset our own peer connection. */
    hangUp() {
      send({ type: 'leave' });
      onLeave();
      state.leaves -= 1; // our own reset is not a leave received
    },
    connectionState: () => pc?.connectionState ?? 'none',
    remoteVideoWidth: () => $('theirs').videoWidth,
  };
})();
