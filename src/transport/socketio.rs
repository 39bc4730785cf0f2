//! socket.io v4 transport for the `offers` dialect, on `socketioxide`
//! (Engine.IO v4: long-polling with packet batching, websocket upgrade,
//! pings, acks). It moves events between sockets and
//! [`dialect::offers`](crate::dialect::offers); no protocol logic lives here.
//!
//! # Shape
//! Each socket.io socket is one hub peer. A connect *middleware* (awaited by
//! socketioxide before it sends the CONNECT acknowledgement, so before the
//! client may emit anything) passes the handshake through admission,
//! attaches the peer, lets the dialect claim its `userName` and take the
//! `availableOffers` snapshot, and starts the connection's task.
//!
//! Events are handled in [`Handled`], an *extractor*: socketioxide runs
//! extractors inline, in arrival order (for polling, before the POST is
//! answered), but runs each handler in a task of its own, so handlers could
//! see an offerer's first ICE candidate before its `newOffer`. The offers
//! logic is synchronous and short (one board lock, one hub dispatch), as it
//! is in the original's event loop, so it runs in the extractor and the
//! handler is empty.
//!
//! The connection's task is the one extra task per connection the library
//! forces: a single loop over the hub outbox, kick, rate limit, disconnect
//! and shutdown, ending in one cleanup.
//!
//! # Limits
//! `--rate`/`--burst` count each socket's events; a client over them is
//! disconnected. Sizes are Engine.IO's: `maxPayload` is the original's
//! 1 000 000 bytes (advertised in the open packet), not `--max-frame`.
//! Engine.IO pings (25 s, timeout 20 s) end dead connections. Each socket's
//! outgoing buffer is bounded by the outbox size.
//!
//! # Delivery
//! Messages for one user (`answerResponse`, `receivedIceCandidateFromServer`)
//! go through the hub as signals to the user's name and come out of that
//! socket's outbox in order, as in every other dialect: the hub stays the
//! router (and counts relays). `newOfferAwaiting` goes to "everyone but the
//! sender", which is socket.io's own broadcast: we use socketioxide's rather
//! than putting every socket in a hub room, whose presence notices would
//! cost O(n) per connect.
//!
//! # Several nodes
//! In a cluster, socket.io's broadcast reaches this node's sockets only. The
//! dialect sends each change of the board to the other nodes through one
//! internal hub peer per node ([`share_board`]); that peer's task applies
//! the other nodes' changes here and emits their `newOfferAwaiting` to every
//! socket of this node (docs/dialects/offers.md §7).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::value::RawValue;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event as EventName, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, Value as SioValue};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::admission::{self, Door, Entry, Refusal, Ticket};
use crate::app::App;
use crate::clock;
use crate::dialect::Ctx;
use crate::dialect::offers::{self, Answer, BoardLimits, Offers, event};
use crate::hub::{Event, Name, PeerId, PeerOpts};
use crate::local_hub::{Attachment, KickReason};
use crate::outbox::Next;
use crate::transport::ws::Bucket;

/// Engine.IO timings of the original (socket.io 4 defaults).
const PING_INTERVAL: Duration = Duration::from_secs(25);
const PING_TIMEOUT: Duration = Duration::from_secs(20);
/// Packets socketioxide may hold for one socket that does not read (relays
/// of at most the board's item size each: a few MiB at worst).
const SOCKET_BUFFER: usize = 64;
/// How often a full socket buffer is tried again.
const BUFFER_RETRY: Duration = Duration::from_millis(5);
/// The original's `maxHttpBufferSize` (1e6), advertised as `maxPayload`.
const MAX_PAYLOAD: u64 = 1_000_000;
/// In a cluster, how often a node checks which users of its board have a
/// socket anywhere (see `Board::sweep`).
const BOARD_SWEEP: Duration = Duration::from_secs(30);

/// What the listener's sockets share.
struct Shared {
    app: App,
    /// The dialect's state of this listener (its board of offers).
    offers: Offers,
}

impl Shared {
    /// The dialect's context for an input of `peer`, at `now`.
    fn ctx<'a>(&'a self, peer: PeerId, out: &'a mut Vec<String>) -> Ctx<'a> {
        Ctx::new(&self.app.hub, peer, self.app.space, clock::now(), out)
    }
}

/// Per-socket state kept in the socket's extensions.
#[derive(Clone)]
struct Conn {
    shared: Arc<Shared>,
    peer: PeerId,
    user: Option<Name>,
    /// Cancelled when socketioxide reports the socket gone.
    gone: CancellationToken,
    /// The listener's per-connection message rate (`--rate`, `--burst`).
    bucket: Arc<Mutex<Bucket>>,
    /// Cancelled when the client went over that rate: it is disconnected.
    over_rate: CancellationToken,
}

