// app.js: the built-in call app's page logic. Pick a name, see who is
// online, call someone (1:1) or meet in a room (a mesh of up to `room_max`
// peers). Signaling goes through switchboard.js, and media and
// RTCPeerConnections through peers.js. Whoever starts sends the offers: the
// caller once `accepted`, a newcomer to each room member, a reloaded page to
// its partners.

import { Switchboard } from '/switchboard.js';
import { PeerLinks } from '/peers.js';

const $ = (id) => document.getElementById(id);
const sb = new Switchboard();
const APP_KEY = 'switchboard-app';

/** Everything the page shows. */
const state = {
  conn: 'idle',
  peers: new Map(), // id -> {id, name}: who is online
  call: null, // {id, peer: {id, name}, role: 'caller'|'callee', phase: 'calling'|'connecting'|'in-call'}
  incoming: null, // {call, from}
  room: null, // {name, members: Map(id -> {id, name})}
  callState: 'idle',
  status: 'Ready',
  error: null,
};
const links = new PeerLinks(sb, {
  context: signalContext,
  track: (peer, ctx, stream) => {
    const video = ctx.call ? $('remote-video') : roomTile(peer).querySelector('video');
    if (video.srcObject !== stream) video.srcObject = stream;
  },
  state: onPcState,
});

// ---------- rendering ----------

function setStatus(callState, text) {
  state.callState = callState;
  state.status = text;
  const el = $('call-state');
  el.textContent = text;
  el.dataset.state = callState;
  render();
}

function showError(message) {
  state.error = message;
  const el = $('error');
  el.textContent = message ?? '';
  el.hidden = !message;
}

const nameOf = (peer) => peer?.name || peer?.id || 'someone';

