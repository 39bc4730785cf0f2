//! The two wire protocols, as pure encode/decode functions (no I/O).
//!
//! * `native`: switchboard's own protocol (docs/protocol.md). WebSocket at
//!   `/ws`; the server speaks first with `{"type":"welcome","id":"p1",..}`;
//!   `{"type":"signal","to":ID,"data":..}` is delivered as
//!   `{"type":"signal","from":{"id":..,"name":..},"data":..}`.
//! * `floor`: the benchmark kit's floor-relay, a PeerJS subset. WebSocket at
//!   `/peerjs?key=peerjs&id=ID&token=T`, the client picks its id, the server
//!   answers `{"type":"OPEN"}`; `{"type":"OFFER"|"ANSWER","dst":ID,"payload":..}`
//!   is delivered with `"src":SENDER` added.

use std::borrow::Cow;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// switchboard's native protocol (`/ws`, welcome, signal to/from).
    Native,
    /// The kit's floor-relay (PeerJS subset: OPEN, OFFER/ANSWER with dst/src).
    Floor,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Native => "native",
            Proto::Floor => "floor",
        }
    }

    /// Request path and query for a connection. `label` is the id a floor
    /// client registers under (native ids are assigned by the server).
    pub fn path(self, label: &str, token: u64) -> String {
        match self {
            Proto::Native => "/ws".to_string(),
            Proto::Floor => format!("/peerjs?key=peerjs&id={label}&token=t{token:x}"),
        }
    }
}

/// The two roles a relayed message plays (floor frames name them; native
/// signals do not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Offer,
    Answer,
}

/// What a server frame means to the load tool.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerMsg {
    /// Registration done. `id` is the server-assigned id (native); floor
    /// clients keep the id they asked for.
    Registered { id: Option<String> },
    /// A relayed signal: sender id and the payload JSON, verbatim.
    Signal { from: String, payload: String },
    /// The server refused something; the text says what.
    Refused(String),
    /// Anything else (presence events, pongs, heartbeats): ignored.
    Other,
}

/// Encode a signal to `dst` carrying `payload` (a JSON object's text).
pub fn encode_signal(proto: Proto, kind: Kind, dst: &str, payload: &str) -> String {
    let mut s = String::with_capacity(payload.len() + dst.len() + 48);
    match proto {
        Proto::Native => {
            // No `ref`: a successful signal then gets no reply.
            s.push_str("{\"type\":\"signal\",\"to\":\"");
            s.push_str(dst);
            s.push_str("\",\"data\":");
        }
        Proto::Floor => {
            s.push_str("{\"type\":\"");
            s.push_str(match kind {
                Kind::Offer => "OFFER",
                Kind::Answer => "ANSWER",
            });
            s.push_str("\",\"dst\":\"");
            s.push_str(dst);
            s.push_str("\",\"payload\":");
        }
    }
    s.push_str(payload);
    s.push('}');
    s
}

#[derive(Deserialize)]
struct NativeFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    from: Option<NativePeer<'a>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct NativePeer<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
struct FloorFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    src: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
}

/// Decode one text frame from the server.
pub fn decode(proto: Proto, text: &str) -> Result<ServerMsg> {
    let short = || text.chars().take(200).collect::<String>();
    match proto {
        Proto::Native => {
            let f: NativeFrame =
                serde_json::from_str(text).with_context(|| format!("undecodable native frame: {}", short()))?;
            Ok(match &*f.ty {
                "welcome" => match f.id {
                    Some(id) => ServerMsg::Registered { id: Some(id.into_owned()) },
                    None => bail!("welcome without an id: {}", short()),
                },
                "signal" => match (f.from, f.data) {
                    (Some(from), Some(data)) => {
                        ServerMsg::Signal { from: from.id.into_owned(), payload: data.get().to_owned() }
                    }
                    _ => bail!("signal without from.id or data: {}", short()),
                },
                "error" | "shutdown" => ServerMsg::Refused(short()),
                _ => ServerMsg::Other,
            })
        }
        Proto::Floor => {
            let f: FloorFrame =
                serde_json::from_str(text).with_context(|| format!("undecodable floor frame: {}", short()))?;
            Ok(match &*f.ty {
                "OPEN" => ServerMsg::Registered { id: None },
                "OFFER" | "ANSWER" | "CANDIDATE" => match (f.src, f.payload) {
                    (Some(src), Some(p)) => ServerMsg::Signal { from: src.into_owned(), payload: p.get().to_owned() },
                    _ => bail!("signal without src or payload: {}", short()),
                },
                "ERROR" | "ID-TAKEN" => ServerMsg::Refused(short()),
                _ => ServerMsg::Other,
            })
        }
    }
}

