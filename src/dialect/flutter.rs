//! The `flutter` dialect: VertexChat's signalling server (flutter-webrtc-demo
//! style), spoken by the VertexChat Flutter app. Spec: docs/dialects/flutter.md.
//!
//! Frames are `{"type": .., "data": ..}`. `new` puts the connection on the
//! peers list with its profile and sends the whole list to everyone listed;
//! `offer`/`answer`/`candidate` are forwarded whole, unchanged, to the first
//! connection whose `new` carried `data.id == data.to`; `bye` fans out in the
//! original's odd way; `leave` does nothing; anything else gets an error.
//!
//! Mapping onto the hub: the peers list is the presence of one hub room (the
//! profile is the member's `PeerInfo::info`, join order is list order); the
//! user id is a shared name (`exclusive: false`), so duplicate ids are all
//! listed and routing finds the earliest holder, as the original's
//! first-match search does. This connection is never resumable (grace 0).
//!
//! Where we differ from the original, on purpose:
//! - The original overwrites the connection's id and profile with the `data`
//!   of *every* message, so an `offer` wipes `username`/`device_name` from
//!   later lists and a `bye` (no `data.id`) leaves the user unreachable. We
//!   keep what `new` said; the original client works with either.
//! - A second `new` from one connection replaces its entry (the original
//!   lists the connection twice).
//! - Inputs that crash the original (not JSON, `bye` without a string
//!   `session_id`) are logged and answered with the error shape
//!   `{"type":"error","data":{"reason":..}}`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::debug;

use super::wire::{self, as_str, js_string, present, push_json_str, truthy};
use super::{Ctx, Protocol};
use crate::hub::{Command, Event, Name, Payload, Target};

/// The room whose members are the peers list (the original's `connectionArray`).
const PEERS: &str = "\u{0}flutter-peers";

/// Largest profile listed: every listed profile goes to everyone listed on
/// each change, so its size multiplies.
const MAX_PROFILE: usize = 4096;

/// The original's reply to a forward without `data.to`.
const NO_TO: &str = r#"{"type":"error","data":"Peer to id not found"}"#;

/// One `flutter` connection.
#[derive(Default)]
pub struct Flutter {
    /// The user id `new` claimed, to give back if a later `new` changes it.
    id: Option<Name>,
    /// Whether `new` put this connection on the peers list.
    listed: bool,
}

impl Flutter {
    /// State for a new connection (nothing said yet).
    pub fn new() -> Flutter {
        Flutter::default()
    }
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "present")]
    ty: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    data: Option<&'a RawValue>,
}

/// The `data` fields any message type reads. `null` counts as given (the
/// original keeps `null` in a profile).
#[derive(Deserialize, Default)]
struct Data<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    device_name: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    username: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    user_agent: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    to: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    session_id: Option<&'a RawValue>,
}

/// The routing key of a user id: a string as is, any other value as its
/// JSON text (ids are strings in the real client).
fn key_of(raw: &RawValue) -> Name {
    match as_str(raw) {
        Some(s) => Name::from(s.as_ref()),
        None => Name::from(raw.get()),
    }
}

