//! Bad input over real sockets: each mistake gets a precise error (or a
//! close with a clear reason), never a panic, and other peers carry on.

mod common;

use common::{Client, Ending, TestServer};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Two healthy peers, "ann" and "ben", that have seen each other.
async fn bystanders(server: &TestServer) -> (Client, Client) {
    let (mut ann, _) = server.named("ann").await;
    let (ben, _) = server.named("ben").await;
    ann.recv_type("online").await;
    (ann, ben)
}

/// Ann can still reach ben.
async fn still_relays(ann: &mut Client, ben: &mut Client) {
    ann.send(&json!({"type": "signal", "to": "ben", "data": {"still": "here"}})).await;
    let mut got = ben.recv().await;
    while got["type"] != "signal" {
        assert!(matches!(got["type"].as_str(), Some("online" | "offline")), "{got}");
        got = ben.recv().await;
    }
    assert_eq!(got["data"], json!({"still": "here"}));
}

/// The connection still answers.
async fn still_answers(c: &mut Client) {
    c.send(&json!({"type": "ping", "ref": "alive"})).await;
    let pong = c.recv_type("pong").await;
    assert_eq!(pong["ref"], "alive");
}

async fn expect_error(c: &mut Client, code: &str, reference: serde_json::Value) -> String {
    let err = c.recv_type("error").await;
    assert_eq!(err["code"], code, "{err}");
    assert_eq!(err["ref"], reference, "{err}");
    err["message"].as_str().expect("a message").to_string()
}

