//! socket.io transport of the `easyrtc` dialect, on `socketioxide`: the
//! socket.io 1.x wire (socket.io protocol 4 over Engine.IO 3: long-polling
//! with its length-prefixed payloads, websocket upgrade, client pings,
//! acks). It moves events between sockets and
//! [`dialect::easyrtc`](crate::dialect::easyrtc); no protocol logic lives here.
//!
//! The shape is the `offers` transport's ([`super::socketio`]): a connect
//! middleware passes the handshake through admission and attaches the
//! peer; events are handled inline, in arrival order, by the [`Handled`]
//! extractor (a client often logs in by a polling POST while its websocket
//! upgrade is under way: both carry real traffic, in order); one task per
//! socket drains the hub outbox and ends in one cleanup. Everything sent to
//! a client carries an ack id, as the original's emits do; the answers are
//! not awaited.
//!
//! Limits: `--rate`/`--burst` per socket (over them: disconnected); a
//! packet of at most [`MAX_PAYLOAD`] bytes (larger: the transport closes),
//! an event argument of at most [`easyrtc::MAX_ITEM`] (larger:
//! `MSG_REJECT_BAD_SIZE`); the original's Engine.IO timings (the client
//! pings every 25 s, the server waits 60 s more).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event as EventName, SocketRef};
use socketioxide::handler::{ConnectHandler, FromMessageParts, Value as SioValue};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span};

use super::socketio::{first_arg, pump};
use crate::admission::{self, Door, Entry, Refusal, Ticket};
use crate::app::App;
use crate::clock;
use crate::dialect::Ctx;
use crate::dialect::easyrtc::{self, Env, Session};
use crate::local_hub::Attachment;
use crate::transport::ws::Bucket;

/// Engine.IO timings of the original (engine.io 1.x defaults).
const PING_INTERVAL: Duration = Duration::from_secs(25);
const PING_TIMEOUT: Duration = Duration::from_secs(60);
/// Packets socketioxide may hold for one socket that does not read.
const SOCKET_BUFFER: usize = 64;
/// Largest packet, in bytes: a little above the largest event argument.
pub const MAX_PAYLOAD: u64 = 2 * easyrtc::MAX_ITEM as u64;

/// Per-socket state kept in the socket's extensions.
#[derive(Clone)]
struct Conn {
    app: App,
    peer: crate::hub::PeerId,
    session: Arc<Mutex<Session>>,
    /// Cancelled when socketioxide reports the socket gone.
    gone: CancellationToken,
    /// The listener's per-connection message rate (`--rate`, `--burst`).
    bucket: Arc<Mutex<Bucket>>,
    /// Cancelled when the client went over that rate: it is disconnected.
    over_rate: CancellationToken,
}

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
            conn.app.hub.metrics().error("rate_limited");
            conn.over_rate.cancel();
            return Ok(Handled);
        }
        let Ok(EventName(name)) = EventName::from_message_parts(s, v, ack_id) else { return Ok(Handled) };
        let data = v.as_str().and_then(|text| first_arg(text.as_str()));
        let ack = AckSender::from_message_parts(s, v, ack_id)?;
        let span = info_span!("conn", peer = %conn.peer, dialect = "easyrtc");
        let app = &conn.app;
        let env = Env { ice: &app.config.ice, wall: SystemTime::now() };
        let mut out = Vec::new();
        let mut ctx = Ctx::new(&app.hub, conn.peer, app.space, clock::now(), &mut out);
        let answer = span.in_scope(|| {
            let mut session = conn.session.lock().unwrap_or_else(|e| e.into_inner());
            session.event(&name, data.as_deref(), ack_id.is_some(), &mut ctx, &env)
        });
        if let Some(text) = answer.ack
            && let Ok(raw) = RawValue::from_string(text)
            && let Err(e) = ack.send(&raw)
        {
            debug!(error = %e, "ack failed");
        }
        if answer.disconnect {
            info!(sid = %s.id, "easyrtc: login refused; disconnecting");
            let _ = SocketRef::from(s.clone()).disconnect();
        }
        Ok(Handled)
    }
}

/// Builds the socket.io layer of one `easyrtc` listener. It also closes
/// every socket's transport at shutdown.
pub fn layer(app: App) -> SocketIoLayer {
    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .max_payload(MAX_PAYLOAD)
        .ws_max_message_size(MAX_PAYLOAD as usize)
        .ws_max_frame_size(MAX_PAYLOAD as usize)
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    let admit_app = app.clone();
    let admit = move |s: SocketRef| admit(admit_app.clone(), s);
    io.ns("/", connected.with(admit));
    let closer = io.clone();
    let shutdown = app.shutdown.clone();
    app.tracker.spawn(async move {
        shutdown.cancelled().await;
        closer.close().await;
    });
    layer
}

/// Connect middleware: admission, then the socket becomes a hub peer.
async fn admit(app: App, s: SocketRef) -> Result<(), Refusal> {
    let entry = Entry::from_parts(s.req_parts());
    let admission = admission::admit(&app, Door::Connection, &entry)?;
    let att = app.hub.attach(app.space, admission.peer_opts(Duration::ZERO), false, clock::now());
    let gone = CancellationToken::new();
    let over_rate = CancellationToken::new();
    let limits = &app.config.conn;
    let session = Arc::new(Mutex::new(Session::new()));
    s.extensions.insert(Conn {
        app: app.clone(),
        peer: att.peer,
        session: session.clone(),
        gone: gone.clone(),
        bucket: Arc::new(Mutex::new(Bucket::new(limits.rate, limits.burst))),
        over_rate: over_rate.clone(),
    });
    s.on_fallback(async |_: Handled| {});
    s.on_disconnect(async |s: SocketRef| {
        if let Some(conn) = s.extensions.get::<Conn>() {
            conn.gone.cancel();
        }
    });
    let span = info_span!("conn", peer = %att.peer, dialect = "easyrtc");
    let ticket = admission.ticket;
    app.tracker.spawn(run(app.clone(), s, session, att, gone, over_rate, ticket).instrument(span));
    Ok(())
}

/// Connect handler: nothing to greet with (the client speaks first).
async fn connected(_s: SocketRef) {}

/// The connection's loop; ends in the single cleanup.
async fn run(
    app: App,
    s: SocketRef,
    session: Arc<Mutex<Session>>,
    att: Attachment,
    gone: CancellationToken,
    over_rate: CancellationToken,
    // Counts this socket against its client address until the loop ends.
    _ticket: Option<Ticket>,
) {
    info!(sid = %s.id, "connected");
    // Pushed events carry an ack id: the client answers them.
    let emit = |ev| {
        let (event, text) = session.lock().unwrap_or_else(|e| e.into_inner()).emit_of(ev, SystemTime::now())?;
        RawValue::from_string(text).ok().map(|payload| (event, payload))
    };
    let (att, unsent) = pump(&app, &s, att, &gone, &over_rate, true, emit).await;
    app.hub.detach(att.peer, att.conn, true, unsent, clock::now());
    info!("disconnected");
}
