//! One WebSocket connection: a single loop over the socket, the peer's
//! outbox, keep-alive and shutdown, ending in one cleanup.
//!
//! Enforces the per-connection limits every dialect shares: frame size,
//! message rate, idle timeout. Protocol logic stays in the dialect.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tracing::{Instrument, debug, debug_span, info};
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;

use crate::clock;
use crate::dialect::{Close, Ctx, Protocol};
use crate::hub::{Event, PeerId};
use crate::local_hub::{Attachment, KickReason, LocalHub, Outbox};
use crate::outbox::Next;
use crate::port::Pressure;
use crate::transport::upgrade::Socket;

/// Bytes of frames written in one batch at most: what a connection holds
/// in flight (and gives back if the write does not finish).
const BATCH_BYTES: usize = 64 * 1024;

/// How long a closing handshake (or shutdown notice) may wait for room in a
/// socket whose client stopped reading, before the socket is just dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How long, after our close frame, we keep reading for the client's answer.
/// Browsers answer at once; a loaded machine may take a while to schedule
/// them, and cutting short loses our close reason (the client sees 1006).
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(3);

/// Limits applied to each connection.
#[derive(Clone, Debug)]
pub struct ConnLimits {
    /// Largest text frame accepted, in bytes.
    pub max_frame: usize,
    /// Sustained messages per second allowed (0 = unlimited).
    pub rate: u32,
    /// Messages allowed in a burst above the rate.
    pub burst: u32,
    /// Interval of server pings.
    pub ping_every: Duration,
    /// A connection silent this long is considered dead.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_frame: 64 * 1024,
            rate: 2000,
            burst: 4000,
            ping_every: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Token bucket for a rate (messages per connection, connections per address).
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    pub(crate) fn new(rate: u32, burst: u32) -> Bucket {
        Bucket { tokens: f64::from(burst), last: clock::now(), rate: f64::from(rate), burst: f64::from(burst) }
    }

    /// Whether the bucket has refilled to its burst at `now` (nothing
    /// recent to remember).
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        self.rate <= 0.0
            || self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.rate >= self.burst
    }

    /// Takes one token for a message that arrived `now`; false when the
    /// client is over its rate.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How the loop ended.
enum End {
    /// Close frame or goodbye from the client.
    Clean,
    /// Socket error, EOF without close, idle timeout.
    Abrupt,
    /// We closed it (limits, kick, shutdown): the peer may resume.
    Closed(Close),
    /// We closed it and the peer is gone for good.
    ClosedFinal(Close),
}

/// Runs one connection to its end, then detaches the peer from the hub.
///
/// A plain function returning the future, not an `async fn`: an `async fn`
/// keeps its arguments (the socket among them) in its own state as well as in
/// the future it awaits, and that state lives as long as the connection.
pub fn run_connection<P: Protocol>(
    socket: Socket,
    proto: P,
    att: Attachment,
    hub: LocalHub,
    limits: ConnLimits,
    dialect: &'static str,
) -> impl Future<Output = ()> + Send {
    // At debug level only: an enabled span is entered and left on every
    // poll of the connection. The lines logged at info and above name the
    // peer and dialect themselves.
    let span = debug_span!("conn", peer = %att.peer, dialect);
    drive(socket, proto, att, hub, limits, dialect).instrument(span)
}