#[tokio::test]
async fn malformed_json_is_an_error_and_the_connection_goes_on() {
    let server = TestServer::native().await;
    let (mut c, _) = server.client().await;
    for bad in ["{not json", "", "[1,2]", "\"signal\"", "{\"type\": 5}"] {
        c.send_text(bad).await;
        let msg = expect_error(&mut c, "bad_json", json!(null)).await;
        assert!(msg.contains("JSON"), "{msg}");
    }
    still_answers(&mut c).await;
    assert_eq!(server.metric(r#"switchboard_errors_total{code="bad_json"}"#).await, 5.0);
    server.running.shutdown().await;
}

#[tokio::test]
async fn unknown_type_names_the_known_ones() {
    let server = TestServer::native().await;
    let (mut c, _) = server.client().await;
    c.send(&json!({"type": "dance", "ref": {"n": 1}})).await;
    let msg = expect_error(&mut c, "unknown_type", json!({"n": 1})).await;
    assert!(msg.contains("'dance'") && msg.contains("signal"), "{msg}");
    still_answers(&mut c).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn missing_or_malformed_fields_are_bad_requests() {
    let server = TestServer::native().await;
    let (mut c, _) = server.named("carl").await;
    let cases = [
        (json!({"ref": 1}), "type"),
        (json!({"type": "name", "ref": 2}), "name"),
        (json!({"type": "name", "name": "  ", "ref": 3}), "1 to 64"),
        (json!({"type": "call", "ref": 4}), "to"),
        (json!({"type": "accept", "ref": 5}), "call"),
        (json!({"type": "accept", "call": "nope", "ref": 6}), "call id"),
        (json!({"type": "signal", "to": "carl", "ref": 7}), "data"),
        (json!({"type": "signal", "data": {}, "ref": 8}), "'to'"),
        (json!({"type": "join", "ref": 9}), "room"),
        (json!({"type": "name", "name": 7, "ref": 10}), "JSON"),
    ];
    for (req, hint) in cases {
        let r = req["ref"].clone();
        c.send(&req).await;
        let err = c.recv_type("error").await;
        if r == 10 {
            // A wrongly typed field fails parsing as a whole.
            assert_eq!(err["code"], "bad_json", "{err}");
        } else {
            assert_eq!((&err["code"], &err["ref"]), (&json!("bad_request"), &r), "{err}");
        }
        assert!(err["message"].as_str().unwrap().contains(hint), "{req} -> {err}");
    }
    still_answers(&mut c).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn unknown_targets_are_reported_with_the_ref() {
    let server = TestServer::native().await;
    let (mut c, _) = server.named("carl").await;
    for (i, to) in ["p999", "nobody"].iter().enumerate() {
        c.send(&json!({"type": "signal", "to": to, "data": {}, "ref": i})).await;
        let msg = expect_error(&mut c, "unknown_peer", json!(i)).await;
        assert!(msg.contains(to), "{msg}");
        c.send(&json!({"type": "call", "to": to, "ref": i + 10})).await;
        expect_error(&mut c, "unknown_peer", json!(i + 10)).await;
    }
    c.send(&json!({"type": "call", "to": "carl", "ref": "me"})).await;
    expect_error(&mut c, "self_call", json!("me")).await;
    c.send(&json!({"type": "leave", "room": "nowhere", "ref": "l"})).await;
    expect_error(&mut c, "not_in_room", json!("l")).await;
    c.send(&json!({"type": "signal", "room": "nowhere", "data": {}, "ref": "b"})).await;
    expect_error(&mut c, "not_in_room", json!("b")).await;
    still_answers(&mut c).await;
    assert_eq!(server.metric(r#"switchboard_errors_total{code="unknown_peer"}"#).await, 4.0);
    server.running.shutdown().await;
}

#[tokio::test]
async fn oversize_messages_close_with_1009_and_others_carry_on() {
    let server = TestServer::with(|c| c.conn.max_frame = 1024).await;
    let (mut ann, mut ben) = bystanders(&server).await;
    // Just over the limit, and far over it (past the WebSocket library's own cap).
    for size in [1100, 100_000] {
        let (mut big, _) = server.client().await;
        big.send_text(&format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(size))).await;
        let (_, ending) = big.read_to_end().await;
        match ending {
            Ending::Close(1009, reason) => assert!(reason.contains("1024 bytes"), "{reason}"),
            other => panic!("{size} bytes: expected close 1009, got {other:?}"),
        }
    }
    still_relays(&mut ann, &mut ben).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn flooding_closes_with_1008_and_others_carry_on() {
    let server = TestServer::with(|c| {
        c.conn.rate = 5;
        c.conn.burst = 5;
    })
    .await;
    let (mut ann, mut ben) = bystanders(&server).await;
    let (mut flood, _) = server.client().await;
    for _ in 0..50 {
        if flood.ws.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
            break;
        }
    }
    let (frames, ending) = flood.read_to_end().await;
    assert!(frames.iter().all(|f| f["type"] == "pong"), "{frames:?}");
    assert!(frames.len() >= 5 && frames.len() < 50, "the burst is served, the flood is not: {}", frames.len());
    match ending {
        Ending::Close(1008, reason) => assert!(reason.contains("rate limit"), "{reason}"),
        other => panic!("expected close 1008, got {other:?}"),
    }
    assert_eq!(server.metric(r#"switchboard_errors_total{code="rate_limited"}"#).await, 1.0);
    still_relays(&mut ann, &mut ben).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn binary_frames_of_utf8_json_are_read_as_text_others_close_1003() {
    let server = TestServer::native().await;
    let (mut ann, mut ben) = bystanders(&server).await;
    let (mut c, _) = server.client().await;
    c.send_msg(Message::Binary(br#"{"type":"ping","ref":"bin"}"#.to_vec().into())).await;
    assert_eq!(c.recv_type("pong").await["ref"], "bin");
    c.send_msg(Message::Binary(vec![0xff, 0xfe, 0x00].into())).await;
    match c.read_to_end().await.1 {
        Ending::Close(1003, reason) => assert!(reason.contains("binary"), "{reason}"),
        other => panic!("expected close 1003, got {other:?}"),
    }
    still_relays(&mut ann, &mut ben).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn abrupt_drops_mid_call_and_mid_message_leave_others_working() {
    let server = TestServer::with(|c| c.grace = std::time::Duration::ZERO).await;
    let (mut ann, mut ben) = bystanders(&server).await;
    let (mut cat, _) = server.named("cat").await;
    ann.recv_type("online").await;
    ben.recv_type("online").await;
    ann.send(&json!({"type": "call", "to": "cat", "ref": 1})).await;
    let call = ann.recv_type("ok").await["call"].clone();
    cat.recv_type("ring").await;
    cat.send(&json!({"type": "accept", "call": call})).await;
    cat.recv_type("ok").await;
    ann.recv_type("accepted").await;
    cat.drop_abruptly().await;
    // With no grace, a drop ends the call at once.
    let mut f = ann.recv().await;
    while f["type"] != "ended" {
        assert_eq!(f["type"], "offline", "{f}");
        f = ann.recv().await;
    }
    assert_eq!(f["reason"], "disconnected");

    // Half a frame, then gone.
    let mut half = tokio::net::TcpStream::connect(server.addr(0)).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr(0)
    );
    use tokio::io::AsyncWriteExt;
    half.write_all(req.as_bytes()).await.unwrap();
    half.write_all(&[0x81, 0xfe, 0x10, 0x00, 1, 2, 3, 4, b'{']).await.unwrap();
    drop(half);

    still_relays(&mut ann, &mut ben).await;
    server.wait_metric("switchboard_connections", |v| v == 2.0).await;
    server.running.shutdown().await;
}

/// Opens a raw WebSocket to `/ws` and reads past the 101 answer.
async fn raw_ws(server: &TestServer) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(server.addr(0)).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.addr(0)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        s.read_exact(&mut byte).await.expect("101 answer");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s
}

/// A masked client frame (mask key zero: the payload goes as it is).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// Reads frames until a close frame; returns its code.
async fn close_code(s: &mut tokio::net::TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    loop {
        let mut h = [0u8; 2];
        tokio::time::timeout(common::WAIT, s.read_exact(&mut h))
            .await
            .expect("a frame in time")
            .expect("a close frame, not a dropped connection");
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                s.read_exact(&mut l).await.unwrap();
                u16::from_be_bytes(l) as usize
            }
            n => n as usize,
        };
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await.unwrap();
        if h[0] & 0x0f == 0x8 {
            return u16::from_be_bytes([body[0], body[1]]);
        }
    }
}

/// The WebSocket library refused these and the connection was dropped with
/// no close frame; now the client is told why, with RFC 6455's codes.
#[tokio::test]
async fn protocol_violations_close_with_1007_or_1002_and_others_carry_on() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::native().await;
    let (mut ann, mut ben) = bystanders(&server).await;
    let cases: [(&str, Vec<u8>, u16); 3] = [
        ("invalid UTF-8 in a text frame", frame(0x81, &[b'"', 0xff, 0xfe, b'"']), 1007),
        ("a reserved opcode", frame(0x83, b"{}"), 1002),
        ("a ping of 200 bytes (control frames carry at most 125)", frame(0x89, &[b'p'; 200]), 1002),
    ];
    for (what, bytes, code) in cases {
        let mut s = raw_ws(&server).await;
        s.write_all(&bytes).await.unwrap();
        assert_eq!(close_code(&mut s).await, code, "{what}");
    }
    still_relays(&mut ann, &mut ben).await;
    assert_eq!(server.metric(r#"switchboard_errors_total{code="protocol_violation"}"#).await, 3.0);
    server.running.shutdown().await;
}
