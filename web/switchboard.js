// switchboard.js: client for switchboard's native protocol (JSON over
// WebSocket at /ws, see docs/protocol.md). An ES module with no dependencies:
//
//   import { Switchboard } from '/switchboard.js';
//   const sb = new Switchboard();
//   await sb.connect();
//   await sb.setName('alice');
//   sb.on('ring', (ev) => sb.accept(ev.call));
//
// The connection resumes by itself: the resume token from the welcome is kept
// in sessionStorage, so a dropped socket or a page reload within the server's
// grace period comes back as the same peer (same id, name, rooms and call).

/** Server events re-emitted by {@link Switchboard#on}. */
export const SERVER_EVENTS = Object.freeze([
  'welcome', 'online', 'offline', 'joined', 'left', 'ring', 'accepted', 'rejected',
  'ended', 'away', 'back', 'signal', 'undeliverable', 'shutdown',
]);

/**
 * An error reply from the server (or a local failure), with a stable `code`
 * such as `name_taken`, `busy`, `unknown_peer`, `disconnected`.
 */
export class SwitchboardError extends Error {
  /**
   * @param {string} code machine-readable code
   * @param {string} message text for people
   */
  constructor(code, message) {
    super(message);
    this.name = 'SwitchboardError';
    /** @type {string} */
    this.code = code;
  }
}

const STORAGE_PREFIX = 'switchboard:';
const MAX_BACKLOG = 500;

