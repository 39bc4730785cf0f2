// peers.js: the call app's media and WebRTC side. It holds the local camera
// and microphone stream and one RTCPeerConnection per remote peer (one for a
// 1:1 call, one per member in a room). It negotiates through
// Switchboard#signal.
//
// Scheme: whoever starts sends the offer. An offer from a peer that already
// has a connection replaces that connection (the peer reloaded, or rejoined).
// ICE candidates trickle through `signal`, and those that arrive before the
// remote description wait for it. Signals are handled one at a time, in
// order. While a connection is up, its path (direct, or relayed by a TURN
// server) is read from getStats() and reported when it changes.

/** How often the path of a live connection is checked again: ICE may switch pairs mid-call. */
const PATH_CHECK_MS = 3000;

/**
 * The path media takes over `pc`: 'relayed' when the local or the remote
 * candidate of the selected pair is a TURN relay, 'direct' otherwise, and
 * null while no pair is selected.
 * @param {RTCPeerConnection} pc
 * @returns {Promise<'direct'|'relayed'|null>}
 */
export async function mediaPath(pc) {
  const stats = await pc.getStats();
  let pair = null;
  for (const s of stats.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  }
  if (!pair) {
    // Firefox has no transport stats; it flags the pair itself.
    for (const s of stats.values()) if (s.type === 'candidate-pair' && s.selected) pair = s;
  }
  const local = pair && stats.get(pair.localCandidateId);
  const remote = pair && stats.get(pair.remoteCandidateId);
  if (!local || !remote) return null;
  return local.candidateType === 'relay' || remote.candidateType === 'relay' ? 'relayed' : 'direct';
}

export class PeerLinks {
  /**
   * @param {import('./switchboard.js').Switchboard} sb connected client (gives iceServers, relays signals)
   * @param {object} hooks
   * @param {(from: {id: string, name: string|null}, data: object) => object|null} hooks.context
   *   the context (`{call}` or `{room}`) a signal belongs to, or null to ignore it
   * @param {(peer: object, ctx: object, stream: MediaStream) => void} hooks.track remote media arrived
   * @param {(peer: object, pc: RTCPeerConnection) => void} hooks.state a connection changed state
   * @param {(peer: object, path: 'direct'|'relayed'|null) => void} hooks.path a live connection's path is known or changed
   */
  constructor(sb, hooks) {
    this.sb = sb;
    this.hooks = hooks;
    /** peer id -> RTCPeerConnection @type {Map<string, RTCPeerConnection>} */
    this.pcs = new Map();
    /** Local camera and microphone, while in a call or room. @type {MediaStream|null} */
    this.stream = null;
    this.chain = Promise.resolve();
    this.pathTimer = null;
  }

  /** Opens camera and microphone (once); throws the getUserMedia error. */
  async startMedia() {
    if (!this.stream) this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    return this.stream;
  }

  /** Releases camera and microphone. */
  stopMedia() {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
  }

  /** Local tracks of a kind ('audio' or 'video'). */
  tracks(kind) {
    return (kind === 'audio' ? this.stream?.getAudioTracks() : this.stream?.getVideoTracks()) ?? [];
  }

  /** Flips a kind on or off for every connection; returns whether it is now on. */
  toggle(kind) {
    const tracks = this.tracks(kind);
    const on = !tracks[0]?.enabled;
    tracks.forEach((t) => { t.enabled = on; });
    return on;
  }

  /** A fresh connection to `peer` for `ctx`, replacing any old one. */
  create(peer, ctx) {
    this.close(peer.id);
    const pc = new RTCPeerConnection({ iceServers: this.sb.iceServers });
    pc.peer = peer;
    pc.ctx = ctx;
    pc.pending = [];
    pc.path = null;
    if (this.stream) {
      for (const t of this.stream.getTracks()) pc.addTrack(t, this.stream);
    } else {
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    pc.onicecandidate = (e) => {
      if (e.candidate) this.sb.signal(peer.id, { ...ctx, candidate: e.candidate.toJSON() });
    };
    pc.ontrack = (e) => this.hooks.track(peer, ctx, e.streams[0] ?? new MediaStream([e.track]));
    pc.onconnectionstatechange = () => {
      this.hooks.state(peer, pc);
      if (pc.connectionState === 'connected') this.checkPaths();
    };
    this.pcs.set(peer.id, pc);
    return pc;
  }

  /** Closes the connection to one peer. */
  close(id) {
    const pc = this.pcs.get(id);
    if (!pc) return;
    pc.onicecandidate = pc.ontrack = pc.onconnectionstatechange = null;
    pc.close();
    this.pcs.delete(id);
  }

  /** Closes every connection. */
  closeAll() {
    for (const id of [...this.pcs.keys()]) this.close(id);
    clearTimeout(this.pathTimer);
    this.pathTimer = null;
  }

  /**
   * Reads the path of every connected connection and reports changes; runs
   * again every PATH_CHECK_MS while any connection is up.
   */
  checkPaths() {
    clearTimeout(this.pathTimer);
    this.pathTimer = null;
    const live = [...this.pcs].filter(([, pc]) => pc.connectionState === 'connected');
    if (!live.length) return;
    for (const [id, pc] of live) {
      mediaPath(pc).then((path) => {
        if (this.pcs.get(id) !== pc || pc.path === path) return; // replaced or closed meanwhile, or no change
        pc.path = path;
        this.hooks.path(pc.peer, path);
      }).catch(() => {}); // closed while reading: nothing to report
    }
    this.pathTimer = setTimeout(() => this.checkPaths(), PATH_CHECK_MS);
  }

  /** Connects to `peer` by sending it an offer. */
  async offer(peer, ctx) {
    const pc = this.create(peer, ctx);
    await pc.setLocalDescription();
    this.sb.signal(peer.id, { ...ctx, sdp: pc.localDescription.toJSON() });
  }

  /** Feeds a `signal` event in; handled after the ones before it. */
  handle(ev) {
    this.chain = this.chain.then(() => this.apply(ev)).catch((e) => console.warn('switchboard: signal failed', e));
    return this.chain;
  }

  async apply({ from, data }) {
    if (!data || typeof data !== 'object') return;
    const ctx = this.hooks.context(from, data);
    if (!ctx) return;
    const { sdp } = data;
    if (sdp?.type === 'offer') {
      const pc = this.create(from, ctx);
      await pc.setRemoteDescription(sdp);
      await pc.setLocalDescription();
      this.sb.signal(from.id, { ...ctx, sdp: pc.localDescription.toJSON() });
      await this.flush(pc);
    } else if (sdp?.type === 'answer') {
      const pc = this.pcs.get(from.id);
      if (pc?.signalingState !== 'have-local-offer') return;
      await pc.setRemoteDescription(sdp);
      await this.flush(pc);
    } else if (data.candidate) {
      const pc = this.pcs.get(from.id);
      if (!pc) return;
      if (pc.remoteDescription) await pc.addIceCandidate(data.candidate).catch(() => {});
      else pc.pending.push(data.candidate);
    }
  }

  async flush(pc) {
    for (const c of pc.pending.splice(0)) await pc.addIceCandidate(c).catch(() => {});
  }
}
