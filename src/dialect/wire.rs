//! Wire helpers the dialects share: reading a JSON frame's fields as the
//! originals' JavaScript did, building frames, and relaying a finished
//! frame to another peer through the hub port. One copy each.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

use super::Ctx;
use crate::hub::{Command, Missing, Name, Payload, Reply, Target};

/// The fields of a JSON object, by key, as raw JSON; the last duplicate
/// wins, as in `JSON.parse`.
pub type Fields<'a> = HashMap<Cow<'a, str>, &'a RawValue>;

/// The fields of `text` if it is a JSON object.
pub fn fields(text: &str) -> Option<Fields<'_>> {
    serde_json::from_str(text).ok()
}

/// A field that is a JSON string, decoded.
pub fn str_field(fields: &Fields<'_>, key: &str) -> Option<String> {
    fields.get(key).and_then(|raw| as_str(raw)).map(Cow::into_owned)
}

/// The JSON string's value, if `raw` is a string.
pub fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str(raw.get()).ok()
}

/// For `#[serde(deserialize_with = "present")]`: a field that is there,
/// even as `null`, is `Some` (plain `Option` reads `null` as absent).
pub fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// JavaScript truthiness of a JSON value (`if (value)` in an original).
pub fn truthy(raw: &RawValue) -> bool {
    match raw.get() {
        "null" | "false" | r#""""# => false,
        n if n.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => n.parse::<f64>() != Ok(0.0),
        _ => true,
    }
}

/// How JavaScript's `"" + value` renders a JSON value (an original's error
/// text quoting what it did not understand); `undefined` when absent.
pub fn js_string(raw: Option<&RawValue>) -> String {
    fn render(v: &Value) -> String {
        match v {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            Value::Object(_) => "[object Object]".into(),
            // Array.prototype.join: null and undefined items are empty.
            Value::Array(items) => {
                items.iter().map(|i| if i.is_null() { String::new() } else { render(i) }).collect::<Vec<_>>().join(",")
            }
        }
    }
    match raw {
        None => "undefined".into(),
        Some(raw) => serde_json::from_str::<Value>(raw.get()).map_or_else(|_| raw.get().to_string(), |v| render(&v)),
    }
}

/// A registration by name as the relay originals do it (`basic`'s `login`,
/// `one2one`'s `register`): the name must be a string, and a name held by
/// anyone, this connection included, is taken. On success the connection
/// holds the name exclusively. Refusals are counted and logged.
pub fn claim_exclusive(ctx: &mut Ctx<'_>, name: Option<&str>) -> Option<Name> {
    let Some(name) = name else {
        // The originals would register the name "undefined"; we refuse.
        tracing::debug!("registration without a string name: refused");
        ctx.hub.metrics().error("bad_request");
        return None;
    };
    if ctx.hub.holder(ctx.space, name).is_some() {
        ctx.hub.metrics().error("name_taken");
        return None;
    }
    let name = Name::from(name);
    match ctx.dispatch(Command::Claim { name: name.clone(), exclusive: true }) {
        Ok(_) => Some(name),
        Err(e) => {
            tracing::info!(peer = %ctx.peer, error = %e, "name claim refused");
            None
        }
    }
}

/// Relays `payload` to `to` as a signal of `kind`, dropped without a word
/// when nobody is there. `None` when the hub refused it (logged).
pub fn relay(ctx: &mut Ctx<'_>, to: Target, kind: &str, payload: Payload) -> Option<Reply> {
    let cmd = Command::Signal { to, kind: Name::from(kind), payload, missing: Missing::Drop, mark: None };
    match ctx.dispatch(cmd) {
        Ok(reply) => Some(reply),
        Err(e) => {
            tracing::debug!(peer = %ctx.peer, kind, error = %e, "relay refused");
            None
        }
    }
}

/// Relays a frame this dialect built for another connection, which writes
/// it out unchanged (see [`relay`]). `None` when it could not be sent (logged).
pub fn relay_frame(ctx: &mut Ctx<'_>, to: Target, kind: &str, frame: &str) -> Option<Reply> {
    match Payload::parse(frame) {
        Ok(payload) => relay(ctx, to, kind, payload),
        Err(e) => {
            tracing::warn!(peer = %ctx.peer, kind, error = %e, "could not build the relayed frame: dropped");
            None
        }
    }
}

/// Builds `{"<tag_key>":"<tag>",<key>:<raw JSON>...}` with fields in the
/// given order, leaving out absent values as `JSON.stringify` drops
/// `undefined`. Values are raw JSON text, written as they are.
pub fn json_object(tag_key: &str, tag: &str, fields: &[(&str, Option<&str>)]) -> String {
    let mut s = String::with_capacity(64 + fields.iter().map(|(_, v)| v.map_or(0, str::len)).sum::<usize>());
    s.push('{');
    push_json_str(&mut s, tag_key);
    s.push(':');
    push_json_str(&mut s, tag);
    for (key, value) in fields {
        if let Some(value) = value {
            s.push(',');
            push_json_str(&mut s, key);
            s.push(':');
            s.push_str(value);
        }
    }
    s.push('}');
    s
}

/// `s` as a JSON string literal (quotes included).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
}

/// Writes `s` as a JSON string literal (quotes included) onto `out`.
pub fn push_json_str(out: &mut String, s: &str) {
    // Ids and names rarely need escaping: copy those as they are.
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    // serde_json's escaping; writing to a String cannot fail.
    if let Ok(quoted) = serde_json::to_string(s) {
        out.push_str(&quoted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).expect("raw JSON")
    }

    #[test]
    fn js_string_renders_as_javascript_does() {
        assert_eq!(js_string(None), "undefined");
        assert_eq!(js_string(Some(raw("null"))), "null");
        assert_eq!(js_string(Some(raw(r#""offer""#))), "offer");
        assert_eq!(js_string(Some(raw(r#"{"a":1}"#))), "[object Object]");
        assert_eq!(js_string(Some(raw(r#"[1,null,"x",[2,3]]"#))), "1,,x,2,3");
        assert_eq!(js_string(Some(raw("true"))), "true");
    }

    #[test]
    fn truthy_follows_javascript() {
        for falsy in ["null", "false", r#""""#, "0", "-0", "0.0"] {
            assert!(!truthy(raw(falsy)), "{falsy}");
        }
        for t in ["true", r#""0""#, "1", "-1", "[]", "{}"] {
            assert!(truthy(raw(t)), "{t}");
        }
    }

    #[test]
    fn fields_read_strings_and_keep_the_last_duplicate() {
        let f = fields(r#"{"type":"a","type":"b","n":1}"#).expect("an object");
        assert_eq!(str_field(&f, "type").as_deref(), Some("b"));
        assert_eq!(str_field(&f, "n"), None);
        assert!(fields("[1]").is_none());
    }
}
