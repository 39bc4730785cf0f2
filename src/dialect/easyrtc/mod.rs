//! The `easyrtc` dialect: the EasyRTC 1.1 server protocol (socket.io
//! events `easyrtcAuth`, `easyrtcCmd`, `easyrtcMsg`, each with an ack).
//! Specification: docs/dialects/easyrtc.md.
//!
//! All of the protocol is here: logging in ([`Session::event`] with
//! `easyrtcAuth`), commands and messages, and what a hub event becomes on
//! the wire ([`Session::emit_of`]). It does no I/O and knows nothing of
//! socket.io: `transport::easyrtc_io` hands it each event's first argument
//! and sends the ack and emits it returns.
//!
//! Where the state lives: a client's id is a hub name (internal, one per
//! application: `\0assigned/easyrtc/<app>/<id>`, exempt from an access
//! token's name rule), so a signal to an id is routed by
//! the hub; its rooms are hub rooms named `<app>/<room>`, so every
//! application has its own `default`; what others see of it (presence,
//! username, join times, per-room `apiField`) is its hub room profile
//! ([`roster`]), so member lists come from the hub. Only the connection's
//! own copy of that profile lives here.

pub mod check;
mod commands;
mod messages;
pub mod roster;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use serde_json::value::RawValue;

use self::check::{code, is_object, value};
use self::roster::{Profile, Seat};
use super::Ctx;
use super::wire::{self, json_str};
use crate::hub::{ASSIGNED, Command, Event, HubError, Name, Payload};
use crate::ice::IceConfig;

/// Event names, verbatim.
pub mod event {
    /// C→S: log in (first message of a socket).
    pub const AUTH: &str = "easyrtcAuth";
    /// Both ways: signalling and room commands; S→C: relays and room deltas.
    pub const CMD: &str = "easyrtcCmd";
    /// Both ways: application messages.
    pub const MSG: &str = "easyrtcMsg";
}

/// The application of a client that names none, and the room of a client
/// that asks for none.
pub const DEFAULT: &str = "default";

/// Largest event argument taken, in bytes (an SDP is a few kilobytes);
/// larger ones get `MSG_REJECT_BAD_SIZE`. The transport's packet limit is
/// above it.
pub const MAX_ITEM: usize = 256 << 10;

/// The relayed `easyrtcCmd` types.
const RELAYED: [&str; 5] = ["offer", "answer", "candidate", "reject", "hangup"];

/// What an input needs besides the hub.
pub struct Env<'a> {
    /// The server's ICE servers (`iceConfig`).
    pub ice: &'a IceConfig,
    /// Wall-clock time of the input (`serverTime`, `roomJoinTime`).
    pub wall: SystemTime,
}

impl Env<'_> {
    fn ms(&self) -> u64 {
        millis(self.wall)
    }
}

/// Milliseconds since the epoch, as JavaScript's `Date.now()`.
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What the transport does with the socket after an event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    /// The ack to send, if any.
    pub ack: Option<String>,
    /// Disconnect the socket after the ack.
    pub disconnect: bool,
}

impl Answer {
    fn ack(text: String) -> Answer {
        Answer { ack: Some(text), disconnect: false }
    }

    fn done() -> Answer {
        Answer::ack(r#"{"msgType":"ack"}"#.into())
    }

    fn error(code: &'static str, env: &Env<'_>) -> Answer {
        Answer::ack(error_msg(code, env.ms()))
    }

    fn refuse(code: &'static str, env: &Env<'_>) -> Answer {
        Answer { ack: Some(error_msg(code, env.ms())), disconnect: true }
    }
}

/// `{"msgType":"error","serverTime","msgData":{"errorCode","errorText"}}`.
pub fn error_msg(code: &str, server_time: u64) -> String {
    format!(
        r#"{{"msgType":"error","serverTime":{server_time},"msgData":{{"errorCode":{},"errorText":{}}}}}"#,
        json_str(code),
        json_str(check::error_text(code))
    )
}

/// A logged-in client.
struct Login {
    app: String,
    profile: Profile,
    /// `easyrtcsid` the client gave, echoed as `sessionData`.
    sid: Option<String>,
}

/// One socket's protocol state.
#[derive(Default)]
pub struct Session {
    login: Option<Login>,
}

/// The hub name of client `id` of application `app`.
pub fn hub_name(app: &str, id: &str) -> Name {
    Name::from(format!("{ASSIGNED}easyrtc/{app}/{id}"))
}

fn room_key(app: &str, room: &str) -> Name {
    Name::from(format!("{app}/{room}"))
}

/// A new easyrtcid: 16 letters and digits, as the original's.
fn new_easyrtcid() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..16).map(|_| CHARS[rand::random_range(0..CHARS.len())] as char).collect()
}