function defaultUrl() {
  if (typeof location === 'undefined') return 'ws://127.0.0.1:8080/ws';
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

function sessionStore() {
  try {
    return typeof sessionStorage === 'undefined' ? null : sessionStorage;
  } catch {
    return null; // storage blocked (sandboxed frame, privacy settings)
  }
}

/**
 * One peer's connection to a switchboard server.
 *
 * Local events (besides the server's, see {@link SERVER_EVENTS}):
 * - `state` `{state}`: `idle` | `connecting` | `open` | `reconnecting` | `closed`
 * - `close` `{code, reason, reconnecting}`: the socket closed
 * - `error` `SwitchboardError`: an error frame that answers no request
 *   (a fire-and-forget signal to a gone peer, a refused resume...)
 * - `name` `{name}`: the name was re-claimed after a failed resume
 */
export class Switchboard {
  /**
   * @param {object} [opts]
   * @param {string} [opts.url] WebSocket URL (default: `/ws` on this page's host)
   * @param {boolean} [opts.reconnect=true] reconnect (and resume) after a drop
   * @param {Storage|null} [opts.storage] where the resume token is kept (default sessionStorage)
   * @param {typeof WebSocket} [opts.WebSocket] WebSocket implementation (for non-browser use)
   */
  constructor(opts = {}) {
    this.url = opts.url ?? null;
    this.reconnect = opts.reconnect ?? true;
    this.storage = opts.storage === undefined ? sessionStore() : opts.storage;
    this.WebSocketImpl = opts.WebSocket ?? globalThis.WebSocket;
    /** Server-assigned peer id (`p1`...), set by the welcome. @type {string|null} */
    this.id = null;
    /** The name this peer claimed, if any. @type {string|null} */
    this.name = null;
    /** `RTCIceServer` objects from the welcome: pass them to RTCPeerConnection. @type {RTCIceServer[]} */
    this.iceServers = [];
    /** Limits from the welcome (`max_frame`, `rate`, `burst`, `room_max`). @type {object} */
    this.limits = {};
    /** Seconds a dropped connection may resume. @type {number} */
    this.graceSeconds = 0;
    /** Connection state: idle, connecting, open, reconnecting, closed. @type {string} */
    this.state = 'idle';
    this._ws = null;
    this._token = null;
    this._nextRef = 1;
    this._pending = new Map();
    this._handlers = new Map();
    this._backlog = [];
    this._retry = 0;
    this._retryTimer = null;
    this._welcomeWaiters = [];
  }

  /** Storage key of this server's session. */
  get _key() {
    return STORAGE_PREFIX + this.url;
  }

  _load() {
    try {
      const saved = JSON.parse(this.storage?.getItem(this._key) ?? 'null');
      if (saved && typeof saved.token === 'string') {
        this._token = saved.token;
        this.name = typeof saved.name === 'string' ? saved.name : null;
      }
    } catch {
      /* unreadable: start fresh */
    }
  }

  _save() {
    try {
      if (this._token) {
        this.storage?.setItem(this._key, JSON.stringify({ token: this._token, name: this.name }));
      } else {
        this.storage?.removeItem(this._key);
      }
    } catch {
      /* quota or blocked storage: resume then only works without a reload */
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit('state', { state });
  }

  /**
   * Opens the connection; resumes the session saved for this URL if any.
   * Resolves with the welcome once the server greets.
   * @param {string} [url] WebSocket URL (default: the constructor's, else `/ws` on this host)
   * @returns {Promise<{id: string, resume: string, resumed: boolean, grace_s: number, ice_servers: RTCIceServer[], limits: object}>}
   */
  connect(url) {
    if (url) this.url = url;
    if (!this.url) this.url = defaultUrl();
    if (this.state === 'open' || this.state === 'connecting' || this.state === 'reconnecting') {
      return this._nextWelcome();
    }
    this._load();
    this._open('connecting');
    return this._nextWelcome();
  }

  _nextWelcome() {
    return new Promise((resolve, reject) => this._welcomeWaiters.push({ resolve, reject }));
  }

  _open(state) {
    this._setState(state);
    const url = this._token ? `${this.url}${this.url.includes('?') ? '&' : '?'}resume=${encodeURIComponent(this._token)}` : this.url;
    let ws;
    try {
      ws = new this.WebSocketImpl(url);
    } catch (e) {
      this._setState('closed');
      this._settleWelcome(new SwitchboardError('bad_url', `cannot open ${this.url}: ${e.message}`));
      return;
    }
    this._ws = ws;
    ws.onmessage = (m) => this._receive(m.data);
    ws.onclose = (e) => this._closed(ws, e.code, e.reason);
    ws.onerror = () => {}; // onclose follows with the details we have
  }

  _settleWelcome(errorOrWelcome) {
    const waiters = this._welcomeWaiters.splice(0);
    for (const w of waiters) {
      if (errorOrWelcome instanceof Error) w.reject(errorOrWelcome);
      else w.resolve(errorOrWelcome);
    }
  }

  _closed(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    for (const [, p] of this._pending) {
      p.reject(new SwitchboardError('disconnected', 'the connection dropped before the server answered; try again'));
    }
    this._pending.clear();
    const final = this.state === 'closed' || !this.reconnect || code === 1000;
    this._emit('close', { code, reason, reconnecting: !final });
    if (final) {
      this._setState('closed');
      this._backlog = [];
      this._settleWelcome(new SwitchboardError('closed', `connection closed (${code}${reason ? ': ' + reason : ''})`));
      return;
    }
    // Back off: 0.25 s, 0.5 s, 1 s ... at most 5 s, with some jitter.
    const delay = Math.min(5000, 250 * 2 ** this._retry) * (0.75 + Math.random() * 0.5);
    this._retry += 1;
    this._setState('reconnecting');
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (this.state === 'reconnecting') this._open('reconnecting');
    }, delay);
  }

  _receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return; // the server only sends JSON; ignore anything else
    }
    if (!msg || typeof msg !== 'object') return;
    const { type } = msg;
    if ((type === 'ok' || type === 'error' || type === 'pong') && msg.ref != null && this._pending.has(msg.ref)) {
      const p = this._pending.get(msg.ref);
      this._pending.delete(msg.ref);
      if (type === 'error') p.reject(new SwitchboardError(msg.code, msg.message));
      else p.resolve(msg);
      return;
    }
    if (type === 'error') {
      this._emit('error', new SwitchboardError(msg.code, msg.message));
      return;
    }
    if (type === 'welcome') {
      this._welcome(msg);
      return;
    }
    this._emit(type, msg);
  }

  _welcome(msg) {
    const lostName = !msg.resumed && this.name;
    this.id = msg.id;
    this._token = msg.resume ?? null;
    this.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
    this.limits = msg.limits ?? {};
    this.graceSeconds = msg.grace_s ?? 0;
    this._retry = 0;
    if (!msg.resumed) this.name = null;
    this._save();
    this._setState('open');
    // Frames written while disconnected go out now, in order.
    const backlog = this._backlog.splice(0);
    for (const frame of backlog) this._ws?.send(frame);
    this._settleWelcome(msg);
    this._emit('welcome', msg);
    if (lostName) {
      // The old session expired: take the name again so others still see us.
      this.setName(lostName).then(
        () => this._emit('name', { name: lostName }),
        (e) => this._emit('error', e),
      );
    }
  }

  _write(obj) {
    const frame = JSON.stringify(obj);
    if (this._ws && this.state === 'open') {
      this._ws.send(frame);
      return true;
    }
    if (this.state === 'reconnecting' || this.state === 'connecting') {
      if (this._backlog.length >= MAX_BACKLOG) return false;
      this._backlog.push(frame);
      return true;
    }
    return false;
  }

  /**
   * Sends a request with a fresh `ref`; resolves with the server's
   * `{"type":"ok",...}` reply, rejects with a {@link SwitchboardError}
   * carrying the error `code`. While reconnecting, the request waits and is
   * sent once the session is back.
   * @param {object} msg a message with `type` (any `ref` is replaced)
   * @returns {Promise<object>}
   */
  request(msg) {
    const ref = this._nextRef++;
    return new Promise((resolve, reject) => {
      this._pending.set(ref, { resolve, reject });
      if (!this._write({ ...msg, ref })) {
        this._pending.delete(ref);
        reject(new SwitchboardError('not_connected', 'not connected to the server; call connect() first'));
      }
    });
  }

  /**
   * Sends a message that expects no reply (errors arrive as `error` events).
   * @param {object} msg
   * @returns {boolean} false if it could not be sent or queued
   */
  send(msg) {
    return this._write(msg);
  }

  /**
   * Claims a display name (unique on this server) and enters the lobby, so
   * others see this peer in their `online` events and peer lists.
   * @param {string} name 1 to 64 characters
   * @returns {Promise<{name: string, peers: Array<{id: string, name: string|null}>}>} the others online
   */
  async setName(name) {
    const reply = await this.request({ type: 'name', name });
    this.name = reply.name;
    this._save();
    return { name: reply.name, peers: reply.peers ?? [] };
  }

  /**
   * The named peers online, not counting this one.
   * @returns {Promise<Array<{id: string, name: string|null}>>}
   */
  async listPeers() {
    const reply = await this.request({ type: 'peers' });
    return reply.peers ?? [];
  }

  /**
   * Rings a peer. Resolves with the call id once it rings; then expect
   * `accepted`, `rejected` or `ended` (reason `timeout`).
   * @param {string} to peer id (`p7`) or name
   * @param {*} [meta] any JSON shown to the callee (e.g. `{video: true}`)
   * @returns {Promise<string>} the call id (`c1`...)
   */
  async call(to, meta) {
    const reply = await this.request(meta === undefined ? { type: 'call', to } : { type: 'call', to, meta });
    return reply.call;
  }

  /** Accepts a ringing call. @param {string} call @returns {Promise<object>} */
  accept(call) {
    return this.request({ type: 'accept', call });
  }

  /**
   * Declines a ringing call. @param {string} call
   * @param {string} [reason] shown to the caller (e.g. `busy`) @returns {Promise<object>}
   */
  reject(call, reason) {
    return this.request(reason === undefined ? { type: 'reject', call } : { type: 'reject', call, reason });
  }

  /** Withdraws a call that still rings (caller). @param {string} call @returns {Promise<object>} */
  cancel(call) {
    return this.request({ type: 'cancel', call });
  }

  /** Ends an accepted call (either side). @param {string} call @returns {Promise<object>} */
  hangup(call) {
    return this.request({ type: 'hangup', call });
  }

  /**
   * Relays opaque data (an SDP, an ICE candidate...) to one peer, which gets
   * `{"type":"signal","from":{id,name},"data":...}`. Fire-and-forget: a gone
   * peer shows up as an `error` event. With `ack`, resolves once relayed
   * (`{queued: true}` if the peer is away and it waits for its resume).
   * @param {string} to peer id or name
   * @param {*} data any JSON
   * @param {{ack?: boolean}} [opts]
   * @returns {Promise<object>|boolean}
   */
  signal(to, data, opts = {}) {
    const msg = { type: 'signal', to, data };
    return opts.ack ? this.request(msg) : this.send(msg);
  }

  /**
   * Relays data to every other member of a room this peer is in.
   * @param {string} room
   * @param {*} data
   * @returns {boolean}
   */
  signalRoom(room, data) {
    return this.send({ type: 'signal', room, data });
  }

  /**
   * Enters a room (at most `limits.room_max` members); the others get `joined`.
   * @param {string} room 1 to 64 characters
   * @returns {Promise<Array<{id: string, name: string|null}>>} the members already there
   */
  async join(room) {
    const reply = await this.request({ type: 'join', room });
    return reply.members ?? [];
  }

  /** Leaves a room; the others get `left`. @param {string} room @returns {Promise<object>} */
  leave(room) {
    return this.request({ type: 'leave', room });
  }

  /** Round trip to the server. @returns {Promise<object>} the `pong` */
  ping() {
    return this.request({ type: 'ping' });
  }

  /**
   * Says goodbye: the server frees the name, rooms and call at once, and the
   * saved session is forgotten (no resume).
   */
  close() {
    if (this._retryTimer) clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    this._setState('closed');
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'bye' }));
    this._token = null;
    this.name = null;
    this._save();
    if (ws && ws.readyState <= 1) ws.close(1000, 'bye');
  }

  /**
   * Subscribes to an event: a server event type (see {@link SERVER_EVENTS})
   * or `state`, `close`, `error`, `name`, or `*` for every server event.
   * @param {string} type
   * @param {(payload: any, type: string) => void} fn
   * @returns {() => void} unsubscribes
   */
  on(type, fn) {
    if (!this._handlers.has(type)) this._handlers.set(type, new Set());
    this._handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  /** Unsubscribes a handler given to {@link Switchboard#on}. @param {string} type @param {Function} fn */
  off(type, fn) {
    this._handlers.get(type)?.delete(fn);
  }

  /**
   * Resolves with the next event of this type (optionally one matching `pred`).
   * @param {string} type @param {(payload: any) => boolean} [pred] @returns {Promise<any>}
   */
  once(type, pred = () => true) {
    return new Promise((resolve) => {
      const off = this.on(type, (payload) => {
        if (!pred(payload)) return;
        off();
        resolve(payload);
      });
    });
  }

  _emit(type, payload) {
    const run = (set) => {
      for (const fn of [...(set ?? [])]) {
        try {
          fn(payload, type);
        } catch (e) {
          console.error(`switchboard: a '${type}' handler threw`, e);
        }
      }
    };
    run(this._handlers.get(type));
    if (SERVER_EVENTS.includes(type)) run(this._handlers.get('*'));
  }
}
