// app.js: the built-in call app's page logic. Pick a name, see who is
// online, call someone (1:1) or meet in a room (a mesh of up to `room_max`
// peers). A room is shared as a link, `/?room=NAME`, which joins that room
// once a name is chosen. Signaling goes through switchboard.js, and media
// and RTCPeerConnections through peers.js. Whoever starts sends the offers:
// the caller once `accepted`, a newcomer to each room member, a reloaded page
// to its partners. Each remote video shows whether its media goes direct or
// through a TURN relay.
//
// Everything the page shows is in `state`, changed only by the small
// functions under "state changes"; each ends in render(), the one function
// that draws the page (peer list and video tiles included) from `state`.

import { Switchboard } from '/switchboard.js';
import { PeerLinks } from '/peers.js';

const $ = (id) => document.getElementById(id);
const sb = new Switchboard();
const APP_KEY = 'switchboard-app';

const state = {
  conn: 'idle', // the server connection, as Switchboard#state
  naming: false, // a name request is out
  peers: new Map(), // id -> {id, name}: who else is online
  call: null, // {id, peer: {id, name}, role: 'caller'|'callee', phase: 'calling'|'connecting'|'in-call'}
  incoming: null, // {call, from}: a call ringing here
  joining: null, // the room a join request is out for
  room: null, // {name, members: Map(id -> {id, name})}
  remotes: new Map(), // peer id -> {connection, path, stream}: media from a call partner or room member
  linkedRoom: new URLSearchParams(location.search).get('room') || null, // from a room link, until tried
  copy: 'idle', // the copy-link button: 'idle', 'copied', or 'select' (no clipboard: the link is selected)
  callState: 'idle',
  status: 'Ready',
  error: null,
};

const links = new PeerLinks(sb, {
  context: signalContext,
  track: (peer, ctx, stream) => setRemote(peer.id, { stream }),
  state: onPcState,
  path: (peer, path) => setRemote(peer.id, { path }),
});

const nameOf = (peer) => peer?.name || peer?.id || 'someone';

/** The link that opens this app in `room` (the address itself when `room` is null). */
function roomLink(room) {
  const url = new URL('/', location.href);
  if (room) url.searchParams.set('room', room);
  return url.href;
}

// ---------- state changes ----------

function setConn(conn) {
  state.conn = conn;
  render();
}

function setNaming(naming) {
  state.naming = naming;
  render();
}

function setPeers(peers) {
  state.peers = new Map(peers.filter((p) => p.id !== sb.id).map((p) => [p.id, p]));
  render();
}

function addPeer(peer) {
  if (peer.id !== sb.id) state.peers.set(peer.id, peer);
  render();
}

function removePeer(id) {
  state.peers.delete(id);
  render();
}

function setStatus(callState, text) {
  state.callState = callState;
  state.status = text;
  render();
}

function showError(message) {
  state.error = message ?? null;
  render();
}

function setIncoming(incoming) {
  state.incoming = incoming;
  render();
}

function setCall(call) {
  state.call = call;
  saveSession();
  render();
}

function setJoining(room) {
  state.joining = room;
  render();
}

function setRoom(name, members) {
  state.room = { name, members: new Map(members.map((m) => [m.id, m])) };
  state.joining = null;
  state.copy = 'idle';
  saveSession();
  setRoomStatus();
}

function addMember(peer) {
  state.room.members.set(peer.id, peer);
  setRoomStatus();
}

function removeMember(id) {
  state.room.members.delete(id);
  closeRemote(id);
  setRoomStatus();
}

function setRoomStatus() {
  const names = [...state.room.members.values()].map(nameOf);
  setStatus('room', `In room "${state.room.name}"${names.length ? ` with ${names.join(', ')}` : ' (waiting for others)'}`);
}

function setLinkedRoom(room) {
  state.linkedRoom = room;
  render();
}

function setCopy(copy) {
  state.copy = copy;
  render();
}

