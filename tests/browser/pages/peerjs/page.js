// Helpers the browser test calls through page.evaluate: connect a Peer to
// the switchboard that served this page, exchange data-connection messages
// and place or answer a media call. Everything received is recorded on
// window.pj for the test to read.
'use strict';

window.pj = {
  peer: null,
  received: [],
  errors: [],
  remoteFrames: 0,

  log(line) {
    document.getElementById('log').textContent += line + '\n';
  },

  /** Connects as `id` (or a server-given id if null); resolves with the id. */
  start(id) {
    const opts = {
      host: location.hostname,
      port: Number(location.port),
      path: '/',
      secure: false,
      config: { iceServers: [] },
      debug: 1,
    };
    const peer = id ? new Peer(id, opts) : new Peer(opts);
    this.peer = peer;
    peer.on('error', (e) => { this.errors.push(`${e.type}: ${e.message}`); this.log('error ' + e.type); });
    peer.on('connection', (conn) => this.track(conn));
    peer.on('call', async (call) => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      document.getElementById('local').srcObject = stream;
      call.on('stream', (remote) => this.show(remote));
      call.answer(stream);
    });
    return new Promise((resolve, reject) => {
      peer.on('open', (got) => { document.getElementById('me').textContent = got; resolve(got); });
      peer.on('error', (e) => reject(new Error(`${e.type}: ${e.message}`)));
    });
  },

  /** Records what a data connection receives and echoes it back. */
  track(conn) {
    conn.on('data', (data) => {
      this.received.push(data);
      if (typeof data === 'string' && data.startsWith('ping ')) conn.send('pong ' + data.slice(5));
    });
  },

  /** Opens a data connection to `id`, sends `count` pings; resolves when open. */
  connect(id, count) {
    const conn = this.peer.connect(id, { reliable: true });
    this.track(conn);
    return new Promise((resolve, reject) => {
      conn.on('open', () => {
        for (let i = 0; i < count; i++) conn.send(`ping ${i}`);
        resolve();
      });
      conn.on('error', reject);
    });
  },

  /** Calls `id` with the fake camera and microphone. */
  async call(id) {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    document.getElementById('local').srcObject = stream;
    const call = this.peer.call(id, stream);
    call.on('stream', (remote) => this.show(remote));
  },

  /** Plays a remote stream and counts the frames that get decoded. */
  show(stream) {
    const video = document.getElementById('remote');
    video.srcObject = stream;
    const count = () => {
      this.remoteFrames++;
      video.requestVideoFrameCallback(count);
    };
    video.requestVideoFrameCallback(count);
  },
};