/// A native server frame as the soak's call traffic reads it: the fields it
/// looks at, the rest ignored.
#[derive(Debug, Deserialize)]
pub struct NativeEvent {
    #[serde(rename = "type")]
    pub ty: String,
    /// The request's `ref` in `ok` and `error` (the soak sends numbers).
    #[serde(default, rename = "ref")]
    pub reference: Option<u64>,
    /// Call id: in `ok` to `call`, `ring`, `accepted`, `ended`.
    #[serde(default)]
    pub call: Option<String>,
    /// Why a call `ended`.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who it comes from, in `ring` and `signal`.
    #[serde(default)]
    pub from: Option<PeerRef>,
    /// Who accepted, in `accepted`.
    #[serde(default)]
    pub by: Option<PeerRef>,
    /// A signal's payload, verbatim.
    #[serde(default)]
    pub data: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
pub struct PeerRef {
    pub id: String,
}

/// Decode a native frame for the call traffic.
pub fn decode_event(text: &str) -> Result<NativeEvent> {
    serde_json::from_str(text)
        .with_context(|| format!("undecodable native frame: {}", text.chars().take(200).collect::<String>()))
}

/// A native request with a numeric `ref`: `fields` are `(key, value)` pairs
/// of strings, e.g. `request("call", &[("to", "p2")], 7)`.
pub fn request(ty: &str, fields: &[(&str, &str)], reference: u64) -> String {
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = format!("{{\"type\":{}", quoted(ty));
    for &(k, v) in fields {
        out.push_str(&format!(",{}:{}", quoted(k), quoted(v)));
    }
    out.push_str(&format!(",\"ref\":{reference}}}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_round_trip() {
        let out = encode_signal(Proto::Native, Kind::Offer, "p2", r#"{"seq":1}"#);
        assert_eq!(out, r#"{"type":"signal","to":"p2","data":{"seq":1}}"#);
        let welcome =
            r#"{"grace_s":30,"id":"p1","limits":{"rate":2000},"resume":"ab","resumed":false,"type":"welcome"}"#;
        assert_eq!(decode(Proto::Native, welcome).unwrap(), ServerMsg::Registered { id: Some("p1".into()) });
        let sig = r#"{"data":{"seq":1},"from":{"id":"p1","name":null},"type":"signal"}"#;
        assert_eq!(
            decode(Proto::Native, sig).unwrap(),
            ServerMsg::Signal { from: "p1".into(), payload: r#"{"seq":1}"#.into() }
        );
        assert!(matches!(
            decode(Proto::Native, r#"{"type":"error","code":"unknown_peer"}"#).unwrap(),
            ServerMsg::Refused(_)
        ));
        assert_eq!(decode(Proto::Native, r#"{"type":"online","peer":{}}"#).unwrap(), ServerMsg::Other);
        assert!(decode(Proto::Native, "not json").is_err());
    }

    #[test]
    fn native_requests_and_events() {
        assert_eq!(request("call", &[("to", "p2")], 7), r#"{"type":"call","to":"p2","ref":7}"#);
        let ring = r#"{"call":"c1","from":{"id":"p1","name":"a"},"meta":null,"type":"ring"}"#;
        let e = decode_event(ring).unwrap();
        assert_eq!((e.ty.as_str(), e.call.as_deref()), ("ring", Some("c1")));
        assert_eq!(e.from.unwrap().id, "p1");
        let err = decode_event(r#"{"code":"busy","message":"..","ref":3,"type":"error"}"#).unwrap();
        assert_eq!((err.ty.as_str(), err.reference), ("error", Some(3)));
        let sig = decode_event(r#"{"data":{"seq":1},"from":{"id":"p2","name":null},"type":"signal"}"#).unwrap();
        assert_eq!(sig.data.unwrap().get(), r#"{"seq":1}"#);
        assert!(decode_event(r#"{"type":"error","ref":null}"#).unwrap().reference.is_none());
    }

    #[test]
    fn floor_round_trip() {
        let out = encode_signal(Proto::Floor, Kind::Answer, "b", r#"{"seq":1}"#);
        assert_eq!(out, r#"{"type":"ANSWER","dst":"b","payload":{"seq":1}}"#);
        assert_eq!(decode(Proto::Floor, r#"{"type":"OPEN"}"#).unwrap(), ServerMsg::Registered { id: None });
        let sig = r#"{"src":"a","type":"OFFER","dst":"b","payload":{"seq":1}}"#;
        assert_eq!(
            decode(Proto::Floor, sig).unwrap(),
            ServerMsg::Signal { from: "a".into(), payload: r#"{"seq":1}"#.into() }
        );
        assert!(matches!(decode(Proto::Floor, r#"{"type":"ID-TAKEN"}"#).unwrap(), ServerMsg::Refused(_)));
    }
}
