//! The native protocol: JSON over WebSocket at `/ws`, documented in
//! `docs/protocol.md`. The server speaks first with a `welcome`; each request
//! may carry a `ref` echoed in its reply; each error has a stable `code`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::wire::push_json_str;
use super::{Ctx, Protocol};
use crate::hub::{
    CallId, Command, Event, HubError, INTERNAL, Missing, Name, Payload, PeerId, PeerInfo, Reply, Target, Undelivered,
};

/// Room every named native peer is in: its presence is "who is online".
const LOBBY: &str = "\u{0}lobby"; // starts with hub::INTERNAL

/// Settings the native dialect hands to clients in its welcome.
#[derive(Clone, Debug)]
pub struct NativeSettings {
    /// ICE servers, as `RTCIceServer` JSON objects.
    pub ice_servers: Arc<Value>,
    /// Limits advertised in the welcome (frame size, rate...).
    pub limits: Arc<Value>,
    /// Most members a room may have.
    pub room_max: usize,
    /// Resume grace, advertised in the welcome.
    pub grace: Duration,
}

/// One native connection.
pub struct Native {
    settings: NativeSettings,
    /// Resume token to announce in the welcome.
    token: Option<Name>,
    resumed: bool,
    /// Why a requested resume failed (told before the welcome).
    resume_error: Option<HubError>,
}

impl Native {
    /// State for a new (or resumed) connection.
    pub fn new(settings: NativeSettings, token: Option<Name>, resumed: bool, resume_error: Option<HubError>) -> Native {
        Native { settings, token, resumed, resume_error }
    }
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    #[serde(rename = "ref", borrow, default)]
    reference: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    to: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    room: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    call: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    meta: Option<&'a RawValue>,
}

/// A protocol-level error, before or beside the hub's own.
enum Refusal {
    Hub(HubError),
    BadRequest(String),
    UnknownType(String),
}

impl Refusal {
    fn code(&self) -> &'static str {
        match self {
            Refusal::Hub(e) => e.code(),
            Refusal::BadRequest(_) => "bad_request",
            Refusal::UnknownType(_) => "unknown_type",
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Hub(e) => e.to_string(),
            Refusal::BadRequest(m) => m.clone(),
            Refusal::UnknownType(t) => format!(
                "unknown message type '{t}'; expected one of: name, peers, join, leave, call, accept, reject, cancel, hangup, signal, ping, bye"
            ),
        }
    }
}

impl From<HubError> for Refusal {
    fn from(e: HubError) -> Self {
        Refusal::Hub(e)
    }
}

fn need<T>(v: Option<T>, field: &str, ty: &str) -> Result<T, Refusal> {
    v.ok_or_else(|| Refusal::BadRequest(format!("'{ty}' needs the field '{field}'")))
}

fn to_payload(raw: &RawValue) -> Payload {
    Payload::from_raw(raw)
}

fn peer_json(p: &PeerInfo) -> Value {
    json!({ "id": p.id.to_string(), "name": p.name.as_deref() })
}

fn target_of(s: &str) -> Target {
    match s.parse::<PeerId>() {
        Ok(id) => Target::Id(id),
        Err(()) => Target::Name(Name::from(s)),
    }
}

fn call_of(s: Option<Cow<'_, str>>, ty: &str) -> Result<CallId, Refusal> {
    let s = need(s, "call", ty)?;
    s.parse().map_err(|()| Refusal::BadRequest(format!("'{s}' is not a call id (they look like \"c1\")")))
}

