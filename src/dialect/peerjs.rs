//! The PeerJS server protocol, as the official `peerjs` browser client and
//! the npm `peer` server speak it. Specification: docs/dialects/peerjs.md.
//!
//! All of it is here; `routes::peerjs` only maps URLs to these functions.
//! - HTTP: server [`INFO`] at `{path}`, a fresh id ([`new_id`]) at
//!   `{path}{key}/id`, the connected ids ([`peer_list`]) at
//!   `{path}{key}/peers`.
//! - Registration: the client picks its id and a token in the WebSocket URL
//!   (`?key=&id=&token=`, [`RegistrationQuery`]); it gets `OPEN`, or
//!   `ID-TAKEN` / `ERROR` and the close [`refused`] ([`RegistrationQuery::check`],
//!   [`claim_refused`]). A registered id is a keyed hub name: the same token
//!   may take it over, another token only once its holder is silent for
//!   [`DEAD_AFTER`].
//! - Messages ([`PeerJs`]): HEARTBEAT keeps the connection alive; OFFER,
//!   ANSWER and CANDIDATE are relayed to `dst` with `src` set by the server,
//!   held for an id that is not connected yet; LEAVE and EXPIRE are relayed
//!   only to connected ids. Payloads pass through as raw JSON.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::Close;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::wire::{present, push_json_str};
use super::{Ctx, Protocol};
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

/// Stands for "the message had no payload": relayed without one. Empty
/// text, which no JSON value is, so it stays apart from a `null` a client
/// sent, on this node and on any other it is routed to (it crosses the
/// cluster as its text).
static NO_PAYLOAD: LazyLock<Payload> = LazyLock::new(|| Payload::trusted(""));

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

/// How often the server pings a PeerJS connection. Browsers answer pings
/// themselves, even in background tabs whose timers (and so the client's
/// HEARTBEAT) are throttled, so an answer proves the page is still there.
pub const PING_EVERY: Duration = Duration::from_secs(5);

/// A connection not heard from (message, heartbeat or pong) for this long
/// loses its id to a client with another token: three missed pings.
pub const DEAD_AFTER: Duration = Duration::from_secs(15);

/// How long a connection holding an id that another token claims has to
/// answer a ping before the newcomer gets the id: a page reloaded after a
/// network drop gets its id back within this, instead of `ID-TAKEN` until
/// [`DEAD_AFTER`]; two live tabs with one id still get `ID-TAKEN`.
pub const PROBE_WAIT: Duration = Duration::from_millis(1500);

/// Longest id or token accepted.
const MAX_ID: usize = 256;

/// What `GET {path}` answers, as `peer` words it.
pub const INFO: &str = r#"{"name":"PeerJS Server","description":"A server side element to broker connections between PeerJS clients.","website":"https://peerjs.com/"}"#;

/// The close that follows a refused registration.
pub fn refused() -> Close {
    Close { code: 1008, reason: Cow::Borrowed("registration refused") }
}

/// A fresh id for `GET {path}{key}/id`: a random (version 4) UUID, the form
/// `peer` hands out, not held by anyone in the space (`taken` says).
pub fn new_id(taken: impl Fn(&str) -> bool) -> String {
    loop {
        let id = uuid();
        if !taken(&id) {
            return id;
        }
    }
}

fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The body of `GET {path}{key}/peers`: the connected ids as a JSON array.
pub fn peer_list(ids: &[Name]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

/// The query of a PeerJS WebSocket (`?key=&id=&token=`), as sent.
#[derive(Deserialize, Default, Debug)]
pub struct RegistrationQuery {
    key: Option<String>,
    id: Option<String>,
    token: Option<String>,
}

/// A registration that passed the checks: claim `id` under `token`.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The id the client chose.
    pub id: Name,
    /// Its token: a later connection with the same token takes the id over.
    pub token: Name,
}

impl RegistrationQuery {
    /// The `key` as sent.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Checks the query as `peer` does, with `key_ok` saying whether a key
    /// is the server's; on refusal, the `ERROR` frame to send before
    /// closing with [`refused`].
    pub fn check(self, key_ok: impl Fn(&str) -> bool) -> Result<Registration, String> {
        let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
        let (Some(k), Some(id), Some(token)) = (nonempty(self.key), nonempty(self.id), nonempty(self.token)) else {
            return Err(error_frame(refusal::PARAMS));
        };
        if !key_ok(&k) {
            return Err(error_frame(refusal::KEY));
        }
        if id.len() > MAX_ID || token.len() > MAX_ID {
            return Err(error_frame(&format!("id and token must be at most {MAX_ID} characters long")));
        }
        Ok(Registration { id: Name::from(id), token: Name::from(token) })
    }
}

/// The frame for a registration whose claim the hub refused.
pub fn claim_refused(e: &HubError) -> String {
    match e {
        HubError::NameTaken(_) => ID_TAKEN.to_string(),
        HubError::SpaceFull(_) => error_frame(refusal::LIMIT),
        other => error_frame(&other.to_string()),
    }
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
        let now = ctx.now;
        if let Some((e, who, at)) = &self.last_notice
            && *e == expired
            && *who == about
            && now.saturating_duration_since(*at) < Duration::from_secs(1)
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
                let payload = (!payload.get().is_empty()).then(|| payload.get());
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