/// `availableOffers` as the board was when the socket was admitted; taken
/// out (not kept for the socket's life) when sent.
#[derive(Clone)]
struct Greeting(Arc<RawValue>);

/// Marks a socket whose password was wrong: it is connected, then dropped.
#[derive(Clone)]
struct Rejected;

/// Extractor that handles the event (see the module doc).
struct Handled;

impl FromMessageParts<LocalAdapter> for Handled {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<LocalAdapter>>,
        v: &mut SioValue,
        ack_id: &Option<i64>,
    ) -> Result<Handled, Infallible> {
        let Some(conn) = s.extensions.get::<Conn>() else { return Ok(Handled) };
        if conn.over_rate.is_cancelled() {
            return Ok(Handled);
        }
        if !conn.bucket.lock().unwrap_or_else(|e| e.into_inner()).take(clock::now()) {
            conn.shared.app.hub.metrics().error("rate_limited");
            conn.over_rate.cancel();
            return Ok(Handled);
        }
        let Ok(EventName(name)) = EventName::from_message_parts(s, v, ack_id) else { return Ok(Handled) };
        let data = v.as_str().and_then(|text| first_arg(text.as_str()));
        let ack = AckSender::from_message_parts(s, v, ack_id)?;
        let span = info_span!("conn", peer = %conn.peer, dialect = "offers");
        let mut answer = SocketAnswer { socket: SocketRef::from(s.clone()), ack: Some(ack) };
        let shared = &conn.shared;
        let mut out = Vec::new();
        let mut ctx = shared.ctx(conn.peer, &mut out);
        span.in_scope(|| shared.offers.event(conn.user.clone(), &name, data.as_deref(), &mut ctx, &mut answer));
        Ok(Handled)
    }
}

/// The first argument of an event packet's array (`["name", arg, ...]`),
/// as raw JSON text. (socketioxide's `Data` cannot yield raw JSON: it would
/// hand back the whole array.)
pub(crate) fn first_arg(packet: &str) -> Option<Box<RawValue>> {
    let items: Vec<&RawValue> = serde_json::from_str(packet).ok()?;
    items.get(1).map(|raw| (*raw).to_owned())
}

/// Builds the socket.io layer of one `offers` listener. It also closes every
/// socket's transport at shutdown, so clients reconnect to the next server.
pub fn layer(app: App) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        // The same bound on the websocket transport: a larger message is
        // refused from its header, not read and parsed whole.
        .ws_max_message_size(MAX_PAYLOAD as usize)
        .ws_max_frame_size(MAX_PAYLOAD as usize)
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    let shared = Arc::new(Shared { app: app.clone(), offers: Offers::new(BoardLimits::default()) });
    if app.config.cluster.is_some() {
        share_board(shared.clone(), io.clone());
    }
    let admit = move |s: SocketRef, TryData(auth): TryData<serde_json::Value>| admit(shared.clone(), s, auth.ok());
    io.ns("/", connected.with(admit));
    let closer = io.clone();
    let shutdown = app.shutdown.clone();
    app.tracker.spawn(async move {
        shutdown.cancelled().await;
        closer.close().await;
    });
    layer
}

/// In a cluster: attaches this node's board peer and starts its task, which
/// applies what the other nodes' board peers send (their sockets' offers,
/// answers and candidates) to this node's board, and emits
/// `newOfferAwaiting` to this node's sockets for an offer made elsewhere.
/// (docs/dialects/offers.md, "Several nodes".)
fn share_board(shared: Arc<Shared>, io: SocketIo) {
    let app = &shared.app;
    let now = clock::now();
    let mut att = app.hub.attach(app.space, PeerOpts::default(), false, now);
    let mut out = Vec::new();
    if let Err(e) = shared.offers.board_opened(&mut shared.ctx(att.peer, &mut out)) {
        warn!(error = %e, "offers: this node's board is not shared with the other nodes");
        app.hub.detach(att.peer, att.conn, true, Vec::new(), now);
        return;
    }
    let span = info_span!("board", peer = %att.peer, dialect = "offers");
    let tracker = app.tracker.clone();
    let task = async move {
        let mut sweep = tokio::time::interval(BOARD_SWEEP);
        sweep.reset();
        loop {
            let next = tokio::select! {
                next = att.rx.next() => next,
                _ = sweep.tick() => {
                    shared.offers.sweep(&mut shared.ctx(att.peer, &mut Vec::new()));
                    continue;
                }
            };
            match next {
                Next::Event(ev) => {
                    let mut out = Vec::new();
                    let Some(list) = shared.offers.board_event(ev, &mut shared.ctx(att.peer, &mut out)) else {
                        continue;
                    };
                    for s in io.sockets() {
                        if let Err(e) = s.emit(event::NEW_OFFER_AWAITING, &*list) {
                            debug!(error = %e, "emit failed");
                        }
                    }
                }
                Next::Probe => {}
                Next::Alarm(_) | Next::Closed => break,
            }
        }
        att.rx.close();
        shared.app.hub.detach(att.peer, att.conn, true, Vec::new(), clock::now());
    };
    tracker.spawn(task.instrument(span));
}