impl Native {
    fn handle(&mut self, req: Request<'_>, ctx: &mut Ctx<'_>) -> Result<Option<Value>, Refusal> {
        let ty = need(req.ty.as_deref(), "type", "message")?;
        let ok = |extra: Value| Ok(Some(extra));
        match ty {
            "ping" => Ok(Some(json!({"type": "pong"}))),
            "name" => {
                let name = need(req.name, "name", ty)?;
                let name = name.trim();
                if name.is_empty() || name.len() > 64 {
                    return Err(Refusal::BadRequest("a name must have 1 to 64 characters".into()));
                }
                ctx.dispatch(Command::Claim { name: Name::from(name), exclusive: true })?;
                let reply = ctx.dispatch(Command::Join { room: Name::from(LOBBY), info: None, max: None })?;
                let peers: Vec<Value> = match reply {
                    Reply::Joined { members } => members.iter().map(peer_json).collect(),
                    _ => Vec::new(),
                };
                ok(json!({"name": name, "peers": peers}))
            }
            "peers" => {
                let me = ctx.peer;
                let peers: Vec<Value> =
                    ctx.hub.members(ctx.space, LOBBY).iter().filter(|p| p.id != me).map(peer_json).collect();
                ok(json!({"peers": peers}))
            }
            "join" | "leave" => {
                let room = need(req.room, "room", ty)?;
                if room.is_empty() || room.len() > 64 || room.starts_with(INTERNAL) {
                    let msg = "a room name must have 1 to 64 characters and not start with a NUL character";
                    return Err(Refusal::BadRequest(msg.into()));
                }
                if ty == "leave" {
                    ctx.dispatch(Command::Leave { room: Name::from(&*room) })?;
                    return ok(json!({"room": room}));
                }
                let cmd = Command::Join { room: Name::from(&*room), info: None, max: Some(self.settings.room_max) };
                match ctx.dispatch(cmd)? {
                    Reply::Joined { members } => {
                        ok(json!({"room": room, "members": members.iter().map(peer_json).collect::<Vec<_>>()}))
                    }
                    _ => ok(json!({"room": room})),
                }
            }
            "call" => {
                let to = target_of(&need(req.to, "to", ty)?);
                let meta = req.meta.map(to_payload);
                match ctx.dispatch(Command::Ring { to, meta })? {
                    Reply::Ringing { call } => ok(json!({"call": call.to_string()})),
                    _ => ok(json!({})),
                }
            }
            "accept" => {
                ctx.dispatch(Command::Accept { call: call_of(req.call, ty)? })?;
                ok(json!({}))
            }
            "reject" => {
                let call = call_of(req.call, ty)?;
                ctx.dispatch(Command::Reject { call, reason: req.reason.map(|r| Name::from(&*r)) })?;
                ok(json!({}))
            }
            "cancel" => {
                ctx.dispatch(Command::Cancel { call: call_of(req.call, ty)? })?;
                ok(json!({}))
            }
            "hangup" => {
                ctx.dispatch(Command::Hangup { call: call_of(req.call, ty)? })?;
                ok(json!({}))
            }
            "signal" => {
                let data = to_payload(need(req.data, "data", ty)?);
                let reply = match (req.to, req.room) {
                    (Some(to), _) => ctx.dispatch(Command::Signal {
                        to: target_of(&to),
                        kind: Name::from("signal"),
                        payload: data,
                        missing: Missing::Report,
                        mark: req.reference.map(to_payload),
                    })?,
                    (None, Some(room)) => ctx.dispatch(Command::Broadcast {
                        room: Name::from(&*room),
                        kind: Name::from("signal"),
                        payload: data,
                    })?,
                    (None, None) => return Err(Refusal::BadRequest("'signal' needs 'to' (a peer) or 'room'".into())),
                };
                // Replies to signals only when asked (a `ref`): relays stay lean.
                match (req.reference, reply) {
                    (None, _) => Ok(None),
                    (Some(_), Reply::Queued) => ok(json!({"queued": true})),
                    (Some(_), _) => ok(json!({})),
                }
            }
            "bye" => {
                ctx.goodbye = true;
                ctx.close(1000, "bye");
                Ok(None)
            }
            other => Err(Refusal::UnknownType(other.to_string())),
        }
    }

    fn reply(reference: Option<&RawValue>, mut body: Value, ctx: &mut Ctx<'_>) {
        if let Value::Object(map) = &mut body {
            map.entry("type").or_insert_with(|| "ok".into());
            if let Some(r) = reference
                && let Ok(v) = serde_json::from_str::<Value>(r.get())
            {
                map.insert("ref".into(), v);
            }
        }
        ctx.send(body.to_string());
    }
}

