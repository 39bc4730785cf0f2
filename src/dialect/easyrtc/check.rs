//! Structure checks of incoming EasyRTC messages, in the order the original
//! server makes them, and the error codes and texts it answers with. Pure:
//! a message in, `Ok` or the error code out.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::dialect::wire::Fields;

/// Error codes the dialect answers with, verbatim (each constant is named
/// as its value; [`error_text`] gives the text sent with it).
#[allow(missing_docs)]
pub mod code {
    pub const LOGIN_APP_AUTH_FAIL: &str = "LOGIN_APP_AUTH_FAIL";
    pub const LOGIN_BAD_AUTH: &str = "LOGIN_BAD_AUTH";
    pub const LOGIN_BAD_STRUCTURE: &str = "LOGIN_BAD_STRUCTURE";
    pub const LOGIN_GEN_FAIL: &str = "LOGIN_GEN_FAIL";
    pub const MSG_REJECT_BAD_DATA: &str = "MSG_REJECT_BAD_DATA";
    pub const MSG_REJECT_BAD_ROOM: &str = "MSG_REJECT_BAD_ROOM";
    pub const MSG_REJECT_BAD_SIZE: &str = "MSG_REJECT_BAD_SIZE";
    pub const MSG_REJECT_BAD_STRUCTURE: &str = "MSG_REJECT_BAD_STRUCTURE";
    pub const MSG_REJECT_BAD_TYPE: &str = "MSG_REJECT_BAD_TYPE";
    pub const MSG_REJECT_GEN_FAIL: &str = "MSG_REJECT_GEN_FAIL";
    pub const MSG_REJECT_TARGET_EASYRTCID: &str = "MSG_REJECT_TARGET_EASYRTCID";
    pub const MSG_REJECT_TARGET_GROUP: &str = "MSG_REJECT_TARGET_GROUP";
    pub const MSG_REJECT_TARGET_ROOM: &str = "MSG_REJECT_TARGET_ROOM";
}

/// The text that goes with an error code (the client shows it).
pub fn error_text(code: &str) -> &'static str {
    match code {
        code::LOGIN_APP_AUTH_FAIL | code::LOGIN_BAD_AUTH => {
            "Authentication for application failed. Socket will be disconnected."
        }
        code::LOGIN_BAD_STRUCTURE => {
            "Authentication for application failed. The provided structure is improper. Socket will be disconnected."
        }
        code::LOGIN_GEN_FAIL => "Authentication failed. Socket will be disconnected.",
        code::MSG_REJECT_BAD_DATA => "Message rejected. The provided msgData is improper.",
        code::MSG_REJECT_BAD_ROOM => "Message rejected. Requested room is invalid or does not exist.",
        code::MSG_REJECT_BAD_SIZE => "Message rejected. Packet size is too large.",
        code::MSG_REJECT_BAD_STRUCTURE => "Message rejected. The provided structure is improper.",
        code::MSG_REJECT_BAD_TYPE => "Message rejected. The provided msgType is unsupported.",
        code::MSG_REJECT_TARGET_EASYRTCID => {
            "Message rejected. Target easyrtcid is invalid, not using same application, or no longer online."
        }
        code::MSG_REJECT_TARGET_GROUP => "Message rejected. Target group is invalid or not defined.",
        code::MSG_REJECT_TARGET_ROOM => "Message rejected. Target room is invalid or not created.",
        _ => "Message rejected. General failure occurred.",
    }
}

/// A message's fields; an array counts as an object with none (JavaScript's
/// `_.isObject`), anything else is not a message.
pub fn message(body: &str) -> Option<Fields<'_>> {
    if let Some(fields) = crate::dialect::wire::fields(body) {
        return Some(fields);
    }
    body.trim_start().starts_with('[').then(Fields::new)
}

/// The field as a JSON value (absent: `None`).
pub fn value(fields: &Fields<'_>, key: &str) -> Option<Value> {
    fields.get(key).and_then(|raw| serde_json::from_str(raw.get()).ok())
}