function render() {
  const conn = $('conn-state');
  conn.dataset.state = state.conn;
  conn.textContent = { open: 'online', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline', idle: 'offline' }[state.conn];
  const named = Boolean(sb.name);
  $('name-panel').hidden = named;
  $('app-panel').hidden = !named;
  $('me').hidden = !named;
  $('me').innerHTML = '';
  $('me').dataset.peerId = sb.id ?? '';
  $('me').dataset.name = sb.name ?? '';
  if (named) $('me').append('You are ', Object.assign(document.createElement('strong'), { textContent: sb.name }));

  const busy = Boolean(state.call || state.room || state.incoming);
  const list = $('peer-list');
  list.replaceChildren();
  for (const p of [...state.peers.values()].sort((a, b) => nameOf(a).localeCompare(nameOf(b)))) {
    const li = document.createElement('li');
    li.dataset.testid = `peer-${p.name}`;
    li.dataset.peer = p.id;
    const who = Object.assign(document.createElement('span'), { className: 'who', textContent: nameOf(p) });
    const btn = Object.assign(document.createElement('button'), { className: 'call', textContent: 'Call', disabled: busy });
    btn.dataset.testid = `call-${p.name}`;
    btn.onclick = () => startCall(p);
    li.append(who, btn);
    list.append(li);
  }
  $('peer-count').textContent = String(state.peers.size);
  $('no-peers').hidden = state.peers.size > 0;

  $('room-join').disabled = busy;
  $('room-input').disabled = busy;
  $('room-leave').hidden = !state.room;
  const inMedia = Boolean(state.call || state.room);
  $('hangup-btn').disabled = !inMedia;
  $('hangup-btn').textContent = state.room ? 'Leave room' : state.call?.phase === 'calling' ? 'Cancel' : 'Hang up';
  $('mute-btn').disabled = !links.tracks('audio').length;
  $('camera-btn').disabled = !links.tracks('video').length;
  $('remote-tile').hidden = !state.call;
  $('local-tile').hidden = !links.stream;
  $('idle-hint').hidden = inMedia;
  $('remote-label').textContent = state.call ? nameOf(state.call.peer) : '';
}

// ---------- media and peer connections ----------

async function ensureMedia() {
  if (links.stream) return;
  try {
    await links.startMedia();
  } catch (e) {
    showError(`Camera/microphone unavailable (${e.name}): you will see and hear others but they will not see you.`);
  }
  $('local-video').srcObject = links.stream;
  resetToggles();
  render();
}

function stopMedia() {
  links.stopMedia();
  $('local-video').srcObject = null;
  resetToggles();
  render();
}

function resetToggles() {
  for (const id of ['mute-btn', 'camera-btn']) $(id).setAttribute('aria-pressed', 'false');
  $('mute-btn').textContent = 'Mute';
  $('camera-btn').textContent = 'Camera off';
}

function toggle(kind, btnId, onText, offText) {
  if (!links.tracks(kind).length) return;
  const on = links.toggle(kind);
  $(btnId).setAttribute('aria-pressed', String(!on));
  $(btnId).textContent = on ? onText : offText;
}

function closeAllPcs() {
  links.closeAll();
  $('remote-video').srcObject = null;
  document.querySelectorAll('.tile[data-peer]').forEach((t) => t.remove());
}

function onPcState(peer, pc) {
  const s = pc.connectionState;
  if (state.call && state.call.peer.id === peer.id) {
    if (s === 'connected') {
      state.call.phase = 'in-call';
      showError(null);
      setStatus('in-call', `In call with ${nameOf(peer)}`);
    } else if (s === 'failed') {
      showError(`The media connection to ${nameOf(peer)} failed (network or firewall); hang up and try again.`);
    }
  } else if (state.room) {
    const tile = document.querySelector(`.tile[data-peer="${peer.id}"] .badge`);
    if (tile) tile.textContent = s;
    if (s === 'failed') showError(`The media connection to ${nameOf(peer)} failed (network or firewall).`);
    renderRoomStatus();
  }
}

/** The call or room a signal belongs to, or null (a call or room we have left). */
function signalContext(from, data) {
  if (data.call && state.call?.id === data.call && state.call.peer.id === from.id) return { call: data.call };
  if (data.room && state.room?.name === data.room) {
    if (!state.room.members.has(from.id)) state.room.members.set(from.id, from);
    return { room: data.room };
  }
  return null;
}

// ---------- 1:1 calls ----------

const CALL_ERRORS = {
  busy: (p) => `${nameOf(p)} is busy in another call.`,
  unknown_peer: (p) => `${nameOf(p)} is no longer online.`,
  already_in_call: () => 'You are already in a call; hang up first.',
  self_call: () => 'You cannot call yourself.',
};

async function startCall(peer) {
  showError(null);
  await ensureMedia();
  try {
    const call = await sb.call(peer.id, { video: true });
    state.call = { id: call, peer, role: 'caller', phase: 'calling' };
    saveSession();
    setStatus('calling', `Calling ${nameOf(peer)}…`);
  } catch (e) {
    stopMedia();
    showError(CALL_ERRORS[e.code]?.(peer) ?? e.message);
    setStatus('idle', 'Ready');
  }
}

function endCall(text, error) {
  state.call = null;
  closeAllPcs();
  stopMedia();
  saveSession();
  if (error) showError(error);
  setStatus('ended', text);
}

async function hangupOrLeave() {
  if (state.room) return leaveRoom();
  const call = state.call;
  if (!call) return;
  endCall('Call ended');
  const done = call.phase === 'calling' ? sb.cancel(call.id) : sb.hangup(call.id);
  await done.catch(() => {}); // it may have ended on the other side meanwhile
}

function onRing({ call, from }) {
  if (state.call || state.room || state.incoming) {
    sb.reject(call, 'busy').catch(() => {});
    return;
  }
  state.incoming = { call, from };
  $('incoming-from').textContent = nameOf(from);
  $('incoming').showModal();
  setStatus('ringing', `${nameOf(from)} is calling…`);
}

async function acceptIncoming() {
  const inc = state.incoming;
  closeIncoming();
  if (!inc) return;
  showError(null);
  await ensureMedia();
  state.call = { id: inc.call, peer: inc.from, role: 'callee', phase: 'connecting' };
  saveSession();
  setStatus('connecting', `Connecting to ${nameOf(inc.from)}…`);
  try {
    await sb.accept(inc.call);
  } catch (e) {
    endCall('Call ended', e.code === 'unknown_call' ? `The call from ${nameOf(inc.from)} is no longer ringing.` : e.message);
  }
}

function rejectIncoming() {
  const inc = state.incoming;
  closeIncoming();
  if (!inc) return;
  sb.reject(inc.call).catch(() => {});
  setStatus('idle', `Declined call from ${nameOf(inc.from)}`);
}

function closeIncoming() {
  state.incoming = null;
  if ($('incoming').open) $('incoming').close();
  render();
}

function onAccepted({ call, by }) {
  if (state.call?.id !== call) return;
  state.call.phase = 'connecting';
  state.call.peer = by;
  setStatus('connecting', `Connecting to ${nameOf(by)}…`);
  links.offer(by, { call }).catch((e) => showError(`Could not start the media connection: ${e.message}`));
}

function onRejected({ call, by, reason }) {
  if (state.call?.id !== call) return;
  const text = reason === 'busy' ? `${nameOf(by)} is busy.` : `${nameOf(by)} declined the call.`;
  endCall('Call rejected', text);
}

function onEnded({ call, reason }) {
  if (state.incoming?.call === call) {
    const from = state.incoming.from;
    closeIncoming();
    setStatus('ended', `Missed call from ${nameOf(from)}`);
    return;
  }
  if (state.call?.id !== call) return;
  const who = nameOf(state.call.peer);
  const texts = {
    hangup: [`Call ended: ${who} hung up`],
    cancelled: [`Call ended: ${who} cancelled`],
    timeout: state.call.role === 'caller' ? ['No answer', `${who} did not answer.`] : [`Missed call from ${who}`],
    disconnected: ['Call ended', `${who} disconnected.`],
  };
  const [text, error] = texts[reason] ?? [`Call ended (${reason})`];
  endCall(text, error);
}

// ---------- rooms (mesh) ----------

function roomTile(peer) {
  let tile = document.querySelector(`.tile[data-peer="${peer.id}"]`);
  if (!tile) {
    tile = Object.assign(document.createElement('figure'), { className: 'tile remote' });
    tile.dataset.peer = peer.id;
    const video = Object.assign(document.createElement('video'), { autoplay: true, playsInline: true });
    video.dataset.testid = 'room-video';
    video.dataset.peer = peer.id;
    const label = Object.assign(document.createElement('figcaption'), { textContent: nameOf(peer) });
    const badge = Object.assign(document.createElement('span'), { className: 'badge', textContent: 'new' });
    tile.append(video, label, badge);
    $('videos').insertBefore(tile, $('local-tile'));
  }
  return tile;
}

function renderRoomStatus() {
  if (!state.room) return;
  const names = [...state.room.members.values()].map(nameOf);
  setStatus('room', `In room "${state.room.name}"${names.length ? ` with ${names.join(', ')}` : ' (waiting for others)'}`);
}

async function joinRoom(name, resuming = false) {
  showError(null);
  await ensureMedia();
  try {
    const members = await sb.join(name);
    state.room = { name, members: new Map(members.map((m) => [m.id, m])) };
    saveSession();
    renderRoomStatus();
    for (const m of members) {
      roomTile(m);
      links.offer(m, { room: name }).catch((e) => showError(`Could not connect to ${nameOf(m)}: ${e.message}`));
    }
  } catch (e) {
    stopMedia();
    const msg = e.code === 'room_full' ? `Room "${name}" is full (${sb.limits.room_max ?? 4} people at most).` : e.message;
    showError(resuming ? `Could not rejoin room "${name}": ${msg}` : msg);
    setStatus('idle', 'Ready');
  }
}

async function leaveRoom() {
  const room = state.room;
  if (!room) return;
  state.room = null;
  closeAllPcs();
  stopMedia();
  saveSession();
  setStatus('ended', `Left room "${room.name}"`);
  await sb.leave(room.name).catch(() => {});
}

function onJoined({ room, peer }) {
  if (state.room?.name !== room) return;
  state.room.members.set(peer.id, peer);
  roomTile(peer);
  renderRoomStatus(); // the newcomer sends the offer
}

function onLeft({ room, peer }) {
  if (state.room?.name !== room) return;
  state.room.members.delete(peer.id);
  links.close(peer.id);
  document.querySelector(`.tile[data-peer="${peer.id}"]`)?.remove();
  renderRoomStatus();
}

// ---------- session: presence, reload, resume ----------

function saveSession() {
  const s = { call: state.call && { id: state.call.id, peer: state.call.peer, role: state.call.role }, room: state.room?.name ?? null };
  try { sessionStorage.setItem(APP_KEY, JSON.stringify(s)); } catch { /* storage blocked: no restore after reload */ }
}

function loadSession() {
  try { return JSON.parse(sessionStorage.getItem(APP_KEY) ?? 'null') ?? {}; } catch { return {}; }
}

async function refreshPeers() {
  try {
    const peers = await sb.listPeers();
    state.peers = new Map(peers.filter((p) => p.id !== sb.id).map((p) => [p.id, p]));
    render();
  } catch (e) {
    showError(`Could not list who is online: ${e.message}`);
  }
}

/** After a reload that resumed our session: reconnect the call or room we were in. */
async function restore(welcome) {
  const saved = loadSession();
  if (!welcome.resumed) {
    if (saved.call || saved.room) showError('Your previous session expired; the call or room was left.');
    sessionStorage.removeItem(APP_KEY);
    return;
  }
  if (saved.call?.id) {
    await ensureMedia();
    state.call = { id: saved.call.id, peer: saved.call.peer, role: saved.call.role, phase: 'connecting' };
    setStatus('connecting', `Reconnecting to ${nameOf(saved.call.peer)}…`);
    links.offer(saved.call.peer, { call: saved.call.id }).catch((e) => showError(e.message));
  } else if (saved.room) {
    await joinRoom(saved.room, true);
  }
}

sb.on('state', ({ state: s }) => { state.conn = s; render(); });
sb.on('online', ({ peer }) => { if (peer.id !== sb.id) state.peers.set(peer.id, peer); render(); });
sb.on('offline', ({ peer }) => { state.peers.delete(peer.id); render(); });
sb.on('name', () => refreshPeers());
sb.on('ring', onRing);
sb.on('accepted', onAccepted);
sb.on('rejected', onRejected);
sb.on('ended', onEnded);
sb.on('joined', onJoined);
sb.on('left', onLeft);
sb.on('signal', (ev) => links.handle(ev));
sb.on('away', ({ call }) => {
  if (state.call?.id === call) setStatus(state.callState, `${nameOf(state.call.peer)}'s connection dropped; waiting for them to come back…`);
});
sb.on('back', ({ call }) => {
  if (state.call?.id === call) setStatus(state.callState, state.call.phase === 'in-call' ? `In call with ${nameOf(state.call.peer)}` : `${nameOf(state.call.peer)} is back`);
});
sb.on('shutdown', () => showError('The server is restarting; reconnecting…'));
sb.on('error', (e) => {
  if (e.code === 'bad_token') return; // an expired session: a fresh one follows
  if (e.code === 'unknown_peer' && (state.call || state.room)) return; // a candidate to someone who just left
  showError(e.message);
});
sb.on('welcome', (w) => {
  $('room-max').textContent = String(sb.limits.room_max ?? 4);
  if (!w.resumed && state.call) endCall('Call ended', 'The connection to the server was lost for too long; the call ended.');
  if (!w.resumed && state.room) {
    state.room = null;
    closeAllPcs();
    stopMedia();
    saveSession();
    showError('The connection to the server was lost for too long; you left the room.');
    setStatus('ended', 'Left the room');
  }
  if (!w.resumed && state.incoming) closeIncoming();
  if (sb.name) refreshPeers();
  render();
  return w;
});

$('name-form').onsubmit = async (e) => {
  e.preventDefault();
  const name = $('name-input').value.trim();
  if (!name) return;
  $('name-btn').disabled = true;
  try {
    const { peers } = await sb.setName(name);
    state.peers = new Map(peers.filter((p) => p.id !== sb.id).map((p) => [p.id, p]));
    showError(null);
    setStatus('idle', 'Ready');
  } catch (err) {
    showError(err.code === 'name_taken' ? `The name "${name}" is taken; choose another.` : err.message);
  } finally {
    $('name-btn').disabled = false;
    render();
  }
};
$('room-form').onsubmit = (e) => {
  e.preventDefault();
  const room = $('room-input').value.trim();
  if (room && !state.room && !state.call) joinRoom(room);
};
$('room-leave').onclick = () => leaveRoom();
$('hangup-btn').onclick = () => hangupOrLeave();
$('accept-btn').onclick = () => acceptIncoming();
$('reject-btn').onclick = () => rejectIncoming();
$('incoming').oncancel = (e) => { e.preventDefault(); rejectIncoming(); };
$('mute-btn').onclick = () => toggle('audio', 'mute-btn', 'Mute', 'Unmute');
$('camera-btn').onclick = () => toggle('video', 'camera-btn', 'Camera off', 'Camera on');

render();
sb.connect()
  .then(restore)
  .catch((e) => showError(`Cannot reach the server: ${e.message}. Is it running?`));
