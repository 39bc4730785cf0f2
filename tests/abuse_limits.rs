//! Abuse limits at admission, each affecting only the offender: connections
//! and new connections per client address (the address from
//! `X-Forwarded-For` only behind a `--trusted-proxy`), and allowed origins.

mod common;

use std::net::SocketAddr;

use common::{TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A WebSocket upgrade to `/ws` with extra headers: the status line, and
/// the open stream (so the connection stays counted).
async fn upgrade(addr: SocketAddr, headers: &str) -> (String, TcpStream) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8];
        tokio::time::timeout(WAIT, s.read_exact(&mut b)).await.expect("answer in time").expect("read");
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    (text.lines().next().unwrap_or_default().to_string(), s)
}

fn from(ip: &str) -> String {
    format!("X-Forwarded-For: {ip}\r\n")
}

#[tokio::test]
async fn connections_per_address_are_capped_and_other_addresses_go_on() {
    let server = TestServer::with(|c| {
        c.entry.per_ip = 3;
        c.entry.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let (status, s) = upgrade(server.addr(0), &from("203.0.113.7")).await;
        assert!(status.contains(" 101 "), "{status}");
        open.push(s);
    }
    let (status, _) = upgrade(server.addr(0), &from("203.0.113.7")).await;
    assert!(status.contains(" 429 "), "the fourth from one address: {status}");
    let (status, _s) = upgrade(server.addr(0), &from("198.51.100.1")).await;
    assert!(status.contains(" 101 "), "another address: {status}");
    // A closed connection frees its place.
    drop(open.pop());
    server.wait_metric("switchboard_connections", |v| v == 3.0).await;
    let (status, _) = upgrade(server.addr(0), &from("203.0.113.7")).await;
    assert!(status.contains(" 101 "), "after one closed: {status}");
    assert_eq!(server.metric(r#"switchboard_errors_total{code="too_many_from_address"}"#).await, 1.0);
}

#[tokio::test]
async fn new_connections_per_second_are_limited_per_address() {
    let server = TestServer::with(|c| {
        c.entry.connect_rate = 2;
        c.entry.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // A burst of twice the rate passes, the next is refused.
    for _ in 0..4 {
        let (status, _) = upgrade(server.addr(0), &from("203.0.113.9")).await;
        assert!(status.contains(" 101 "), "{status}");
    }
    let (status, _) = upgrade(server.addr(0), &from("203.0.113.9")).await;
    assert!(status.contains(" 429 "), "{status}");
    let (status, _) = upgrade(server.addr(0), &from("198.51.100.2")).await;
    assert!(status.contains(" 101 "), "another address: {status}");
}

#[tokio::test]
async fn forwarded_for_is_ignored_from_an_untrusted_peer() {
    // Without --trusted-proxy the header names nobody: the peer address
    // (loopback, not limited per address) counts.
    let server = TestServer::with(|c| c.entry.per_ip = 1).await;
    let (a, _a) = upgrade(server.addr(0), &from("203.0.113.7")).await;
    let (b, _b) = upgrade(server.addr(0), &from("203.0.113.7")).await;
    assert!(a.contains(" 101 ") && b.contains(" 101 "), "{a} / {b}");
}

#[tokio::test]
async fn only_allowed_origins_may_connect() {
    let server = TestServer::with(|c| c.entry.allowed_origins = vec!["https://app.example".into()]).await;
    let (status, _) = upgrade(server.addr(0), "Origin: https://evil.example\r\n").await;
    assert!(status.contains(" 403 "), "{status}");
    let (status, _) = upgrade(server.addr(0), "Origin: https://app.example\r\n").await;
    assert!(status.contains(" 101 "), "{status}");
    // Clients that are not browsers send no Origin.
    let (status, _) = upgrade(server.addr(0), "").await;
    assert!(status.contains(" 101 "), "{status}");
}

#[tokio::test]
async fn a_peer_may_be_in_at_most_16_rooms() {
    let server = TestServer::native().await;
    let (mut c, _) = server.named("joiner").await;
    for i in 0..16 {
        c.send(&serde_json::json!({"type": "join", "room": format!("r{i}"), "ref": i})).await;
        assert_eq!(c.recv_type("ok").await["ref"], i);
    }
    c.send(&serde_json::json!({"type": "join", "room": "r16", "ref": 16})).await;
    let err = c.recv_type("error").await;
    assert_eq!(err["code"], "too_many_rooms", "{err}");
    // Leaving one makes room.
    c.send(&serde_json::json!({"type": "leave", "room": "r0", "ref": "l"})).await;
    assert_eq!(c.recv_type("ok").await["ref"], "l");
    c.send(&serde_json::json!({"type": "join", "room": "r16", "ref": 17})).await;
    assert_eq!(c.recv_type("ok").await["ref"], 17);
}

/// A client behind a trusted proxy cannot pick its address by writing
/// `X-Forwarded-For` itself: only hops added by trusted proxies count, and
/// the walk stops at anything that is not an address.
#[tokio::test]
async fn a_forged_forwarded_for_does_not_escape_the_limit() {
    let server = TestServer::with(|c| {
        c.entry.per_ip = 1;
        c.entry.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    // The proxy appended the real client (203.0.113.7) after what the client sent.
    let (a, _a) = upgrade(server.addr(0), &from("127.0.0.1, 203.0.113.7")).await;
    assert!(a.contains(" 101 "), "{a}");
    let (b, _b) = upgrade(server.addr(0), &from("127.0.0.1, 203.0.113.7")).await;
    assert!(b.contains(" 429 "), "a forged loopback hop is not the client: {b}");
    let (c, _c) = upgrade(server.addr(0), &from("unknown, 203.0.113.7:4711")).await;
    assert!(c.contains(" 429 "), "a hop with a port is the same address: {c}");
}
