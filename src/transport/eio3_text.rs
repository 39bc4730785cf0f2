//! The text of Engine.IO v3 long-polling as socket.io 1.x clients write
//! and read it, which socketioxide does not do.
//!
//! engine.io-client 1.x UTF-8-encodes each packet of a polling payload
//! into a string of byte-valued characters before the browser encodes the
//! body as UTF-8 again, and UTF-8-decodes each packet of a text payload it
//! receives (a packet that does not decode is an error and ends the
//! connection). The original server (engine.io 1.x) mirrors both. So this
//! layer, on polling requests with `EIO=3` only: undoes the extra encoding
//! of POSTed packets, and adds it to the packets of text responses, each
//! re-framed with its new length. Websocket frames carry plain text and
//! are not touched; binary payloads (not used by the `easyrtc` dialect)
//! pass through.
//!
//! It also answers cross-origin polling as engine.io 1.x does: the
//! request's `Origin` is allowed, with credentials, and a preflight
//! (`OPTIONS`) is answered directly. Whether that origin may connect at
//! all is admission's decision (`--allowed-origin`), at the socket.io
//! connect.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest polling body the layer reads: Engine.IO's payload limit, with
/// room for the extra encoding (up to three characters per byte).
const MAX_BODY: usize = 4 * super::easyrtc_io::MAX_PAYLOAD as usize;

/// The packets of a v3 text payload (`<length>:<packet>`..., lengths in
/// UTF-16 units); `None` if it is not one.
fn packets(payload: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let (len, tail) = rest.split_once(':')?;
        let units: usize = len.parse().ok()?;
        let mut taken = 0;
        let mut end = 0;
        for c in tail.chars() {
            if taken >= units {
                break;
            }
            taken += c.len_utf16();
            end += c.len_utf8();
        }
        if taken != units {
            return None;
        }
        out.push(&tail[..end]);
        rest = &tail[end..];
    }
    Some(out)
}

fn frame(packets: impl IntoIterator<Item = String>) -> String {
    packets.into_iter().map(|p| format!("{}:{p}", p.encode_utf16().count())).collect()
}

/// A packet the client UTF-8-encoded once more, decoded; left as it is if
/// it is not such a string.
fn undouble(packet: &str) -> String {
    let bytes: Option<Vec<u8>> = packet.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect();
    bytes.and_then(|b| String::from_utf8(b).ok()).unwrap_or_else(|| packet.to_string())
}

/// A packet UTF-8-encoded once more, as the client will decode it.
fn double(packet: &str) -> String {
    packet.bytes().map(char::from).collect()
}

/// A POSTed payload with its packets' extra encoding undone.
pub fn undouble_payload(payload: &str) -> Option<String> {
    Some(frame(packets(payload)?.into_iter().map(undouble)))
}

/// A text payload to send with its packets encoded once more.
pub fn double_payload(payload: &str) -> Option<String> {
    Some(frame(packets(payload)?.into_iter().map(double)))
}

fn is_v3_polling(req: &Request) -> bool {
    let query = req.uri().query().unwrap_or("");
    req.uri().path().starts_with("/socket.io/")
        && query.split('&').any(|kv| kv == "EIO=3")
        && query.split('&').any(|kv| kv == "transport=polling")
}

/// Allows the request's origin, with credentials, as engine.io 1.x does.
fn allow_origin(origin: Option<&HeaderValue>, res: &mut Response) {
    let headers = res.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.cloned().unwrap_or(HeaderValue::from_static("*")));
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
}

/// The layer (see the module doc).
pub async fn polling_shim(req: Request, next: Next) -> Response {
    if !is_v3_polling(&req) {
        return next.run(req).await;
    }
    let origin = req.headers().get(header::ORIGIN).cloned();
    if req.method() == Method::OPTIONS {
        let mut res = StatusCode::OK.into_response();
        allow_origin(origin.as_ref(), &mut res);
        res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Content-Type"));
        return res;
    }
    let mut res = shim(req, next).await;
    allow_origin(origin.as_ref(), &mut res);
    res
}

async fn shim(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "payload too large").into_response();
    };
    let body = match std::str::from_utf8(&bytes).ok().and_then(undouble_payload) {
        Some(text) => Body::from(text),
        None => Body::from(bytes),
    };
    let mut req = Request::from_parts(parts, body);
    req.headers_mut().remove(header::CONTENT_LENGTH);
    let res = next.run(req).await;
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "response too large").into_response();
    };
    // Text payloads start with a length digit; binary ones with 0 or 1.
    let doubled = bytes
        .first()
        .filter(|b| b.is_ascii_digit())
        .and_then(|_| std::str::from_utf8(&bytes).ok())
        .and_then(double_payload);
    parts.headers.remove(header::CONTENT_LENGTH);
    match doubled {
        Some(text) => Response::from_parts(parts, Body::from(text)),
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_packet_is_decoded_once_and_reframed() {
        // "é" UTF-8-encoded once more is "Ã©" (2 units on the wire).
        assert_eq!(undouble_payload("4:4Ã©x").as_deref(), Some("3:4éx"));
        assert_eq!(undouble_payload("1:2").as_deref(), Some("1:2"));
    }

    #[test]
    fn text_that_is_not_doubled_is_left_alone() {
        assert_eq!(undouble_payload("3:4✓x").as_deref(), Some("3:4✓x"));
        assert_eq!(undouble_payload("3:4Ã(").as_deref(), Some("3:4Ã("), "not valid UTF-8 as bytes");
    }

    #[test]
    fn a_sent_packet_is_encoded_once_more_and_reframed() {
        assert_eq!(double_payload("3:4é✓").as_deref(), Some("6:4Ã©â\u{9c}\u{93}"));
        assert_eq!(double_payload("2:40").as_deref(), Some("2:40"));
    }

    #[test]
    fn bad_framing_is_not_a_payload() {
        assert_eq!(packets("5:abc"), None);
        assert_eq!(packets("x:abc"), None);
        assert_eq!(packets("abc"), None);
        assert_eq!(packets(""), Some(vec![]));
    }
}