/// Connect middleware: runs before the CONNECT acknowledgement is sent. A
/// refusal reaches the client as `connect_error` with its message.
async fn admit(shared: Arc<Shared>, s: SocketRef, auth: Option<serde_json::Value>) -> Result<(), Refusal> {
    let app = &shared.app;
    let auth = auth.unwrap_or(serde_json::Value::Null);
    let mut entry = Entry::from_parts(s.req_parts());
    entry.token = offers::access_token(&auth);
    let admission = admission::admit(app, Door::Connection, &entry)?;
    // Quirk of `offers`: a wrong password is not refused with connect_error:
    // the socket connects and is then disconnected ("io server disconnect").
    if !offers::password_ok(&auth) {
        s.extensions.insert(Rejected);
        return Ok(());
    }
    let user = offers::user_name(&auth);
    let att = app.hub.attach(app.space, admission.peer_opts(Duration::ZERO), false, clock::now());
    let mut out = Vec::new();
    let greeting = match shared.offers.connected(user.as_ref(), &mut shared.ctx(att.peer, &mut out)) {
        Ok(greeting) => greeting,
        Err(e) => {
            app.hub.detach(att.peer, att.conn, true, Vec::new(), clock::now());
            return Err(Refusal { status: StatusCode::FORBIDDEN, message: e.to_string(), code: e.code() });
        }
    };
    let gone = CancellationToken::new();
    let limits = &app.config.conn;
    let over_rate = CancellationToken::new();
    s.extensions.insert(Conn {
        shared: shared.clone(),
        peer: att.peer,
        user: user.clone(),
        gone: gone.clone(),
        bucket: Arc::new(Mutex::new(Bucket::new(limits.rate, limits.burst))),
        over_rate: over_rate.clone(),
    });
    if let Some(list) = greeting {
        s.extensions.insert(Greeting(list));
    }
    s.on_fallback(async |_: Handled| {});
    s.on_disconnect(async |s: SocketRef| {
        if let Some(conn) = s.extensions.get::<Conn>() {
            conn.gone.cancel();
        }
    });
    let span = info_span!("conn", peer = %att.peer, dialect = "offers");
    let ticket = admission.ticket;
    app.tracker.spawn(run(shared.clone(), s, user, att, gone, over_rate, ticket).instrument(span));
    Ok(())
}

/// Connect handler: after the CONNECT acknowledgement went out.
async fn connected(s: SocketRef) {
    if s.extensions.get::<Rejected>().is_some() {
        info!(sid = %s.id, "offers: wrong password; disconnecting");
        let _ = s.disconnect();
        return;
    }
    if let Some(Greeting(list)) = s.extensions.remove::<Greeting>()
        && let Err(e) = s.emit(event::AVAILABLE_OFFERS, &*list)
    {
        debug!(error = %e, "emit failed");
    }
}

/// The connection's loop; ends in the single cleanup.
async fn run(
    shared: Arc<Shared>,
    s: SocketRef,
    user: Option<Name>,
    att: Attachment,
    gone: CancellationToken,
    over_rate: CancellationToken,
    // Counts this socket against its client address until the loop ends.
    _ticket: Option<Ticket>,
) {
    info!(user = user.as_deref().unwrap_or(""), sid = %s.id, "connected");
    let (att, unsent) = pump(&shared.app, &s, att, &gone, &over_rate, false, offers::emit_of).await;
    cleanup(&shared, user.as_ref(), att, unsent);
}

