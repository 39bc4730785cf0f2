//! The relay payload: an SDP-like JSON object of a chosen size that carries
//! a sequence number and a send timestamp; and the soak's call signals.
//!
//! `{"seq":N,"sent_us":T,"type":"offer","sdp":"v=0\r\n..."}`: only the two
//! numbers change per message, so rendering is one small format plus a copy.

use serde::Deserialize;

/// Lines of a plausible session description, used in a loop to fill the
/// `sdp` string. Numbers are appended on repeat so lines stay distinct.
const LINES: &[&str] = &[
    "v=0",
    "o=- 7208114493265720194 3 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=msid-semantic: WMS bench",
    "m=video 9 UDP/TLS/RTP/SAVPF 102 103 104",
    "c=IN IP4 0.0.0.0",
    "a=ice-ufrag:nB7q",
    "a=ice-pwd:Zr4v1LkQe8sT0wYp3mN6cJ2h",
    "a=fingerprint:sha-256 A1:9C:33:0E:7B:42:D5:68:F0:1A:BE:27:93:4C:E6:05:71:DA:38:8F:C2:5B:16:E9:0D:A4:67:3F:B8:21:CC:50",
    "a=setup:actpass",
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtcp-rsize",
];

const REPEATED: &[&str] = &[
    "a=rtpmap:102 H264/90000",
    "a=rtcp-fb:102 nack",
    "a=rtcp-fb:102 nack pli",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "a=rtpmap:103 rtx/90000",
    "a=fmtp:103 apt=102",
    "a=ssrc:1592837465 cname:bench0cname",
];

/// JSON-escaped SDP text (CRLF line ends written as `\r\n` escapes, no
/// quotes) of exactly `len` bytes.
fn sdp_text(len: usize) -> String {
    let mut s = String::with_capacity(len + 160);
    let mut i = 0usize;
    while s.len() < len {
        if let Some(line) = LINES.get(i) {
            s.push_str(line);
        } else {
            let k = i - LINES.len();
            s.push_str(REPEATED[k % REPEATED.len()]);
            s.push_str(&format!(" {}", k / REPEATED.len()));
        }
        s.push_str("\\r\\n");
        i += 1;
    }
    s.truncate(len);
    // A cut inside an escape would leave a lone backslash: invalid JSON.
    if s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1 {
        s.pop();
        s.push('.');
    }
    s
}

pub struct Payload {
    /// Everything after the timestamp: `,"type":"offer","sdp":"..."}`.
    tail: String,
}

impl Payload {
    /// A payload whose JSON is about `size` bytes (exact for a 6-digit
    /// sequence number and a 10-digit timestamp).
    pub fn new(size: usize) -> Payload {
        let empty = Payload { tail: ",\"type\":\"offer\",\"sdp\":\"\"}".to_string() };
        let fixed = empty.render(100_000, 1_000_000_000).len();
        let sdp = sdp_text(size.saturating_sub(fixed).max(16));
        Payload { tail: format!(",\"type\":\"offer\",\"sdp\":\"{sdp}\"}}") }
    }

    pub fn render(&self, seq: u64, sent_us: u64) -> String {
        let mut s = String::with_capacity(self.tail.len() + 48);
        s.push_str("{\"seq\":");
        s.push_str(&seq.to_string());
        s.push_str(",\"sent_us\":");
        s.push_str(&sent_us.to_string());
        s.push_str(&self.tail);
        s
    }

    /// Size of a typical rendered payload, for the report.
    pub fn typical_len(&self) -> usize {
        self.render(100_000, 1_000_000_000).len()
    }
}

/// Sequence number of an echoed payload. A full parse, as a real client
/// would do, and servers are free to reorder keys.
pub fn seq_of(payload: &str) -> Option<u64> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_str::<Seq>(payload).ok().map(|p| p.seq)
}

/// The signals of the soak's calls, shaped like the call app's
/// (`{"call", "sdp"}`, then `{"call", "candidate"}`), plus the sending pair,
/// the sender's id and the message's place in the sender's sequence, which
/// the receiver checks.
pub struct CallSignals {
    /// JSON-escaped SDP text shared by every offer and answer.
    sdp: String,
}

/// What the receiver of a call signal checks.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct CallSignal {
    pub pair: u64,
    pub from: String,
    pub seq: u64,
}

impl CallSignals {
    /// Offers and answers carry an SDP of about `sdp_len` bytes.
    pub fn new(sdp_len: usize) -> CallSignals {
        CallSignals { sdp: sdp_text(sdp_len) }
    }

    /// Signal `i` of one side of a call: 0 is its SDP (an offer from the
    /// caller, an answer from the callee), the others ICE candidates.
    pub fn render(&self, sig: &CallSignal, call: &str, i: usize, caller: bool) -> String {
        let quoted = |s: &str| serde_json::Value::from(s).to_string();
        let head = format!(
            "{{\"pair\":{},\"from\":{},\"seq\":{},\"call\":{},",
            sig.pair,
            quoted(&sig.from),
            sig.seq,
            quoted(call)
        );
        if i == 0 {
            let ty = if caller { "offer" } else { "answer" };
            format!("{head}\"sdp\":{{\"type\":\"{ty}\",\"sdp\":\"{}\"}}}}", self.sdp)
        } else {
            let port = 50_000 + i;
            format!(
                "{head}\"candidate\":{{\"candidate\":\"candidate:{i} 1 udp 2122260223 127.0.0.1 {port} typ host\",\
                 \"sdpMid\":\"0\",\"sdpMLineIndex\":0}}}}"
            )
        }
    }
}

/// The checked fields of a received call signal; `None` if it is not one.
pub fn parse_call_signal(payload: &str) -> Option<CallSignal> {
    serde_json::from_str(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_signals_are_json_and_parse_back() {
        let sigs = CallSignals::new(1000);
        let sig = CallSignal { pair: 3, from: "p12".into(), seq: 41 };
        for (i, caller) in [(0, true), (0, false), (1, true), (7, false)] {
            let text = sigs.render(&sig, "c9", i, caller);
            let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(v["call"], "c9");
            assert_eq!(parse_call_signal(&text), Some(CallSignal { pair: 3, from: "p12".into(), seq: 41 }));
            if i == 0 {
                assert_eq!(v["sdp"]["type"], if caller { "offer" } else { "answer" });
                assert!(text.len() > 1000);
            } else {
                assert_eq!(v["candidate"]["sdpMLineIndex"], 0);
            }
        }
        assert_eq!(parse_call_signal(r#"{"seq":1,"sent_us":2}"#), None);
    }

    #[test]
    fn payload_is_json_of_the_asked_size() {
        for size in [100, 999, 1000, 1001, 4096] {
            let p = Payload::new(size);
            let text = p.render(100_000, 1_000_000_000);
            assert_eq!(text.len(), size, "size {size}");
            let v: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(v["seq"], 100_000);
            assert_eq!(seq_of(&p.render(7, 1)), Some(7));
        }
    }
}