/// `_.isObject`: objects and arrays.
pub fn is_object(v: &Value) -> bool {
    matches!(v, Value::Object(_) | Value::Array(_))
}

/// `_.isEmpty` of an object or array (other values are never objects here).
pub fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => true,
    }
}

fn charset(s: &str, max: usize, extra: &str) -> bool {
    (1..=max).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c) || extra.contains(c))
}

/// An easyrtcid, room, application or group name (`/^[a-z0-9_.-]{1,32}$/i`).
pub fn name_ok(s: &str) -> bool {
    charset(s, 32, "")
}

/// JavaScript's `^(.){min,max}$`: UTF-16 units, no line terminators.
fn line(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.encode_utf16().count()) && !s.contains(['\n', '\r', '\u{2028}', '\u{2029}'])
}

fn str_of(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

/// `setPresence`'s object: not empty; `show` one of four words, `status` one line.
fn presence_ok(p: &Value) -> bool {
    if !is_object(p) || is_empty(p) {
        return false;
    }
    let show = p.get("show");
    let status = p.get("status");
    show.is_none_or(|s| matches!(s.as_str(), Some("away" | "chat" | "dnd" | "xa")))
        && status.is_none_or(|s| s.as_str().is_some_and(|s| line(s, 0, 255)))
}

/// A `roomJoin`/`roomLeave` map: each key a room name whose value is an
/// object naming the same room.
fn room_map_ok(map: &Value, params: bool) -> bool {
    let Some(rooms) = map.as_object() else { return is_object(map) };
    rooms.iter().all(|(name, v)| {
        name_ok(name)
            && is_object(v)
            && str_of(v.get("roomName")) == Some(name.as_str())
            && (!params || v.get("roomParameter").is_none_or(is_object))
    })
}

/// `easyrtcAuth` past its first checks (`msgType` and `msgData` are fine).
pub fn auth(data: &Value) -> Result<(), &'static str> {
    let bad = Err(code::MSG_REJECT_BAD_STRUCTURE);
    if !str_of(data.get("apiVersion")).is_some_and(|v| charset(v, 32, "+")) {
        return bad;
    }
    if data.get("applicationName").is_some_and(|a| !a.as_str().is_some_and(name_ok)) {
        return bad;
    }
    if data.get("easyrtcsid").is_some_and(|s| !s.as_str().is_some_and(|s| charset(s, 64, ""))) {
        return bad;
    }
    if data.get("username").is_some_and(|u| !u.as_str().is_some_and(|u| line(u, 1, 64))) {
        return bad;
    }
    if data.get("credential").is_some_and(|c| !is_object(c) || is_empty(c)) {
        return bad;
    }
    if data.get("roomJoin").is_some_and(|r| !is_object(r) || !room_map_ok(r, true)) {
        return bad;
    }
    if data.get("setPresence").is_some_and(|p| !presence_ok(p)) {
        return bad;
    }
    Ok(())
}