/** Records what a media connection shows: `{connection}` state, `{path}`, `{stream}`. */
function setRemote(id, change) {
  const old = state.remotes.get(id) ?? { connection: 'new', path: null, stream: null };
  state.remotes.set(id, { ...old, ...change });
  render();
}

function closeRemote(id) {
  links.close(id);
  state.remotes.delete(id);
  render();
}

/**
 * Ends the call or room on this side, the one cleanup for both: closes every
 * media connection, releases camera and microphone, forgets the session.
 */
function endMedia(text, error) {
  state.call = null;
  state.room = null;
  links.closeAll();
  state.remotes.clear();
  links.stopMedia();
  saveSession();
  if (error) state.error = error;
  setStatus('ended', text);
}

async function startMedia() {
  if (links.stream) return;
  try {
    await links.startMedia();
  } catch (e) {
    showError(`Camera/microphone unavailable (${e.name}): you will see and hear others but they will not see you.`);
  }
  render();
}

function stopMedia() {
  links.stopMedia();
  render();
}

function toggle(kind) {
  if (!links.tracks(kind).length) return;
  links.toggle(kind);
  render();
}

// ---------- rendering ----------

const CONN_TEXT = { open: 'online', connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline', idle: 'offline' };
const COPY_TEXT = { idle: 'Copy link', copied: 'Copied', select: 'Press Ctrl+C to copy' };
const COPIED_MS = 2000; // how long the button says "Copied"
const PATH_TITLE = {
  direct: 'Media goes straight between you and them (peer to peer).',
  relayed: 'Media goes through a TURN relay server.',
};

/** Draws the whole page from `state`. */
function render() {
  const named = Boolean(sb.name);
  const inMedia = Boolean(state.call || state.room);
  const busy = Boolean(inMedia || state.incoming || state.joining);

  const conn = $('conn-state');
  conn.dataset.state = state.conn;
  conn.textContent = CONN_TEXT[state.conn];
  const me = $('me');
  me.hidden = !named;
  me.dataset.peerId = sb.id ?? '';
  me.dataset.name = sb.name ?? '';
  $('me-name').textContent = sb.name ?? '';
  $('name-panel').hidden = named;
  $('app-panel').hidden = !named;
  $('name-btn').disabled = state.naming;
  $('error').textContent = state.error ?? '';
  $('error').hidden = !state.error;

  const peers = [...state.peers.values()].sort((a, b) => nameOf(a).localeCompare(nameOf(b)));
  drawList($('peer-list'), peers, newPeerItem, (li, p) => drawPeerItem(li, p, busy));
  $('peer-count').textContent = String(state.peers.size);
  $('no-peers').hidden = state.peers.size > 0;

  $('room-max').textContent = String(sb.limits.room_max ?? 4);
  $('room-join').disabled = busy;
  $('room-input').disabled = busy;
  if (state.room) $('room-input').value = state.room.name;
  $('room-leave').hidden = !state.room;
  $('room-share').hidden = !state.room;
  $('room-link').value = state.room ? roomLink(state.room.name) : '';
  $('copy-link').textContent = COPY_TEXT[state.copy];

  const callState = $('call-state');
  callState.textContent = state.status;
  callState.dataset.state = state.callState;
  $('idle-hint').hidden = inMedia;
  $('remote-tile').hidden = !state.call;
  drawTile($('remote-tile'), state.call?.peer ?? null);
  drawList($('room-tiles'), state.room ? [...state.room.members.values()] : [], newRoomTile, drawTile);
  $('local-tile').hidden = !links.stream;
  setSource($('local-video'), links.stream);

  $('hangup-btn').disabled = !inMedia;
  $('hangup-btn').textContent = state.room ? 'Leave room' : state.call?.phase === 'calling' ? 'Cancel' : 'Hang up';
  drawToggle($('mute-btn'), links.tracks('audio')[0], 'Mute', 'Unmute');
  drawToggle($('camera-btn'), links.tracks('video')[0], 'Camera off', 'Camera on');

  const dialog = $('incoming');
  $('incoming-from').textContent = state.incoming ? nameOf(state.incoming.from) : '';
  if (state.incoming && !dialog.open) dialog.showModal();
  if (!state.incoming && dialog.open) dialog.close();

  // The address bar shows the room's link, ready to be shared.
  const address = roomLink(state.room?.name ?? state.joining ?? state.linkedRoom);
  if (address !== location.href) history.replaceState(null, '', address);
}

/**
 * Makes `parent`'s children one element per peer, in order: keeps those
 * already drawn for a peer (by `data-peer`), so a playing video or a button
 * under the pointer survives, creates the missing, removes the rest.
 */
function drawList(parent, peers, create, draw) {
  const old = new Map([...parent.children].map((el) => [el.dataset.peer, el]));
  const ids = new Set(peers.map((p) => p.id));
  for (const [id, el] of old) if (!ids.has(id)) el.remove();
  let slot = parent.firstElementChild;
  for (const peer of peers) {
    let el = old.get(peer.id);
    if (!el) {
      el = create(peer);
      el.dataset.peer = peer.id;
    }
    draw(el, peer);
    if (el === slot) slot = slot.nextElementSibling;
    else parent.insertBefore(el, slot);
  }
}

function newPeerItem(peer) {
  const li = document.createElement('li');
  const who = Object.assign(document.createElement('span'), { className: 'who' });
  const btn = Object.assign(document.createElement('button'), { className: 'call', textContent: 'Call' });
  btn.onclick = () => {
    const p = state.peers.get(peer.id);
    if (p) startCall(p);
  };
  li.append(who, btn);
  return li;
}

function drawPeerItem(li, peer, busy) {
  li.dataset.testid = `peer-${peer.name}`;
  li.querySelector('.who').textContent = nameOf(peer);
  const btn = li.querySelector('button');
  btn.dataset.testid = `call-${peer.name}`;
  btn.disabled = busy;
}

function newRoomTile(peer) {
  const tile = $('tile-template').content.firstElementChild.cloneNode(true);
  const video = tile.querySelector('video');
  video.dataset.testid = 'room-video';
  video.dataset.peer = peer.id;
  tile.querySelector('.path').dataset.testid = 'room-path';
  return tile;
}

/** Draws a remote video tile (the call's, or a room member's) for `peer`, or empties it. */
function drawTile(tile, peer) {
  const remote = peer ? state.remotes.get(peer.id) : null;
  const connection = remote?.connection ?? 'new';
  tile.dataset.pcState = connection;
  tile.querySelector('figcaption').textContent = peer ? nameOf(peer) : '';
  tile.querySelector('.badge').textContent = connection;
  setSource(tile.querySelector('video'), remote?.stream ?? null);
  const path = connection === 'connected' ? remote.path : null;
  const el = tile.querySelector('.path');
  el.hidden = !path;
  el.textContent = path ?? '';
  el.title = PATH_TITLE[path] ?? '';
  if (path) el.dataset.path = path;
  else delete el.dataset.path;
}

function setSource(video, stream) {
  if (video.srcObject !== stream) video.srcObject = stream;
}

function drawToggle(btn, track, onText, offText) {
  btn.disabled = !track;
  const off = Boolean(track && !track.enabled);
  btn.setAttribute('aria-pressed', String(off));
  btn.textContent = off ? offText : onText;
}

// ---------- media connections ----------

function onPcState(peer, pc) {
  const s = pc.connectionState;
  setRemote(peer.id, { connection: s });
  if (state.call && state.call.peer.id === peer.id) {
    if (s === 'connected') {
      setCall({ ...state.call, phase: 'in-call' });
      showError(null);
      setStatus('in-call', `In call with ${nameOf(peer)}`);
    } else if (s === 'failed') {
      showError(`The media connection to ${nameOf(peer)} failed (network or firewall); hang up and try again.`);
    }
  } else if (state.room && s === 'failed') {
    showError(`The media connection to ${nameOf(peer)} failed (network or firewall).`);
  }
}

/** The call or room a signal belongs to, or null (a call or room we have left). */
function signalContext(from, data) {
  if (data.call && state.call?.id === data.call && state.call.peer.id === from.id) return { call: data.call };
  if (data.room && state.room?.name === data.room) {
    if (!state.room.members.has(from.id)) addMember(from); // its offer overtook its `joined`
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
  await startMedia();
  try {
    const call = await sb.call(peer.id, { video: true });
    setCall({ id: call, peer, role: 'caller', phase: 'calling' });
    setStatus('calling', `Calling ${nameOf(peer)}…`);
  } catch (e) {
    stopMedia();
    showError(CALL_ERRORS[e.code]?.(peer) ?? e.message);
    setStatus('idle', 'Ready');
  }
}

async function hangupOrLeave() {
  if (state.room) return leaveRoom();
  const call = state.call;
  if (!call) return;
  endMedia('Call ended');
  const done = call.phase === 'calling' ? sb.cancel(call.id) : sb.hangup(call.id);
  await done.catch(() => {}); // it may have ended on the other side meanwhile
}

function onRing({ call, from }) {
  if (state.call || state.room || state.incoming || state.joining) {
    sb.reject(call, 'busy').catch(() => {});
    return;
  }
  setIncoming({ call, from });
  setStatus('ringing', `${nameOf(from)} is calling…`);
}

async function acceptIncoming() {
  const inc = state.incoming;
  setIncoming(null);
  if (!inc) return;
  showError(null);
  await startMedia();
  setCall({ id: inc.call, peer: inc.from, role: 'callee', phase: 'connecting' });
  setStatus('connecting', `Connecting to ${nameOf(inc.from)}…`);
  try {
    await sb.accept(inc.call);
  } catch (e) {
    endMedia('Call ended', e.code === 'unknown_call' ? `The call from ${nameOf(inc.from)} is no longer ringing.` : e.message);
  }
}

function rejectIncoming() {
  const inc = state.incoming;
  setIncoming(null);
  if (!inc) return;
  sb.reject(inc.call).catch(() => {});
  setStatus('idle', `Declined call from ${nameOf(inc.from)}`);
}

function onAccepted({ call, by }) {
  if (state.call?.id !== call) return;
  setCall({ ...state.call, phase: 'connecting', peer: by });
  setStatus('connecting', `Connecting to ${nameOf(by)}…`);
  links.offer(by, { call }).catch((e) => showError(`Could not start the media connection: ${e.message}`));
}

function onRejected({ call, by, reason }) {
  if (state.call?.id !== call) return;
  const text = reason === 'busy' ? `${nameOf(by)} is busy.` : `${nameOf(by)} declined the call.`;
  endMedia('Call rejected', text);
}

function onEnded({ call, reason }) {
  if (state.incoming?.call === call) {
    const from = state.incoming.from;
    setIncoming(null);
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
  endMedia(text, error);
}

// ---------- rooms (mesh) ----------

async function joinRoom(name, resuming = false) {
  if (state.joining) return;
  setJoining(name);
  showError(null);
  await startMedia();
  try {
    const members = await sb.join(name);
    setRoom(name, members);
    for (const m of members) {
      links.offer(m, { room: name }).catch((e) => showError(`Could not connect to ${nameOf(m)}: ${e.message}`));
    }
  } catch (e) {
    setJoining(null);
    stopMedia();
    const msg = e.code === 'room_full' ? `Room "${name}" is full (${sb.limits.room_max ?? 4} people at most).` : e.message;
    showError(resuming ? `Could not rejoin room "${name}": ${msg}` : msg);
    setStatus('idle', 'Ready');
  }
}

/** Joins the room of the link this page was opened with, once there is a name. */
function joinLinkedRoom() {
  const room = state.linkedRoom;
  if (!room || !sb.name) return;
  setLinkedRoom(null);
  if (state.room?.name === room) return;
  if (state.call || state.room || state.incoming || state.joining) {
    showError(`You are busy; to join room "${room}" from the link, hang up or leave first and join it by name.`);
    return;
  }
  joinRoom(room);
}

async function leaveRoom() {
  const room = state.room;
  if (!room) return;
  endMedia(`Left room "${room.name}"`);
  await sb.leave(room.name).catch(() => {});
}

function onJoined({ room, peer }) {
  if (state.room?.name !== room) return;
  addMember(peer); // the newcomer sends the offer
}

function onLeft({ room, peer }) {
  if (state.room?.name !== room) return;
  removeMember(peer.id);
}

async function copyRoomLink() {
  if (!state.room) return;
  try {
    await navigator.clipboard.writeText(roomLink(state.room.name));
    setCopy('copied');
    setTimeout(() => { if (state.copy === 'copied') setCopy('idle'); }, COPIED_MS);
  } catch {
    // No clipboard (plain HTTP on another host, or refused): select the link for Ctrl+C.
    $('room-link').select();
    setCopy('select');
  }
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
    setPeers(await sb.listPeers());
  } catch (e) {
    showError(`Could not list who is online: ${e.message}`);
  }
}

/** After a reload that resumed our session: reconnect the call or room we were in. */
async function restore(welcome) {
  const saved = loadSession();
  if (!welcome.resumed) {
    if (saved.call || saved.room) showError('Your previous session expired; the call or room was left.');
    try { sessionStorage.removeItem(APP_KEY); } catch { /* storage blocked */ }
    return; // a lost name is claimed again by switchboard.js: see the `name` event
  }
  if (saved.call?.id) {
    await startMedia();
    setCall({ id: saved.call.id, peer: saved.call.peer, role: saved.call.role, phase: 'connecting' });
    setStatus('connecting', `Reconnecting to ${nameOf(saved.call.peer)}…`);
    links.offer(saved.call.peer, { call: saved.call.id }).catch((e) => showError(e.message));
  } else if (saved.room) {
    await joinRoom(saved.room, true);
  }
  joinLinkedRoom();
}

sb.on('state', ({ state: s }) => setConn(s));
sb.on('online', ({ peer }) => addPeer(peer));
sb.on('offline', ({ peer }) => removePeer(peer.id));
sb.on('name', () => {
  refreshPeers();
  joinLinkedRoom();
});
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
  if (!w.resumed && state.call) endMedia('Call ended', 'The connection to the server was lost for too long; the call ended.');
  if (!w.resumed && state.room) endMedia('Left the room', 'The connection to the server was lost for too long; you left the room.');
  if (!w.resumed && state.incoming) setIncoming(null);
  if (sb.name) refreshPeers();
  render();
});