async fn drive<P: Protocol>(
    mut socket: Socket,
    mut proto: P,
    mut att: Attachment,
    hub: LocalHub,
    limits: ConnLimits,
    dialect: &'static str,
) {
    let peer = att.peer;
    info!(%peer, dialect, resumed = att.resumed, "connected");
    let mut out: Vec<String> = Vec::new();
    let mut bucket = Bucket::new(limits.rate, limits.burst);
    let mut ping = tokio::time::interval(limits.ping_every);
    ping.reset();
    let mut last_heard = clock::now();
    // Events whose frames are being written; if the write does not finish
    // they go back to the hub with the outbox leftovers (sent again after a
    // resume rather than lost).
    let mut inflight: Vec<Event> = Vec::new();
    // Receivers this client's last message filled past their budget: until
    // they have room, its socket is not read (backpressure on the sender);
    // its own outbox is still written meanwhile.
    let mut pressure = Pressure::default();
    // A write only waits while the client reads: a kick, shutdown or a
    // client that stops reading for `idle_timeout` cuts it short.
    macro_rules! guard {
        ($io:expr) => {
            guarded($io, &att.rx, limits.idle_timeout, peer)
        };
    }

    let end = 'conn: {
        let mut ctx = Ctx::new(&hub, att.peer, att.space, clock::now(), &mut out);
        proto.opened(&mut ctx);
        if let Some(end) = settle(&mut ctx) {
            let _ = guard!(send_all(&mut socket, &mut out)).await;
            break 'conn end;
        }
        if let Err(end) = guard!(send_all(&mut socket, &mut out)).await {
            break 'conn end;
        }
        // Kicks and shutdown come through the outbox (its alarm), ahead of
        // the events waiting there.
        loop {
            tokio::select! {
                biased;
                next = att.rx.next() => {
                    let event = match next {
                        Next::Event(event) => event,
                        Next::Alarm(KickReason::Shutdown) => {
                            out.extend(proto.shutdown_notice());
                            let _ = tokio::time::timeout(CLOSE_WAIT, send_all(&mut socket, &mut out)).await;
                            break 'conn restarting();
                        }
                        Next::Alarm(reason) => break 'conn kicked(reason),
                        Next::Probe => {
                            // Is the client still there? Its pong (or anything
                            // else it sends) updates `heard`; one we stopped
                            // reading (backpressure) counts as there.
                            if !pressure.is_empty() {
                                att.heard.touch(clock::now());
                            }
                            if let Err(end) = guard!(socket.send(Message::Ping(Default::default()))).await {
                                break 'conn end;
                            }
                            continue;
                        }
                        Next::Closed => break 'conn End::Abrupt,
                    };
                    let mut ctx = Ctx::new(&hub, att.peer, att.space, clock::now(), &mut out);
                    inflight.push(event.clone());
                    proto.deliver(event, &mut ctx);
                    // Drain what else is ready (a bounded batch), then write once.
                    let (mut batch, mut counted) = (0, 0);
                    for _ in 0..64 {
                        batch += ctx.out[counted..].iter().map(String::len).sum::<usize>();
                        counted = ctx.out.len();
                        if batch >= BATCH_BYTES {
                            break;
                        }
                        match att.rx.try_recv() {
                            Ok(event) => {
                                inflight.push(event.clone());
                                proto.deliver(event, &mut ctx);
                            }
                            Err(_) => break,
                        }
                    }
                    if let Err(end) = guard!(send_all(&mut socket, &mut out)).await {
                        break 'conn end;
                    }
                    inflight.clear();
                }
                _ = pressure.relieved(), if !pressure.is_empty() => {
                    // The pause was ours: the client was not silent.
                    last_heard = clock::now();
                    att.heard.touch(last_heard);
                }
                msg = socket.next(), if pressure.is_empty() => {
                    last_heard = clock::now();
                    att.heard.touch(last_heard);
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Binary(b))) => match tungstenite::Utf8Bytes::try_from(b) {
                            Ok(t) => t,
                            Err(_) => break 'conn End::Closed(Close { code: 1003, reason: "binary frames are not supported; send JSON text".into() }),
                        },
                        Some(Ok(Message::Close(frame))) => {
                            if proto.close_is_goodbye(frame.map(|f| u16::from(f.code))) {
                                break 'conn End::Clean;
                            }
                            break 'conn End::Abrupt;
                        }
                        Some(Ok(_)) => continue, // ping/pong: answered by the library
                        Some(Err(e)) if is_too_big(&e) => break 'conn too_big(limits.max_frame),
                        Some(Err(e)) => match violation(&e) {
                            Some(close) => {
                                debug!(error = %e, "protocol violation");
                                hub.metrics().error("protocol_violation");
                                break 'conn End::Closed(close);
                            }
                            None => {
                                debug!(error = %e, "read failed");
                                break 'conn End::Abrupt;
                            }
                        },
                        None => break 'conn End::Abrupt,
                    };
                    if text.len() > limits.max_frame {
                        break 'conn too_big(limits.max_frame);
                    }
                    if !bucket.take(last_heard) {
                        let reason = format!("rate limit exceeded: at most {} messages/s", limits.rate);
                        hub.metrics().error("rate_limited");
                        break 'conn End::Closed(Close { code: 1008, reason: reason.into() });
                    }
                    let mut ctx = Ctx::new(&hub, att.peer, att.space, last_heard, &mut out);
                    ctx.pressure = Pressure::waiting();
                    proto.received(text.as_str(), &mut ctx);
                    pressure = std::mem::take(&mut ctx.pressure);
                    let end = settle(&mut ctx);
                    // Most messages (a relayed signal) answer nothing.
                    if !out.is_empty()
                        && let Err(write_end) = guard!(send_all(&mut socket, &mut out)).await
                    {
                        break 'conn end.unwrap_or(write_end);
                    }
                    if let Some(end) = end {
                        break 'conn end;
                    }
                }
                _ = ping.tick() => {
                    if !pressure.is_empty() {
                        // Not read because we paused it: not silent.
                        last_heard = clock::now();
                        att.heard.touch(last_heard);
                    }
                    if clock::now().saturating_duration_since(last_heard) > limits.idle_timeout {
                        info!(%peer, dialect, "idle timeout");
                        break 'conn End::Abrupt;
                    }
                    if let Err(end) = guard!(socket.send(Message::Ping(Default::default()))).await {
                        break 'conn end;
                    }
                }
            }
        }
    };

    let we_closed = matches!(end, End::Closed(_) | End::ClosedFinal(_));
    let (code, reason) = match &end {
        End::Closed(c) | End::ClosedFinal(c) => (Some(c.code), Some(c.reason.clone())),
        _ => (None, None),
    };
    let clean = match end {
        End::Clean => true,
        End::Abrupt => false,
        End::Closed(close) => {
            send_close(&mut socket, close).await;
            false
        }
        End::ClosedFinal(close) => {
            send_close(&mut socket, close).await;
            true
        }
    };
    let mut ctx = Ctx::new(&hub, att.peer, att.space, clock::now(), &mut out);
    proto.closing(&mut ctx);
    let clean = clean || ctx.goodbye;
    // Events that reached the outbox but were never written go back to the hub.
    att.rx.close();
    let mut unsent = inflight;
    while let Ok(event) = att.rx.try_recv() {
        unsent.push(event);
    }
    hub.detach(att.peer, att.conn, clean, unsent, clock::now());
    info!(%peer, dialect, clean, code, reason = reason.as_deref(), "disconnected");
    if we_closed {
        drain(&mut socket).await;
    }
}