/// Drops whitespace between JSON tokens, as the original's re-serialization
/// (`JSON.stringify(JSON.parse(text))`) does; other spellings stay as sent.
fn compact(text: &str) -> Cow<'_, str> {
    let (mut in_str, mut escaped) = (false, false);
    let needed = text.bytes().any(|b| {
        let ws = !in_str && matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        if in_str {
            (escaped, in_str) = (!escaped && b == b'\\', escaped || b != b'"');
        } else if b == b'"' {
            in_str = true;
        }
        ws
    });
    if !needed {
        return Cow::Borrowed(text);
    }
    let (mut in_str, mut escaped) = (false, false);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if in_str {
            (escaped, in_str) = (!escaped && c == '\\', escaped || c != '"');
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        } else if c == '"' {
            in_str = true;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// `{"type":"error","data":{"reason":..}}`.
fn error_reason(reason: &str) -> String {
    let mut s = String::from(r#"{"type":"error","data":{"reason":"#);
    push_json_str(&mut s, reason);
    s.push_str("}}");
    s
}

/// `{"type":"bye","data":{"to":..,"session_id":..}}`.
fn bye_frame(to: &str, session_id: &str) -> String {
    let mut s = String::from(r#"{"type":"bye","data":{"to":"#);
    push_json_str(&mut s, to);
    s.push_str(r#","session_id":"#);
    push_json_str(&mut s, session_id);
    s.push_str("}}");
    s
}

/// The profile listed in `peers`: the `new` fields in the original's order,
/// absent ones left out.
fn profile(data: &Data<'_>) -> String {
    let mut s = String::from("{");
    let fields = [("id", data.id), ("device_name", data.device_name), ("username", data.username)];
    for (key, value) in fields.into_iter().chain([("user_agent", data.user_agent)]) {
        if let Some(v) = value {
            if s.len() > 1 {
                s.push(',');
            }
            push_json_str(&mut s, key);
            s.push(':');
            s.push_str(v.get());
        }
    }
    s.push('}');
    s
}

/// `{"type":"peers","data":[..]}` with everyone listed now, in `new` order.
fn peers_frame(ctx: &Ctx<'_>) -> String {
    let members = ctx.hub.members(ctx.space, PEERS);
    let mut s = String::from(r#"{"type":"peers","data":["#);
    for (i, info) in members.iter().filter_map(|m| m.info.as_ref()).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(info.get());
    }
    s.push_str("]}");
    s
}

impl Flutter {
    fn handle(&mut self, text: &str, ctx: &mut Ctx<'_>) {
        let text = compact(text);
        let frame: Frame<'_> = match serde_json::from_str(&text) {
            Ok(f) if text.starts_with('{') => f,
            Ok(_) | Err(_) => {
                debug!("not a JSON object; answered with an error");
                ctx.hub.metrics().error("bad_json");
                let reason = r#"could not parse that message: send a JSON object like {"type":"new","data":{..}}"#;
                ctx.send(error_reason(reason));
                return;
            }
        };
        // A `data` that is not an object has none of the fields.
        let data = match frame.data {
            Some(d) if d.get().starts_with('{') => serde_json::from_str(d.get()).unwrap_or_default(),
            _ => Data::default(),
        };
        let ty = frame.ty.and_then(as_str);
        debug!(ty = ty.as_deref().unwrap_or("?"), "received");
        match ty.as_deref() {
            Some("new") => self.join(&data, ctx),
            Some(kind @ ("offer" | "answer" | "candidate")) => forward(kind, &text, &data, ctx),
            Some("bye") => bye(&data, ctx),
            // Quirk of `flutter`: `leave` is accepted and does nothing.
            Some("leave") => {}
            _ => {
                ctx.hub.metrics().error("unknown_type");
                // Quirk of `flutter`: no space before the type in the reason.
                let reason = format!("Unable to process request, may not be correct \"type\"{}", js_string(frame.ty));
                ctx.send(error_reason(&reason));
            }
        }
    }

    /// `new`: list this connection with its profile; everyone listed gets
    /// the new list (the others through their `Joined` presence event).
    fn join(&mut self, data: &Data<'_>, ctx: &mut Ctx<'_>) {
        let profile = profile(data);
        if profile.len() > MAX_PROFILE {
            ctx.hub.metrics().error("too_large");
            ctx.send(error_reason(&format!(
                "the profile in 'new' is {} bytes; at most {MAX_PROFILE} are listed (id, device_name, username, user_agent)",
                profile.len()
            )));
            return;
        }
        let id = data.id.map(key_of);
        if self.id != id
            && let Some(old) = self.id.take()
        {
            let _ = ctx.dispatch(Command::Release { name: old });
        }
        if let Some(name) = &id
            && self.id.is_none()
            && let Err(e) = ctx.dispatch(Command::Claim { name: name.clone(), exclusive: false })
        {
            // Only an access token that does not allow the id refuses a shared
            // claim: the connection is not listed under an id it may not use.
            debug!(error = %e, "claiming the user id failed");
            ctx.send(error_reason(&e.to_string()));
            return;
        }
        self.id = id;
        // A second `new` replaces the profile in place (the hub tells the others).
        let info = Payload::parse(&profile).ok();
        match ctx.dispatch(Command::Join { room: Name::from(PEERS), info, max: None }) {
            Ok(_) => {
                self.listed = true;
                let frame = peers_frame(ctx);
                ctx.send(frame);
            }
            Err(e) => debug!(error = %e, "joining the peers list failed"),
        }
    }
}

/// `offer`, `answer`, `candidate`: the whole message to the first holder of
/// `data.to`, unchanged.
fn forward(kind: &str, text: &str, data: &Data<'_>, ctx: &mut Ctx<'_>) {
    let Some(to) = data.to.filter(|t| truthy(t)) else {
        ctx.hub.metrics().error("no_target");
        ctx.send(NO_TO.to_string());
        return;
    };
    // Quirk of `flutter`: an unknown `to` is dropped without a word.
    wire::relay_frame(ctx, Target::Name(key_of(to)), kind, text);
}

/// `bye` with `session_id` "a-b".
fn bye(data: &Data<'_>, ctx: &mut Ctx<'_>) {
    let Some(session) = data.session_id.and_then(as_str) else {
        debug!("bye without a string session_id");
        ctx.hub.metrics().error("bad_request");
        let reason = r#"'bye' needs data.session_id, the call's "<caller id>-<callee id>""#;
        ctx.send(error_reason(reason));
        return;
    };
    let mut parts = session.split('-');
    let a = parts.next().unwrap_or_default();
    // Quirk of `flutter`: the sender is told `to: a` (the caller, even when
    // the callee hangs up) and connection `b` is told `to: b`; `a` is never
    // sent anything unless it is the sender.
    ctx.send(bye_frame(a, &session));
    if let Some(b) = parts.next() {
        wire::relay_frame(ctx, Target::Name(Name::from(b)), "bye", &bye_frame(b, &session));
    }
}

impl Protocol for Flutter {
    fn received(&mut self, text: &str, ctx: &mut Ctx<'_>) {
        self.handle(text, ctx);
    }

    fn deliver(&mut self, event: Event, ctx: &mut Ctx<'_>) {
        match event {
            // Forwarded messages and `bye`s are complete frames already.
            Event::Signal { payload, .. } => ctx.send(payload.get().to_string()),
            Event::Joined { room, .. } | Event::Left { room, .. } if &*room == PEERS => {
                let frame = peers_frame(ctx);
                ctx.send(frame);
            }
            _ => {}
        }
    }

    // The original sends the (unchanged) peers list to everyone listed on
    // any close, even of a connection that never sent `new`: one bare
    // connect and close costs the server the whole list times everyone
    // listed. We send `peers` only when the list changes: leaving the room
    // on detach tells the others.
}