$('name-form').onsubmit = async (e) => {
  e.preventDefault();
  const name = $('name-input').value.trim();
  if (!name) return;
  setNaming(true);
  try {
    const { peers } = await sb.setName(name);
    setPeers(peers);
    showError(null);
    setStatus('idle', 'Ready');
    joinLinkedRoom();
  } catch (err) {
    showError(err.code === 'name_taken' ? `The name "${name}" is taken; choose another.` : err.message);
  } finally {
    setNaming(false);
  }
};
$('room-form').onsubmit = (e) => {
  e.preventDefault();
  const room = $('room-input').value.trim();
  if (room && !state.room && !state.call) joinRoom(room);
};
$('room-leave').onclick = () => leaveRoom();
$('copy-link').onclick = () => copyRoomLink();
$('hangup-btn').onclick = () => hangupOrLeave();
$('accept-btn').onclick = () => acceptIncoming();
$('reject-btn').onclick = () => rejectIncoming();
$('incoming').oncancel = (e) => { e.preventDefault(); rejectIncoming(); };
$('mute-btn').onclick = () => toggle('audio');
$('camera-btn').onclick = () => toggle('video');

render();
sb.connect()
  .then(restore)
  .catch((e) => showError(`Cannot reach the server: ${e.message}. Is it running?`));