/// Refuses a connection the dialect will not take (a PeerJS registration
/// refused): sends `frame`, then closes with `close` as every other close
/// from the server does, waiting for the client's answer.
pub async fn refuse(mut socket: Socket, frame: String, close: Close) {
    let mut out = vec![frame];
    if tokio::time::timeout(CLOSE_WAIT, send_all(&mut socket, &mut out)).await.is_ok() {
        send_close(&mut socket, close).await;
        drain(&mut socket).await;
    }
}

/// After our close frame: reads and drops what the client still sends until
/// it answers the close (at most [`CLOSE_ANSWER_WAIT`]). Dropping a socket with
/// unread data makes the kernel reset the connection, and the client may
/// then lose our close frame and its reason (seen as 1006 in browsers).
async fn drain(socket: &mut Socket) {
    let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, async {
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// The close for a connection the server drops on its own.
fn kicked(reason: KickReason) -> End {
    let reason = match reason {
        KickReason::SlowConsumer => "outbound queue full: this client reads too slowly; reconnect",
        KickReason::Replaced => "replaced by a newer connection for the same peer",
        KickReason::Shutdown => return restarting(),
    };
    End::Closed(Close { code: 1008, reason: reason.into() })
}

fn too_big(max_frame: usize) -> End {
    End::Closed(Close { code: 1009, reason: format!("message too big: the limit is {max_frame} bytes").into() })
}

/// Whether a read failed because the WebSocket library refused a message
/// over its own size cap (set above `max_frame`).
fn is_too_big(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Capacity(_))
}

/// The close for a frame that breaks RFC 6455: 1007 for a text frame that
/// is not UTF-8, 1002 for the rest (reserved opcodes or bits, a control
/// frame over 125 bytes or fragmented, an unmasked client frame...).
fn violation(e: &tungstenite::Error) -> Option<Close> {
    use tungstenite::Error;
    match e {
        Error::Utf8(_) => Some(Close { code: 1007, reason: "a text frame that is not valid UTF-8".into() }),
        Error::Protocol(p) => Some(Close { code: 1002, reason: format!("WebSocket protocol error: {p}").into() }),
        _ => None,
    }
}

fn restarting() -> End {
    End::Closed(Close { code: 1012, reason: "server restarting; reconnect".into() })
}

/// Runs a socket write unless the connection must end first: kicked, server
/// shutting down, or the client not reading for `limit`.
async fn guarded(
    io: impl Future<Output = Result<(), tungstenite::Error>>,
    rx: &Outbox,
    limit: Duration,
    peer: PeerId,
) -> Result<(), End> {
    tokio::select! {
        biased;
        r = io => r.map_err(|e| {
            debug!(error = %e, "send failed");
            End::Abrupt
        }),
        reason = rx.alarmed() => Err(kicked(reason)),
        _ = tokio::time::sleep(limit) => {
            info!(%peer, "client stopped reading");
            Err(End::Abrupt)
        }
    }
}

/// Sends a close frame, unless the client has not made room for it in time.
async fn send_close(socket: &mut Socket, close: Close) {
    let frame = CloseFrame { code: close.code.into(), reason: truncate(&close.reason).into() };
    let _ = tokio::time::timeout(CLOSE_WAIT, socket.send(Message::Close(Some(frame)))).await;
}

/// Turns a close requested by the dialect into how the loop ends.
fn settle(ctx: &mut Ctx<'_>) -> Option<End> {
    let close = ctx.close.take()?;
    Some(if ctx.goodbye { End::ClosedFinal(close) } else { End::Closed(close) })
}

/// Close reasons must fit a control frame (123 bytes).
fn truncate(s: &str) -> String {
    let mut end = s.len().min(123);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

async fn send_all(socket: &mut Socket, out: &mut Vec<String>) -> Result<(), tungstenite::Error> {
    if out.is_empty() {
        return Ok(());
    }
    for frame in out.drain(..) {
        socket.feed(Message::Text(frame.into())).await?;
    }
    socket.flush().await
}
