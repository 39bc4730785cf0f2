//! Inputs for the dialect fuzz harnesses ([`super::fuzz_tests`]): the
//! seed corpus (`tests/fuzz_corpus/`), JSON-ish values with the dialects'
//! field names and the numbers, escapes and sizes that break parsers,
//! arbitrary text, and mutations of corpus frames.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use serde::Deserialize;

/// Cases per run: `PROPTEST_CASES` if set, else `default`.
pub(super) fn cases(default: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default;
    }
    config
}

// ---- The corpus ----

/// The lines of a corpus file, without blank lines and `#` comments.
pub(super) fn lines(path: &str) -> Vec<String> {
    let full = format!("{}/tests/fuzz_corpus/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {full}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(str::to_string).collect()
}

/// Every frame of a dialect's corpus directory, files in name order.
pub(super) fn corpus(dialect: &str) -> Vec<String> {
    let dir = format!("{}/tests/fuzz_corpus/{dialect}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".txt"))
        .collect();
    files.sort();
    let frames: Vec<String> = files.iter().flat_map(|f| lines(&format!("{dialect}/{f}"))).collect();
    assert!(!frames.is_empty(), "no frames in {dir}");
    frames
}

// ---- JSON-ish input ----

/// A JSON value as text is built: numbers and some strings kept as raw
/// text (out-of-range numbers, escapes `serde_json` would never write),
/// objects as lists (duplicate keys allowed).
#[derive(Clone, Debug)]
pub(super) enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    /// A string literal's inside, written as is (an escape sequence).
    Raw(&'static str),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn render(&self, spaced: bool, out: &mut String) {
        let sep = if spaced { ", " } else { "," };
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            J::Raw(r) => {
                out.push('"');
                out.push_str(r);
                out.push('"');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    item.render(spaced, out);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    out.push_str(&serde_json::to_string(key).unwrap_or_default());
                    out.push_str(if spaced { " : " } else { ":" });
                    value.render(spaced, out);
                }
                out.push('}');
            }
        }
    }

    pub(super) fn text(&self, spaced: bool) -> String {
        let mut s = String::new();
        self.render(spaced, &mut s);
        s
    }

    /// The value of `text`, if it is JSON (numbers as written, object
    /// fields in order, duplicates kept).
    fn parse(text: &str) -> Option<J> {
        serde_json::from_str(text).ok()
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<J, E> {
                Ok(J::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<J, E> {
                Ok(J::Num(n.to_string()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<J, E> {
                Ok(J::Num(n.to_string()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<J, E> {
                Ok(J::Num(serde_json::Number::from_f64(n).map_or_else(|| "0".into(), |n| n.to_string())))
            }
            fn visit_str<E>(self, s: &str) -> Result<J, E> {
                Ok(J::Str(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(J::Arr(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry()? {
                    fields.push(field);
                }
                Ok(J::Obj(fields))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Field names of every dialect, so random objects hit real fields.
const KEYS: &[&str] = &[
    "type",
    "id",
    "data",
    "name",
    "to",
    "from",
    "room",
    "call",
    "reason",
    "ref",
    "meta",
    "offer",
    "answer",
    "candidate",
    "message",
    "sdp",
    "sdpOffer",
    "callResponse",
    "dst",
    "src",
    "payload",
    "session_id",
    "device_name",
    "username",
    "user_agent",
    "description",
    "iceCandidate",
    "iceUserName",
    "didIOffer",
    "offererUserName",
    "userName",
    "password",
    "success",
];

/// Message types and ids of every dialect, and the harness's names.
const WORDS: &[&str] = &[
    "login",
    "offer",
    "answer",
    "candidate",
    "leave",
    "message",
    "register",
    "call",
    "incomingCallResponse",
    "onIceCandidate",
    "list",
    "ping",
    "stop",
    "accept",
    "reject",
    "new",
    "bye",
    "peers",
    "OFFER",
    "ANSWER",
    "CANDIDATE",
    "LEAVE",
    "EXPIRE",
    "HEARTBEAT",
    "name",
    "join",
    "cancel",
    "hangup",
    "signal",
    "alice",
    "bob",
    "carol",
    "p1",
    "p2",
    "p3",
    "p99",
    "c1",
    "c2",
    "42",
    "43",
    "44",
    "42-43",
    "43-",
    "-",
    "Rob-1",
    "Rob-2",
    "x",
    "",
    " ",
    "\u{0}lobby",
    "\u{0}flutter-peers",
    "standup",
];

/// Numbers, including ones no `f64` or `u64` holds.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2.50",
    "1e400",
    "-1e400",
    "1e-400",
    "1E2",
    "0.0000001",
    "9223372036854775807",
    "18446744073709551616",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "5e-324",
    "1.7976931348623157e308",
];

/// String insides that are escapes: lone surrogates, NUL, a pair, quotes.
const ESCAPES: &[&str] =
    &["\\ud800", "\\udfff\\ud800", "\\u0000", "\\ud83d\\ude00", "a\\\"b", "\\/", "\\\\", "\\n\\t", "\\u00e9"];

pub(super) fn chars(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(WORDS).prop_map(str::to_string),
        2 => chars(10),
        // A long string: past name, item and frame limits.
        1 => (1..3000usize, select(&['x', 'é', '"', '\u{1}'][..])).prop_map(|(n, c)| c.to_string().repeat(n)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![6 => select(KEYS).prop_map(str::to_string), 1 => chars(6)]
}

pub(super) fn json() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        1 => Just(J::Null),
        1 => any::<bool>().prop_map(J::Bool),
        1 => select(NUMBERS).prop_map(|n| J::Num(n.to_string())),
        1 => any::<i64>().prop_map(|n| J::Num(n.to_string())),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| J::Num(format!("{f:e}"))),
        3 => word().prop_map(J::Str),
        1 => select(ESCAPES).prop_map(J::Raw),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
            proptest::collection::vec((key(), inner), 0..5).prop_map(J::Obj),
        ]
    })
}

/// An object shaped like a frame: a type tag, then random fields.
fn json_frame() -> impl Strategy<Value = String> {
    let tag = select(&["type", "id"][..]);
    (tag, word(), proptest::collection::vec((key(), json()), 0..5), any::<bool>()).prop_map(
        |(tag, ty, mut fields, spaced)| {
            fields.insert(0, (tag.to_string(), J::Str(ty)));
            J::Obj(fields).text(spaced)
        },
    )
}

/// Text that is not JSON, or barely: random characters, bytes, JSON's
/// punctuation, and deep nesting.
pub(super) fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        chars(40),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        proptest::collection::vec(
            select(&["{", "}", "[", "]", "\"", ":", ",", "1", "null", " ", "\\", "type"][..]),
            0..40
        )
        .prop_map(|parts| parts.concat()),
        (1..4000usize, select(&["[", "{\"a\":", "{\"type\":\"offer\",\"data\":"][..])).prop_map(|(n, open)| {
            let close = if open == "[" { "]" } else { "}" };
            format!("{}{}", open.repeat(n), close.repeat(n))
        }),
    ]
}

/// A change to a corpus frame.
#[derive(Clone, Debug)]
pub(super) enum Mutation {
    /// Sets a field (`deep`: of the first nested object instead).
    Set { deep: bool, key: String, value: J },
    /// Removes the `n`-th field.
    Remove(usize),
    /// Cuts the text at about this fraction (of 256) of its length.
    Cut(u8),
    /// Inserts text at about this fraction (of 256) of its length.
    Splice(u8, String),
}

pub(super) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<bool>(), key(), json()).prop_map(|(deep, key, value)| Mutation::Set { deep, key, value }),
        1 => (0..6usize).prop_map(Mutation::Remove),
        1 => any::<u8>().prop_map(Mutation::Cut),
        1 => (any::<u8>(), prop_oneof![chars(4), select(&["\"", "{", "}", ",", "\\", "\\u"][..]).prop_map(str::to_string)])
            .prop_map(|(at, s)| Mutation::Splice(at, s)),
    ]
}

/// The char boundary nearest below `frac`/256 of `text`.
fn boundary(text: &str, frac: u8) -> usize {
    let mut at = text.len() * usize::from(frac) / 256;
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn set_field(fields: &mut Vec<(String, J)>, key: String, value: J) {
    match fields.iter_mut().find(|(k, _)| *k == key) {
        Some((_, v)) => *v = value,
        None => fields.push((key, value)),
    }
}

pub(super) fn mutate(seed: &str, mutations: &[Mutation], spaced: bool) -> String {
    let mut value = J::parse(seed);
    let mut text_edits = Vec::new();
    for m in mutations {
        match (m, &mut value) {
            (Mutation::Set { deep, key, value: v }, Some(J::Obj(fields))) => {
                let nested = fields.iter().position(|(_, f)| matches!(f, J::Obj(_))).filter(|_| *deep);
                match nested.map(|i| &mut fields[i].1) {
                    Some(J::Obj(inner)) => set_field(inner, key.clone(), v.clone()),
                    _ => set_field(fields, key.clone(), v.clone()),
                }
            }
            (Mutation::Remove(n), Some(J::Obj(fields))) if *n < fields.len() => {
                fields.remove(*n);
            }
            (Mutation::Cut(_) | Mutation::Splice(..), _) => text_edits.push(m),
            _ => {}
        }
    }
    let mut text = value.map_or_else(|| seed.to_string(), |v| v.text(spaced));
    for edit in text_edits {
        match edit {
            Mutation::Cut(at) => text.truncate(boundary(&text, *at)),
            Mutation::Splice(at, s) => text.insert_str(boundary(&text, *at), s),
            _ => {}
        }
    }
    text
}

/// A frame for a dialect whose corpus is `seeds`.
pub(super) fn frame(seeds: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => junk(),
        2 => json_frame(),
        1 => json().prop_map(|j| j.text(false)),
        // As is: real exchanges get far enough to reach deeper states.
        4 => select(seeds.clone()),
        4 => (select(seeds), proptest::collection::vec(mutation(), 1..4), any::<bool>())
            .prop_map(|(seed, mutations, spaced)| mutate(&seed, &mutations, spaced)),
    ]
}