/// An `easyrtcCmd` (`msgType` is a string).
pub fn cmd(msg_type: &str, fields: &Fields<'_>) -> Result<(), &'static str> {
    use code::*;
    let data = value(fields, "msgData");
    let has_data = fields.contains_key("msgData");
    let target_ok = || str_of(value(fields, "targetEasyrtcid").as_ref()).is_some_and(name_ok);
    let inner = |key: &str| data.as_ref().and_then(|d| d.get(key)).cloned();
    let need_data = || if data.as_ref().is_some_and(is_object) { Ok(()) } else { Err(MSG_REJECT_BAD_DATA) };
    match msg_type {
        "candidate" | "offer" | "answer" => {
            if !data.as_ref().is_some_and(|d| is_object(d) && !is_empty(d)) {
                return Err(MSG_REJECT_BAD_DATA);
            }
            if !target_ok() {
                return Err(MSG_REJECT_BAD_STRUCTURE);
            }
        }
        "reject" | "hangup" => {
            if has_data {
                return Err(MSG_REJECT_BAD_DATA);
            }
            if !target_ok() {
                return Err(MSG_REJECT_BAD_STRUCTURE);
            }
        }
        "getIceConfig" => {
            if data.as_ref().is_some_and(|d| !is_empty(d)) {
                return Err(MSG_REJECT_BAD_DATA);
            }
        }
        "getRoomList" => {
            if has_data {
                return Err(MSG_REJECT_BAD_DATA);
            }
        }
        "roomJoin" | "roomLeave" => {
            need_data()?;
            if !inner(msg_type).is_some_and(|m| is_object(&m) && room_map_ok(&m, false)) {
                return Err(MSG_REJECT_BAD_STRUCTURE);
            }
        }
        "setPresence" => {
            need_data()?;
            if !inner("setPresence").is_some_and(|p| presence_ok(&p)) {
                return Err(MSG_REJECT_BAD_STRUCTURE);
            }
        }
        "setRoomApiField" => {
            need_data()?;
            let Some(set) = inner("setRoomApiField").filter(|s| is_object(s) && !is_empty(s)) else {
                return Err(MSG_REJECT_BAD_STRUCTURE);
            };
            if !str_of(set.get("roomName")).is_some_and(name_ok) {
                return Err(MSG_REJECT_BAD_ROOM);
            }
            if let Some(field) = set.get("field") {
                if !is_object(field) {
                    return Err(MSG_REJECT_BAD_STRUCTURE);
                }
                // JSON.stringify(field).length >= 4096
                if field.to_string().encode_utf16().count() >= 4096 {
                    return Err(MSG_REJECT_BAD_SIZE);
                }
            }
        }
        "setUserCfg" => {
            need_data()?;
            let Some(cfg) = inner("setUserCfg").filter(|c| is_object(c) && !is_empty(c)) else {
                return Err(MSG_REJECT_BAD_STRUCTURE);
            };
            for key in ["p2pList", "userSettings"] {
                if cfg.get(key).is_some_and(|v| !is_object(v) || is_empty(v)) {
                    return Err(MSG_REJECT_BAD_STRUCTURE);
                }
            }
        }
        _ => return Err(MSG_REJECT_BAD_TYPE),
    }
    Ok(())
}

/// An `easyrtcMsg`'s targets: each, when present, a proper name.
pub fn msg(fields: &Fields<'_>) -> Result<(), &'static str> {
    let named = |key: &str| fields.get(key).is_none_or(|raw| wire_name(raw));
    if !named("targetEasyrtcid") {
        return Err(code::MSG_REJECT_TARGET_EASYRTCID);
    }
    if !named("targetGroup") {
        return Err(code::MSG_REJECT_TARGET_GROUP);
    }
    if !named("targetRoom") {
        return Err(code::MSG_REJECT_TARGET_ROOM);
    }
    Ok(())
}

fn wire_name(raw: &RawValue) -> bool {
    crate::dialect::wire::as_str(raw).is_some_and(|s| name_ok(&s))
}

/// The keys of a JSON object in the order they were written (JavaScript's
/// `for .. in` order for non-numeric keys), each once; none if not an object.
pub fn keys_in_order(raw: &RawValue) -> Vec<String> {
    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys(Vec<String>);
    struct KeysVisitor;
    impl<'de> Visitor<'de> for KeysVisitor {
        type Value = Keys;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
            let mut keys: Vec<String> = Vec::new();
            while let Some((key, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            Ok(Keys(keys))
        }
    }
    impl<'de> Deserialize<'de> for Keys {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Keys, D::Error> {
            d.deserialize_map(KeysVisitor)
        }
    }
    serde_json::from_str::<Keys>(raw.get()).map(|k| k.0).unwrap_or_default()
}