/// `presence` after `setPresence` sets `show`, `status` and `type` if given.
fn presence_with(current: &str, set: &Value) -> String {
    let old: Value = serde_json::from_str(current).unwrap_or(Value::Null);
    let pick = |key: &str| set.get(key).or_else(|| old.get(key)).cloned();
    let mut out = format!(
        r#"{{"show":{},"status":{}"#,
        pick("show").unwrap_or(Value::Null),
        pick("status").unwrap_or(Value::Null)
    );
    if let Some(t) = pick("type") {
        out.push_str(&format!(r#","type":{t}"#));
    }
    out.push('}');
    out
}

impl Session {
    /// A socket that has not logged in.
    pub fn new() -> Session {
        Session::default()
    }

    /// The client's id, once logged in.
    pub fn easyrtcid(&self) -> Option<&str> {
        self.login.as_ref().map(|l| l.profile.easyrtcid.as_str())
    }

    /// One event `name` with its first argument `data` (raw JSON); `acked`:
    /// the client asked for an ack.
    pub fn event(
        &mut self,
        name: &str,
        data: Option<&RawValue>,
        acked: bool,
        ctx: &mut Ctx<'_>,
        env: &Env<'_>,
    ) -> Answer {
        let body = data.map_or("null", RawValue::get);
        tracing::debug!(event = name, "event");
        match name {
            event::AUTH => self.auth(body, acked, ctx, env),
            event::CMD | event::MSG => {
                // Quirk of `easyrtc`: commands and messages without an ack,
                // or before logging in, are ignored without a word.
                let Some(login) = self.login.as_mut().filter(|_| acked) else { return Answer::default() };
                if body.len() > MAX_ITEM {
                    Answer::error(code::MSG_REJECT_BAD_SIZE, env)
                } else if name == event::CMD {
                    login.cmd(body, ctx, env)
                } else {
                    login.msg(body, ctx, env)
                }
            }
            other => {
                tracing::debug!(event = other, "easyrtc: unknown event ignored");
                Answer::default()
            }
        }
    }

    fn auth(&mut self, body: &str, acked: bool, ctx: &mut Ctx<'_>, env: &Env<'_>) -> Answer {
        if !acked {
            return Answer { ack: None, disconnect: true };
        }
        if self.login.is_some() {
            return Answer::refuse(code::LOGIN_APP_AUTH_FAIL, env);
        }
        let Some(fields) = check::message(body).filter(|_| body.len() <= MAX_ITEM) else {
            return Answer::refuse(code::LOGIN_BAD_AUTH, env);
        };
        if value(&fields, "msgType").as_ref().and_then(Value::as_str) != Some("authenticate") {
            return Answer::refuse(code::LOGIN_BAD_AUTH, env);
        }
        let data = value(&fields, "msgData").unwrap_or(Value::Null);
        if !is_object(&data)
            || !data.get("apiVersion").is_some_and(Value::is_string)
            || data.get("roomJoin").is_some_and(|r| !is_object(r))
        {
            return Answer::refuse(code::LOGIN_BAD_STRUCTURE, env);
        }
        if let Err(c) = check::auth(&data) {
            return Answer::refuse(c, env);
        }
        let app = data.get("applicationName").and_then(Value::as_str).unwrap_or(DEFAULT).to_string();
        let id = new_easyrtcid();
        if let Err(e) = ctx.dispatch(Command::Claim { name: hub_name(&app, &id), exclusive: true }) {
            tracing::warn!(error = %e, "easyrtc: id not claimed");
            return Answer::refuse(code::LOGIN_GEN_FAIL, env);
        }
        let mut presence = r#"{"show":"chat","status":null}"#.to_string();
        if let Some(set) = data.get("setPresence") {
            presence = presence_with(&presence, set);
        }
        let username = data.get("username").and_then(Value::as_str).map(str::to_string);
        let profile = Profile { easyrtcid: id, presence, username, seats: Vec::new() };
        let sid = data.get("easyrtcsid").and_then(Value::as_str).map(str::to_string);
        let login = self.login.insert(Login { app, profile, sid });
        let wanted = wire::fields(fields.get("msgData").map_or("null", |r| r.get()))
            .and_then(|d| d.get("roomJoin").map(|r| check::keys_in_order(r)))
            .filter(|rooms| !rooms.is_empty())
            .unwrap_or_else(|| vec![DEFAULT.to_string()]);
        for room in &wanted {
            if let Err(e) = login.join(room, ctx, env) {
                tracing::warn!(error = %e, room, "easyrtc: login room refused");
                return Answer::refuse(code::LOGIN_GEN_FAIL, env);
            }
        }
        Answer::ack(login.token(ctx, env))
    }
}

impl Login {
    /// The `token` ack: `roomData`, `application`, `easyrtcid`,
    /// `iceConfig`, `serverTime` (and `sessionData`), in the original's order.
    fn token(&self, ctx: &Ctx<'_>, env: &Env<'_>) -> String {
        let login = self;
        let id = &login.profile.easyrtcid;
        let rooms = self.room_lists(None, ctx);
        let ice = env.ice.json_for(id, env.wall);
        let mut out = format!(
            r#"{{"msgType":"token","msgData":{{"roomData":{rooms},"application":{{"applicationName":{}}},"easyrtcid":{},"iceConfig":{{"iceServers":{ice}}},"serverTime":{}"#,
            json_str(&login.app),
            json_str(id),
            env.ms()
        );
        if let Some(sid) = &login.sid {
            out.push_str(&format!(r#","sessionData":{{"easyrtcsid":{}}}"#, json_str(sid)));
        }
        out.push_str("}}");
        out
    }

    /// `{<room>:{"roomName","roomStatus":"join","clientList"}}` for the
    /// client's rooms (those in `only`, if given), in join order.
    fn room_lists(&self, only: Option<&[String]>, ctx: &Ctx<'_>) -> String {
        let login = self;
        let lists = login.profile.seats.iter().filter(|s| only.is_none_or(|o| o.contains(&s.room))).map(|s| {
            (s.room.as_str(), roster::room_join(&s.room, &ctx.hub.members(ctx.space, &room_key(&login.app, &s.room))))
        });
        roster::room_map(lists)
    }

    /// Joins `room` (or joins it again, which tells its members the
    /// client's current profile).
    fn join(&mut self, room: &str, ctx: &mut Ctx<'_>, env: &Env<'_>) -> Result<(), HubError> {
        let login = self;
        let fresh = !login.profile.seats.iter().any(|s| s.room == room);
        if fresh {
            login.profile.seats.push(Seat { room: room.to_string(), joined: env.ms(), api_field: None });
        }
        let info = Payload::parse(&login.profile.to_json()).ok();
        let key = room_key(&login.app, room);
        let joined = ctx.dispatch(Command::Join { room: key, info, max: None });
        if joined.is_err() && fresh {
            login.profile.seats.retain(|s| s.room != room);
        }
        joined.map(|_| ())
    }
}

impl Session {
    /// What a hub event for this socket becomes: the event name and its
    /// argument. The transport emits it with an ack id, as the original
    /// does for everything it sends.
    pub fn emit_of(&self, ev: Event, wall: SystemTime) -> Option<(&'static str, String)> {
        let login = self.login.as_ref()?;
        let me = json_str(&login.profile.easyrtcid);
        let now = millis(wall);
        let bare = |room: &Name| room.strip_prefix(&format!("{}/", login.app)).map(str::to_string);
        match ev {
            Event::Signal { kind, payload, .. } => {
                let text = payload.get();
                let open = text.strip_suffix('}')?;
                if &*kind == event::MSG {
                    Some((event::MSG, format!(r#"{open},"easyrtcid":{me},"serverTime":{now}}}"#)))
                } else if RELAYED.contains(&&*kind) {
                    let t = json_str(&kind);
                    Some((event::CMD, format!(r#"{open},"easyrtcid":{me},"msgType":{t},"serverTime":{now}}}"#)))
                } else {
                    None
                }
            }
            Event::Joined { room, peer } => {
                let room = bare(&room)?;
                let (id, entry) = roster::entry_of(&peer, &room)?;
                Some((event::CMD, room_data(&roster::room_update(&room, &id, &entry), &room, &me, now)))
            }
            Event::Left { room, peer } => {
                let room = bare(&room)?;
                let id = peer.name.as_ref()?.rsplit_once('/')?.1.to_string();
                Some((event::CMD, room_data(&roster::room_remove(&room, &id), &room, &me, now)))
            }
            _ => None,
        }
    }
}

/// A pushed `roomData` command for one room.
fn room_data(delta: &str, room: &str, me: &str, now: u64) -> String {
    format!(
        r#"{{"msgData":{{"roomData":{{{}:{delta}}}}},"easyrtcid":{me},"msgType":"roomData","serverTime":{now}}}"#,
        json_str(room)
    )
}