/// The standard error frame.
pub fn error_frame(code: &str, message: &str, reference: Option<&RawValue>) -> String {
    let mut s = String::with_capacity(64 + message.len());
    s.push_str(r#"{"type":"error","code":"#);
    push_json_str(&mut s, code);
    s.push_str(r#","message":"#);
    push_json_str(&mut s, message);
    s.push_str(r#","ref":"#);
    s.push_str(reference.map(|r| r.get()).unwrap_or("null"));
    s.push('}');
    s
}

impl Protocol for Native {
    fn opened(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(e) = self.resume_error.take() {
            ctx.hub.metrics().error(e.code());
            ctx.send(error_frame(e.code(), &e.to_string(), None));
        }
        let welcome = json!({
            "type": "welcome",
            "id": ctx.peer.to_string(),
            "resume": self.token.as_deref(),
            "resumed": self.resumed,
            "grace_s": self.settings.grace.as_secs(),
            "ice_servers": &*self.settings.ice_servers,
            "limits": &*self.settings.limits,
        });
        ctx.send(welcome.to_string());
    }

    fn received(&mut self, text: &str, ctx: &mut Ctx<'_>) {
        let req: Request<'_> = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                ctx.hub.metrics().error("bad_json");
                let msg = format!("could not parse that message as a JSON object: {e}");
                ctx.send(error_frame("bad_json", &msg, None));
                return;
            }
        };
        let reference = req.reference;
        match self.handle(req, ctx) {
            Ok(Some(body)) => Self::reply(reference, body, ctx),
            Ok(None) => {}
            Err(refusal) => {
                if !matches!(refusal, Refusal::Hub(_)) {
                    ctx.hub.metrics().error(refusal.code());
                }
                ctx.send(error_frame(refusal.code(), &refusal.message(), reference));
            }
        }
    }

    fn deliver(&mut self, event: Event, ctx: &mut Ctx<'_>) {
        let frame = match event {
            Event::Signal { from, payload, room, .. } => {
                let mut s = String::with_capacity(payload.get().len() + 64);
                // Built as text: this is the relay's hot path.
                write!(s, r#"{{"type":"signal","from":{{"id":"{}","name":"#, from.id).ok();
                match &from.name {
                    Some(name) => push_json_str(&mut s, name),
                    None => s.push_str("null"),
                }
                s.push('}');
                if let Some(room) = room {
                    s.push_str(r#","room":"#);
                    push_json_str(&mut s, &room);
                }
                s.push_str(r#","data":"#);
                s.push_str(payload.get());
                s.push('}');
                s
            }
            Event::Joined { room, peer } if &*room == LOBBY => {
                json!({"type": "online", "peer": peer_json(&peer)}).to_string()
            }
            Event::Left { room, peer } if &*room == LOBBY => {
                json!({"type": "offline", "peer": peer_json(&peer)}).to_string()
            }
            Event::Joined { room, peer } => {
                json!({"type": "joined", "room": room, "peer": peer_json(&peer)}).to_string()
            }
            Event::Left { room, peer } => json!({"type": "left", "room": room, "peer": peer_json(&peer)}).to_string(),
            Event::Ring { call, from, meta } => {
                let meta: Option<Value> = meta.and_then(|m| serde_json::from_str(m.get()).ok());
                json!({"type": "ring", "call": call.to_string(), "from": peer_json(&from), "meta": meta}).to_string()
            }
            Event::Accepted { call, by } => {
                json!({"type": "accepted", "call": call.to_string(), "by": peer_json(&by)}).to_string()
            }
            Event::Rejected { call, by, reason } => {
                json!({"type": "rejected", "call": call.to_string(), "by": peer_json(&by), "reason": reason.as_deref()})
                    .to_string()
            }
            Event::Ended { call, reason } => {
                json!({"type": "ended", "call": call.to_string(), "reason": reason.as_str()}).to_string()
            }
            Event::PartnerAway { call, peer } => {
                json!({"type": "away", "call": call.to_string(), "peer": peer.to_string()}).to_string()
            }
            Event::PartnerBack { call, peer } => {
                json!({"type": "back", "call": call.to_string(), "peer": peer.to_string()}).to_string()
            }
            Event::Undeliverable { to, mark, reason, .. } => {
                let mark: Option<Value> = mark.and_then(|m| serde_json::from_str(m.get()).ok());
                let reason = match reason {
                    Undelivered::PeerGone => "peer_gone",
                    Undelivered::Expired => "expired",
                    Undelivered::Congested => "congested",
                    Undelivered::Unreachable => "unreachable",
                };
                json!({"type": "undeliverable", "to": to.to_string(), "ref": mark, "reason": reason}).to_string()
            }
        };
        ctx.send(frame);
    }

    /// A page being reloaded or navigated away closes with 1001 "going
    /// away": keep the peer for its grace so the reloaded page resumes. Any
    /// other close (and `bye`) is a goodbye.
    fn close_is_goodbye(&self, code: Option<u16>) -> bool {
        code != Some(1001)
    }

    fn shutdown_notice(&self) -> Option<String> {
        Some(
            r#"{"type":"shutdown","message":"the server is restarting; reconnect with your resume token"}"#.to_string(),
        )
    }
}
