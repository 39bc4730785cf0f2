//! The PeerJS server protocol, as the official `peerjs` browser client and
//! the npm `peer` server speak it (see the PeerJS section of README.md).
//!
//! The client picks its id and a token in the WebSocket URL; registration
//! (OPEN, ID-TAKEN, ERROR) happens before a connection reaches this state
//! machine (see `routes::peerjs`). Here: HEARTBEAT keeps the connection alive;
//! OFFER, ANSWER and CANDIDATE are relayed to `dst` with `src` set by the
//! server, held for an id that is not connected yet; LEAVE and EXPIRE are
//! relayed only to connected ids. Payloads pass through as raw JSON.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Ctx, Protocol, push_json_str};
use crate::hub::{Command, Event, HubError, Missing, Name, Payload, Target, Undelivered};

/// Message kinds, allocated once for the whole process.
struct Kinds {
    offer: Name,
    answer: Name,
    candidate: Name,
    leave: Name,
    expire: Name,
}

static KINDS: LazyLock<Kinds> = LazyLock::new(|| Kinds {
    offer: Name::from("OFFER"),
    answer: Name::from("ANSWER"),
    candidate: Name::from("CANDIDATE"),
    leave: Name::from("LEAVE"),
    expire: Name::from("EXPIRE"),
});

/// Stands for "the message had no payload": relayed without one.
static NO_PAYLOAD: LazyLock<Payload> = LazyLock::new(|| Payload::from_raw(RawValue::NULL));

/// A client message; unknown fields (a `src` the client made up) are ignored.
#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(rename = "type", borrow, default)]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    dst: Option<Cow<'a, str>>,
    /// Present (even `null`) or absent, as sent.
    #[serde(borrow, default, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
}

/// Keeps an explicit `null` payload (plain `Option` would read it as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A registration refusal, sent before closing (the client shows `msg`).
pub fn error_frame(msg: &str) -> String {
    let mut s = String::with_capacity(40 + msg.len());
    s.push_str(r#"{"type":"ERROR","payload":{"msg":"#);
    push_json_str(&mut s, msg);
    s.push_str("}}");
    s
}

/// The frame telling a client its id is held by someone else.
pub const ID_TAKEN: &str = r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#;

/// The frame accepting a registration.
pub const OPEN: &str = r#"{"type":"OPEN"}"#;

/// Errors a registration can fail with, worded as `peer` words them.
pub mod refusal {
    /// Missing `id`, `token` or `key` query parameter.
    pub const PARAMS: &str = "No id, token, or key supplied to websocket server";
    /// Wrong key.
    pub const KEY: &str = "Invalid key provided";
    /// `--concurrent-limit` reached.
    pub const LIMIT: &str = "Server has reached its concurrent user limit";
}

/// One registered PeerJS connection.
pub struct PeerJs {
    /// This client's id, as a JSON string literal (the `dst` of what it gets).
    me: String,
    /// How long messages for an absent id are held.
    expire: Duration,
    /// Last EXPIRE/LEAVE notice sent (kind, about whom, when): one burst of
    /// undeliverable messages (an offer and its candidates) gives one notice.
    last_notice: Option<(bool, Name, Instant)>,
}

impl PeerJs {
    /// State for a connection registered as `id`.
    pub fn new(id: &str, expire: Duration) -> PeerJs {
        let mut me = String::with_capacity(id.len() + 2);
        push_json_str(&mut me, id);
        PeerJs { me, expire, last_notice: None }
    }

    /// `{"type":KIND,"src":SRC,"dst":ME[,"payload":RAW]}`.
    fn frame(&self, kind: &str, src: &str, payload: Option<&str>) -> String {
        let len = 40 + kind.len() + src.len() + self.me.len() + payload.map_or(0, str::len);
        let mut s = String::with_capacity(len);
        s.push_str(r#"{"type":""#);
        s.push_str(kind);
        s.push_str(r#"","src":"#);
        push_json_str(&mut s, src);
        s.push_str(r#","dst":"#);
        s.push_str(&self.me);
        if let Some(p) = payload {
            s.push_str(r#","payload":"#);
            s.push_str(p);
        }
        s.push('}');
        s
    }

    /// Tells this client that its messages to `about` will not arrive:
    /// EXPIRE (not claimed in time, or no room to hold them) or LEAVE (the
    /// recipient went away for good). Repeats within a second are dropped.
    fn notice(&mut self, expired: bool, about: Name, ctx: &mut Ctx<'_>) {
        let now = Instant::now();
        if let Some((e, who, at)) = &self.last_notice
            && *e == expired
            && *who == about
            && now.duration_since(*at) < Duration::from_secs(1)
        {
            return;
        }
        let kind = if expired { "EXPIRE" } else { "LEAVE" };
        ctx.send(self.frame(kind, &about, None));
        self.last_notice = Some((expired, about, now));
    }

    fn relay(&mut self, kind: &Name, dst: &str, payload: Option<&RawValue>, hold: bool, ctx: &mut Ctx<'_>) {
        let payload = payload.map_or_else(|| NO_PAYLOAD.clone(), Payload::from_raw);
        let missing = if hold { Missing::Hold(self.expire) } else { Missing::Drop };
        let to = Target::Name(Name::from(dst));
        match ctx.dispatch(Command::Signal { to, kind: kind.clone(), payload, missing, mark: None }) {
            Ok(_) => {}
            // Nowhere to keep it: the sender hears what it would after the timeout.
            Err(HubError::QueueFull(_)) => self.notice(true, Name::from(dst), ctx),
            Err(e) => tracing::debug!(error = %e, "relay refused"),
        }
    }
}

impl Protocol for PeerJs {
    fn opened(&mut self, ctx: &mut Ctx<'_>) {
        ctx.send(OPEN.to_string());
    }

    fn received(&mut self, text: &str, ctx: &mut Ctx<'_>) {
        // Like `peer`: what cannot be understood is logged and ignored.
        let msg: Msg<'_> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                ctx.hub.metrics().error("bad_json");
                tracing::debug!(error = %e, "ignoring a message that is not a JSON object");
                return;
            }
        };
        let k = &*KINDS;
        let (kind, hold) = match msg.ty.as_deref() {
            Some("HEARTBEAT") => return, // the transport noted that it heard the client
            Some("OFFER") => (&k.offer, true),
            Some("ANSWER") => (&k.answer, true),
            Some("CANDIDATE") => (&k.candidate, true),
            Some("LEAVE") => (&k.leave, false),
            Some("EXPIRE") => (&k.expire, false),
            other => {
                ctx.hub.metrics().error("unknown_type");
                tracing::debug!(ty = ?other, "ignoring a message of unknown type");
                return;
            }
        };
        match msg.dst.as_deref() {
            Some(dst) if !dst.is_empty() => self.relay(kind, dst, msg.payload, hold, ctx),
            // `peer` drops the client on a LEAVE without a recipient.
            _ if kind == &k.leave => {
                ctx.goodbye = true;
                ctx.close(1000, "left");
            }
            _ => tracing::debug!("ignoring a message without dst"),
        }
    }

    fn deliver(&mut self, event: Event, ctx: &mut Ctx<'_>) {
        match event {
            Event::Signal { from, kind, payload, .. } => {
                let src = from.name.as_deref().unwrap_or_default();
                let payload = (!payload.same(&NO_PAYLOAD)).then(|| payload.get());
                let frame = self.frame(&kind, src, payload);
                ctx.send(frame);
            }
            Event::Undeliverable { to: Target::Name(about), reason, .. } => {
                self.notice(reason == Undelivered::Expired, about, ctx);
            }
            _ => {}
        }
    }
}