/// A socket.io connection's loop, shared by the socket.io dialects: emits
/// each hub event as `emit_of` translates it (with an ack id if `with_ack`)
/// until the socket is gone, goes over its rate, reads too slowly, or the
/// hub closes it. Returns the attachment, its outbox closed, and the events
/// it did not emit, for the dialect's own cleanup.
pub(crate) async fn pump<N: AsRef<str>, P: serde::Serialize>(
    app: &App,
    s: &SocketRef,
    mut att: Attachment,
    gone: &CancellationToken,
    over_rate: &CancellationToken,
    with_ack: bool,
    mut emit_of: impl FnMut(Event) -> Option<(N, P)>,
) -> (Attachment, Vec<Event>) {
    let mut stalled = None;
    let mut check = tokio::time::interval(PING_INTERVAL);
    check.reset();
    loop {
        tokio::select! {
            biased;
            _ = gone.cancelled() => break,
            _ = over_rate.cancelled() => {
                let rate = app.config.conn.rate;
                warn!(rate, "rate limit exceeded: disconnecting (at most {rate} events/s)");
                let _ = s.clone().disconnect();
                break;
            }
            next = att.rx.next() => match next {
                Next::Event(ev) => {
                    let Some((event, payload)) = emit_of(ev) else { continue };
                    if !emit_waiting(s, event.as_ref(), &payload, with_ack, &mut stalled, app.config.slow_after).await {
                        warn!("socket buffer full and not read: disconnecting slow client");
                        app.hub.metrics().queue_drop();
                        let _ = s.clone().disconnect();
                        break;
                    }
                }
                // Engine.IO's own pings watch socket.io clients.
                Next::Probe => {}
                // Shutdown closes every transport on its own (see above).
                Next::Alarm(KickReason::Shutdown) | Next::Closed => break,
                Next::Alarm(reason) => {
                    if reason == KickReason::SlowConsumer {
                        warn!("outbox full: disconnecting slow client");
                    }
                    let _ = s.clone().disconnect();
                    break;
                }
            },
            _ = check.tick() => {
                // Safety net: a socket whose CONNECT never went out gets no
                // disconnect callback.
                if !s.connected() {
                    break;
                }
            }
        }
    }
    att.rx.close();
    let mut unsent = Vec::new();
    while let Ok(ev) = att.rx.try_recv() {
        unsent.push(ev);
    }
    (att, unsent)
}

fn cleanup(shared: &Shared, user: Option<&Name>, att: Attachment, unsent: Vec<Event>) {
    let mut out = Vec::new();
    let mut ctx = shared.ctx(att.peer, &mut out);
    let now = ctx.now;
    shared.offers.disconnected(user, &mut ctx, || shared.app.hub.detach(att.peer, att.conn, true, unsent, now));
    info!("disconnected");
}

/// Emits `event` with `payload` (with an ack id if `with_ack`; the answer
/// is not awaited). socketioxide holds at most a bounded number of packets
/// for a socket; when they are all waiting, this waits for the client to
/// read (as a WebSocket connection waits for its socket) instead of dropping
/// the event. False when the buffer has stayed full for `slow_after`
/// (`stalled`, kept across events, says since when).
pub(crate) async fn emit_waiting<T: serde::Serialize + ?Sized>(
    s: &SocketRef,
    event: &str,
    payload: &T,
    with_ack: bool,
    stalled: &mut Option<Instant>,
    slow_after: Duration,
) -> bool {
    loop {
        let sent = if with_ack {
            // The client's answer is not needed: dropping the stream leaves
            // an entry socketioxide sweeps once it is answered or abandoned.
            s.emit_with_ack::<_, serde_json::Value>(event, payload).map(drop)
        } else {
            s.emit(event, payload)
        };
        match sent {
            Ok(()) => {
                *stalled = None;
                return true;
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                let since = *stalled.get_or_insert_with(clock::now);
                if clock::now().saturating_duration_since(since) >= slow_after {
                    return false;
                }
                tokio::time::sleep(BUFFER_RETRY).await;
            }
            Err(e) => {
                debug!(error = %e, event, "emit failed");
                return true;
            }
        }
    }
}

/// Refuses Engine.IO handshakes of another protocol version than `eio`
/// ("3" or "4") with Engine.IO's own error (socketioxide serves both; each
/// original server spoke one).
pub(crate) async fn only_eio(
    eio: &'static str,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let wrong = req.uri().path().starts_with("/socket.io/")
        && req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("EIO=")))
            .is_some_and(|v| v != eio);
    if wrong {
        let body = r#"{"code":5,"message":"Unsupported protocol version"}"#;
        return (StatusCode::BAD_REQUEST, [(axum::http::header::CONTENT_TYPE, "application/json")], body)
            .into_response();
    }
    next.run(req).await
}

/// The socket an event came from, and its acknowledgement callback.
struct SocketAnswer {
    socket: SocketRef,
    ack: Option<AckSender>,
}

impl Answer for SocketAnswer {
    fn ack(&mut self, data: &RawValue) {
        if let Some(ack) = self.ack.take()
            && let Err(e) = ack.send(data)
        {
            debug!(error = %e, "ack failed");
        }
    }

    fn broadcast(&mut self, event: &'static str, data: &RawValue) {
        for other in self.socket.broadcast().sockets() {
            if let Err(e) = other.emit(event, data) {
                debug!(error = %e, "broadcast emit failed");
            }
        }
    }
}
