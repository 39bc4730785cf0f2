//! Transcript tests of the peerjs dialect over real sockets: every server
//! message (OPEN, ID-TAKEN, ERROR, relayed OFFER/ANSWER/CANDIDATE/LEAVE/
//! EXPIRE), HEARTBEAT, the HTTP routes, the bounded offline queue, takeover
//! by token and the reload rules.

mod common;

use std::time::Duration;

use common::{Client, TestServer, WAIT};
use switchboard::Config;
use switchboard::dialect::DialectKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn server(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::single(DialectKind::Peerjs, "127.0.0.1:0".parse().expect("addr"));
    tweak(&mut config);
    TestServer::start(config).await
}

fn url(server: &TestServer, key: &str, id: &str, token: &str) -> String {
    server.ws_url(&format!("/peerjs?key={key}&id={id}&token={token}&version=1.5.5"))
}

/// Connects as `id` with `token` and expects OPEN.
async fn open(server: &TestServer, id: &str, token: &str) -> Client {
    let mut c = Client::connect(&url(server, "peerjs", id, token)).await;
    assert_eq!(c.recv_text().await, r#"{"type":"OPEN"}"#);
    c
}

/// Connects and expects one refusal frame, then the close.
async fn refused(url: &str) -> String {
    let mut c = Client::connect(url).await;
    let frame = c.recv_text().await;
    c.recv_close().await;
    frame
}

/// Waits until the server sees `id` as away (dropped, within its grace).
async fn until_away(server: &TestServer, id: &str) {
    let hub = &server.running.hub;
    tokio::time::timeout(WAIT, async {
        while !hub.read(|h| h.lookup(server.running.spaces[0], id).is_some_and(|p| h.is_away(p))) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the server notices the dropped connection");
}

/// A plain HTTP/1.1 GET; returns the status line, headers and body.
async fn http_get(server: &TestServer, path: &str) -> (String, String, String) {
    http_request(server, "GET", path, "").await
}

/// An HTTP/1.1 request from a page at `http://app.test`, with `extra` header
/// lines (each ending in CRLF); returns the status line, headers and body.
async fn http_request(server: &TestServer, method: &str, path: &str, extra: &str) -> (String, String, String) {
    let mut s = tokio::net::TcpStream::connect(server.addr(0)).await.expect("connect");
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nOrigin: http://app.test\r\n{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut raw = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut raw)).await.expect("response in time").expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

#[tokio::test]
async fn cors_preflight_answers_no_content_with_peers_headers() {
    let s = server(|_| {}).await;
    let ask = "Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: content-type\r\n";
    let (status, headers, body) = http_request(&s, "OPTIONS", "/peerjs/id", ask).await;
    assert!(status.contains("204"), "{status}");
    assert!(headers.contains("access-control-allow-origin: http://app.test"), "{headers}");
    assert!(headers.contains("access-control-allow-methods: get,head,put,patch,post,delete"), "{headers}");
    assert!(headers.contains("access-control-allow-headers: content-type"), "{headers}");
    assert_eq!(body, "");
}

#[tokio::test]
async fn http_routes_answer_like_peer() {
    let s = server(|_| {}).await;
    let (status, headers, body) = http_get(&s, "/").await;
    assert!(status.contains("200"), "{status}");
    assert!(headers.contains("access-control-allow-origin: http://app.test"), "{headers}");
    let info: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(info["name"], "PeerJS Server");

    let (status, headers, id) = http_get(&s, "/peerjs/id").await;
    assert!(status.contains("200"), "{status}");
    assert!(headers.contains("access-control-allow-origin: http://app.test"), "{headers}");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(id.matches('-').count(), 4, "a UUID: {id}");

    let (status, _, _) = http_get(&s, "/peerjs/peers").await;
    assert!(status.contains("401"), "discovery is off by default: {status}");

    let d = server(|c| {
        c.peerjs.allow_discovery = true;
        c.peerjs.path = "/app/".into();
    })
    .await;
    let _a = Client::connect(&d.ws_url("/app/peerjs?key=peerjs&id=alice&token=t")).await;
    let mut b = Client::connect(&d.ws_url("/app/peerjs?key=peerjs&id=bob&token=t")).await;
    assert_eq!(b.recv_text().await, r#"{"type":"OPEN"}"#);
    let (status, _, body) = http_get(&d, "/app/peerjs/peers").await;
    assert!(status.contains("200"), "{status}");
    let mut ids: Vec<String> = serde_json::from_str(&body).expect("a JSON array");
    ids.sort();
    assert_eq!(ids, ["alice", "bob"]);
    let (status, _, body) = http_get(&d, "/app").await;
    assert!(status.contains("200") && body.contains("PeerJS Server"), "{status} {body}");
}

#[tokio::test]
async fn relays_offer_answer_candidate_with_src_set_by_the_server() {
    let s = server(|_| {}).await;
    let mut a = open(&s, "alice", "ta").await;
    let mut b = open(&s, "bob", "tb").await;
    // A made-up src is replaced; the payload is passed on byte for byte.
    a.send_text(r#"{"type":"OFFER","src":"mallory","dst":"bob","payload":{"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"media","connectionId":"mc_1","x":[1, 2.50]}}"#).await;
    assert_eq!(
        b.recv_text().await,
        r#"{"type":"OFFER","src":"alice","dst":"bob","payload":{"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"media","connectionId":"mc_1","x":[1, 2.50]}}"#
    );
    b.send_text(r#"{"type":"ANSWER","dst":"alice","payload":{"sdp":"a"}}"#).await;
    assert_eq!(a.recv_text().await, r#"{"type":"ANSWER","src":"bob","dst":"alice","payload":{"sdp":"a"}}"#);
    for i in 0..3 {
        a.send_text(&format!(r#"{{"type":"CANDIDATE","dst":"bob","payload":{{"i":{i}}}}}"#)).await;
    }
    for i in 0..3 {
        assert_eq!(
            b.recv_text().await,
            format!(r#"{{"type":"CANDIDATE","src":"alice","dst":"bob","payload":{{"i":{i}}}}}"#)
        );
    }
    // HEARTBEAT gets no answer; LEAVE and EXPIRE are relayed (no payload kept absent).
    a.send_text(r#"{"type":"HEARTBEAT"}"#).await;
    a.expect_silence(Duration::from_millis(200)).await;
    a.send_text(r#"{"type":"LEAVE","dst":"bob"}"#).await;
    assert_eq!(b.recv_text().await, r#"{"type":"LEAVE","src":"alice","dst":"bob"}"#);
    b.send_text(r#"{"type":"EXPIRE","dst":"alice","payload":null}"#).await;
    assert_eq!(a.recv_text().await, r#"{"type":"EXPIRE","src":"bob","dst":"alice","payload":null}"#);
}

#[tokio::test]
async fn bad_input_is_ignored_and_the_connection_goes_on() {
    let s = server(|_| {}).await;
    let mut a = open(&s, "alice", "ta").await;
    let mut b = open(&s, "bob", "tb").await;
    for junk in [
        "not json",
        "[1,2]",
        r#"{"type":"NOPE","dst":"bob"}"#,
        r#"{"dst":"bob"}"#,
        r#"{"type":7}"#,
        r#"{"type":"OFFER"}"#,
        "{}",
    ] {
        a.send_text(junk).await;
    }
    // LEAVE and EXPIRE for an id nobody holds are dropped, not held.
    a.send_text(r#"{"type":"LEAVE","dst":"nobody"}"#).await;
    a.send_text(r#"{"type":"EXPIRE","dst":"nobody"}"#).await;
    a.send_text(r#"{"type":"OFFER","dst":"bob","payload":1}"#).await;
    assert_eq!(b.recv_text().await, r#"{"type":"OFFER","src":"alice","dst":"bob","payload":1}"#);
    b.expect_silence(Duration::from_millis(200)).await;
    a.expect_silence(Duration::from_millis(100)).await;
    assert_eq!(s.running.hub.read(|h| h.census().held), 0);
}

#[tokio::test]
async fn registration_errors_are_sent_then_closed() {
    let s = server(|c| c.peerjs.concurrent_limit = 1).await;
    let params = r#"{"type":"ERROR","payload":{"msg":"No id, token, or key supplied to websocket server"}}"#;
    assert_eq!(refused(&s.ws_url("/peerjs?key=peerjs&id=a")).await, params);
    assert_eq!(refused(&s.ws_url("/peerjs?key=peerjs&id=&token=t")).await, params);
    assert_eq!(refused(&s.ws_url("/peerjs")).await, params);
    assert_eq!(
        refused(&url(&s, "wrong", "a", "t")).await,
        r#"{"type":"ERROR","payload":{"msg":"Invalid key provided"}}"#
    );
    let _a = open(&s, "a", "t").await;
    assert_eq!(
        refused(&url(&s, "peerjs", "b", "t")).await,
        r#"{"type":"ERROR","payload":{"msg":"Server has reached its concurrent user limit"}}"#
    );
    let long = "x".repeat(300);
    assert!(refused(&url(&s, "peerjs", &long, "t")).await.contains(r#""type":"ERROR""#));
}

#[tokio::test]
async fn other_token_gets_id_taken_and_same_token_takes_over() {
    let s = server(|_| {}).await;
    let mut a1 = open(&s, "alice", "t1").await;
    let mut b = open(&s, "bob", "tb").await;
    // A live holder (it answers the server's ping, as a browser does).
    let other = url(&s, "peerjs", "alice", "t2");
    let (frame, ()) = tokio::join!(refused(&other), a1.answer_pings_for(WAIT / 2));
    assert_eq!(frame, r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#);
    // The holder is untouched by the refused attempt.
    b.send_text(r#"{"type":"OFFER","dst":"alice","payload":"x"}"#).await;
    assert_eq!(a1.recv_text().await, r#"{"type":"OFFER","src":"bob","dst":"alice","payload":"x"}"#);
    // Same token: the new socket takes over, the old one is closed.
    let mut a2 = open(&s, "alice", "t1").await;
    let (code, _) = a1.recv_close().await;
    assert_eq!(code, 1008);
    b.send_text(r#"{"type":"OFFER","dst":"alice","payload":"y"}"#).await;
    assert_eq!(a2.recv_text().await, r#"{"type":"OFFER","src":"bob","dst":"alice","payload":"y"}"#);
    a2.send_text(r#"{"type":"ANSWER","dst":"bob","payload":"z"}"#).await;
    assert_eq!(b.recv_text().await, r#"{"type":"ANSWER","src":"alice","dst":"bob","payload":"z"}"#);
}

#[tokio::test]
async fn offline_queue_delivers_in_order_on_connect() {
    let s = server(|_| {}).await;
    let mut a = open(&s, "alice", "ta").await;
    a.send_text(r#"{"type":"OFFER","dst":"carol","payload":{"n":1}}"#).await;
    a.send_text(r#"{"type":"CANDIDATE","dst":"carol","payload":{"n":2}}"#).await;
    a.send_text(r#"{"type":"HEARTBEAT"}"#).await;
    a.expect_silence(Duration::from_millis(100)).await;
    let mut c = open(&s, "carol", "tc").await;
    assert_eq!(c.recv_text().await, r#"{"type":"OFFER","src":"alice","dst":"carol","payload":{"n":1}}"#);
    assert_eq!(c.recv_text().await, r#"{"type":"CANDIDATE","src":"alice","dst":"carol","payload":{"n":2}}"#);
    assert_eq!(s.running.hub.read(|h| h.census().held), 0);
}

/// Waits until the server holds `n` messages for absent ids.
async fn until_held(server: &TestServer, n: usize) {
    for _ in 0..500 {
        if server.running.hub.read(|h| h.census().held) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the server never held {n} messages: {}", server.running.hub.read(|h| h.census().held));
}

#[tokio::test]
async fn held_messages_expire_with_one_expire_to_the_sender() {
    let s = server(|c| c.peerjs.expire_timeout = Duration::from_secs(5)).await;
    let mut a = open(&s, "alice", "ta").await;
    a.send_text(r#"{"type":"OFFER","dst":"ghost","payload":{}}"#).await;
    a.send_text(r#"{"type":"CANDIDATE","dst":"ghost","payload":{}}"#).await;
    until_held(&s, 2).await;
    common::fast_forward(Duration::from_millis(4900)).await;
    a.expect_silence(Duration::from_millis(50)).await;
    common::fast_forward(Duration::from_millis(100)).await;
    assert_eq!(a.recv_text().await, r#"{"type":"EXPIRE","src":"ghost","dst":"alice"}"#);
    a.expect_silence(Duration::from_millis(600)).await;
    // Expired messages are gone: a late ghost gets nothing.
    let mut g = open(&s, "ghost", "tg").await;
    g.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_offline_queue_is_bounded_per_id() {
    let s = server(|c| c.peerjs.expire_timeout = Duration::from_secs(600)).await;
    let mut a = open(&s, "alice", "ta").await;
    for i in 0..64 {
        a.send_text(&format!(r#"{{"type":"CANDIDATE","dst":"ghost","payload":{i}}}"#)).await;
    }
    a.expect_silence(Duration::from_millis(200)).await;
    a.send_text(r#"{"type":"CANDIDATE","dst":"ghost","payload":64}"#).await;
    // Long before the timeout: no room, so the sender hears at once.
    assert_eq!(a.recv_text().await, r#"{"type":"EXPIRE","src":"ghost","dst":"alice"}"#);
    assert_eq!(s.running.hub.read(|h| h.census().held), 64);
    let mut g = open(&s, "ghost", "tg").await;
    for i in 0..64 {
        assert_eq!(g.recv_text().await, format!(r#"{{"type":"CANDIDATE","src":"alice","dst":"ghost","payload":{i}}}"#));
    }
}

#[tokio::test]
async fn a_reloaded_page_gets_its_id_back_at_once() {
    let s = server(|_| {}).await;
    let mut b = open(&s, "bob", "tb").await;
    // Closed cleanly (a reload usually is): the id is free at once.
    let mut a = open(&s, "alice", "t1").await;
    a.ws.close(None).await.expect("close");
    let mut a = open_retrying(&s, "alice", "t2").await;
    // Dropped without a close frame: the holder is away; a new page (new
    // token) takes the id over, with what was sent to it meanwhile.
    a.send_text(r#"{"type":"HEARTBEAT"}"#).await;
    a.drop_abruptly().await;
    until_away(&s, "alice").await;
    b.send_text(r#"{"type":"OFFER","dst":"alice","payload":"while away"}"#).await;
    b.expect_silence(Duration::from_millis(100)).await;
    let mut a3 = open(&s, "alice", "t3").await;
    assert_eq!(a3.recv_text().await, r#"{"type":"OFFER","src":"bob","dst":"alice","payload":"while away"}"#);
    a3.send_text(r#"{"type":"ANSWER","dst":"bob","payload":1}"#).await;
    assert_eq!(b.recv_text().await, r#"{"type":"ANSWER","src":"alice","dst":"bob","payload":1}"#);
}

/// After a clean close the server may need a moment to see it: retry on
/// ID-TAKEN until OPEN (bounded by WAIT).
async fn open_retrying(server: &TestServer, id: &str, token: &str) -> Client {
    tokio::time::timeout(WAIT, async {
        loop {
            let mut c = Client::connect(&url(server, "peerjs", id, token)).await;
            if c.recv_text().await == r#"{"type":"OPEN"}"# {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the id is freed")
}

#[tokio::test]
async fn a_peer_that_never_returns_makes_senders_get_leave() {
    let s = server(|c| c.grace = Duration::from_secs(30)).await;
    let mut b = open(&s, "bob", "tb").await;
    let a = open(&s, "alice", "ta").await;
    a.drop_abruptly().await;
    until_away(&s, "alice").await;
    b.send_text(r#"{"type":"OFFER","dst":"alice","payload":1}"#).await;
    b.send_text(r#"{"type":"CANDIDATE","dst":"alice","payload":2}"#).await;
    common::fast_forward(Duration::from_secs(29)).await;
    b.expect_silence(Duration::from_millis(100)).await;
    common::fast_forward(Duration::from_secs(1)).await;
    assert_eq!(b.recv_text().await, r#"{"type":"LEAVE","src":"alice","dst":"bob"}"#);
    b.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn leave_without_dst_ends_the_registration() {
    let s = server(|_| {}).await;
    let mut a = open(&s, "alice", "t1").await;
    a.send_text(r#"{"type":"LEAVE"}"#).await;
    let (code, _) = a.recv_close().await;
    assert_eq!(code, 1000);
    let _a2 = open_retrying(&s, "alice", "t2").await;
}

/// A page whose network vanished (its socket still looks open) and that
/// reloads gets its id back at once: the holder is pinged and, silent for
/// the probe time, replaced; before, the reload got ID-TAKEN for 15 s.
#[tokio::test]
async fn a_frozen_holder_is_probed_and_the_reloaded_page_gets_its_id_within_3_s() {
    let s = server(|_| {}).await;
    let mut frozen = open(&s, "alice", "t1").await;
    let mut b = open(&s, "bob", "tb").await;
    let started = std::time::Instant::now();
    let mut reloaded = Client::connect(&url(&s, "peerjs", "alice", "t2")).await;
    assert_eq!(reloaded.recv_text().await, r#"{"type":"OPEN"}"#);
    assert!(started.elapsed() < Duration::from_secs(3), "OPEN after {:?}", started.elapsed());
    // The frozen connection is the one closed; the id routes to the new one.
    assert_eq!(frozen.recv_close().await.0, 1008);
    b.send_text(r#"{"type":"OFFER","dst":"alice","payload":"x"}"#).await;
    assert_eq!(reloaded.recv_text().await, r#"{"type":"OFFER","src":"bob","dst":"alice","payload":"x"}"#);
}
