//! `one2one` dialect transcripts over real sockets: every exchange of
//! protocols.md §3, its quirks, the original's crash cases answered safely,
//! disconnect behaviour, the HTTP side (`/call`, `--static`) and the default
//! listen address. Frames are compared as exact text.

mod common;

use std::time::Duration;

use common::samples::{ANSWER, CANDIDATE, OFFER};
use common::{Client, TestServer, expect_exact as expect};
use switchboard::Config;
use switchboard::config::default_listen;
use switchboard::dialect::DialectKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const QUIET: Duration = Duration::from_millis(300);
async fn server() -> TestServer {
    TestServer::start(Config::single(DialectKind::One2one, "127.0.0.1:0".parse().expect("addr"))).await
}

async fn connect(s: &TestServer) -> Client {
    Client::connect(&s.ws_url("/call")).await
}

async fn register(s: &TestServer, name: &str) -> Client {
    let mut c = connect(s).await;
    c.send_text(&format!(r#"{{"id":"register","name":"{name}"}}"#)).await;
    expect(&mut c, r#"{"id":"registerResponse","response":"accepted"}"#).await;
    c
}

fn call(from: &str, to: &str) -> String {
    format!(r#"{{"id":"call","from":"{from}","to":"{to}","sdpOffer":{OFFER}}}"#)
}

fn incoming(from: &str) -> String {
    format!(r#"{{"id":"incomingCall","from":"{from}","offer":{OFFER}}}"#)
}

fn ice(n: u32) -> (String, String) {
    (
        format!(r#"{{"id":"onIceCandidate","candidate":{{"n":{n}}}}}"#),
        format!(r#"{{"id":"iceCandidate","candidate":{{"n":{n}}}}}"#),
    )
}

/// user1 calls user2; both frames read.
async fn calling(s: &TestServer) -> (Client, Client) {
    let mut a = register(s, "user1").await;
    let mut b = register(s, "user2").await;
    a.send_text(&call("user1", "user2")).await;
    expect(&mut b, &incoming("user1")).await;
    (a, b)
}

#[tokio::test]
async fn example_exchange_from_the_spec() {
    let s = server().await;
    let (mut a, mut b) = calling(&s).await;
    a.send_text(&format!(r#"{{"id":"onIceCandidate","candidate":{CANDIDATE}}}"#)).await;
    expect(&mut b, &format!(r#"{{"id":"iceCandidate","candidate":{CANDIDATE}}}"#)).await;
    b.send_text(&format!(
        r#"{{"id":"incomingCallResponse","from":"user1","callResponse":"accept","sdpOffer":{ANSWER}}}"#
    ))
    .await;
    expect(&mut a, &format!(r#"{{"id":"callResponse","response":"accepted","sdpAnswer":{ANSWER}}}"#)).await;
    // Quirk: the callee gets the caller's own offer back as `sdpAnswer`.
    expect(&mut b, &format!(r#"{{"id":"startCommunication","sdpAnswer":{OFFER}}}"#)).await;
    b.send_text(&format!(r#"{{"id":"onIceCandidate","candidate":{CANDIDATE}}}"#)).await;
    expect(&mut a, &format!(r#"{{"id":"iceCandidate","candidate":{CANDIDATE}}}"#)).await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn registration_rejection_has_no_message() {
    let s = server().await;
    let _a = register(&s, "user1").await;
    let mut b = connect(&s).await;
    b.send_text(r#"{"id":"register","name":"user1"}"#).await;
    expect(&mut b, r#"{"id":"registerResponse","response":"rejected"}"#).await;
}

/// The original takes empty and 60 KB names, and any number of them per
/// connection: names are 1 to 256 bytes, at most 16 per connection.
#[tokio::test]
async fn empty_long_and_too_many_names_are_rejected() {
    let s = server().await;
    let mut a = connect(&s).await;
    let long = "n".repeat(257);
    for bad in ["", long.as_str()] {
        a.send_text(&format!(r#"{{"id":"register","name":"{bad}"}}"#)).await;
        expect(&mut a, r#"{"id":"registerResponse","response":"rejected"}"#).await;
    }
    for i in 0..16 {
        a.send_text(&format!(r#"{{"id":"register","name":"n{i}"}}"#)).await;
        expect(&mut a, r#"{"id":"registerResponse","response":"accepted"}"#).await;
    }
    a.send_text(r#"{"id":"register","name":"n16"}"#).await;
    expect(&mut a, r#"{"id":"registerResponse","response":"rejected"}"#).await;
    assert_eq!(s.metric(r#"switchboard_errors_total{code="too_many_names"}"#).await, 1.0);
    assert_eq!(s.metric(r#"switchboard_errors_total{code="bad_name"}"#).await, 2.0);
}

#[tokio::test]
async fn register_without_a_name_is_rejected() {
    let s = server().await;
    let mut a = connect(&s).await;
    a.send_text(r#"{"id":"register"}"#).await;
    expect(&mut a, r#"{"id":"registerResponse","response":"rejected"}"#).await;
}

#[tokio::test]
async fn re_registering_keeps_the_old_name_held_and_listed() {
    let s = server().await;
    let mut a = register(&s, "first").await;
    a.send_text(r#"{"id":"register","name":"second"}"#).await;
    expect(&mut a, r#"{"id":"registerResponse","response":"accepted"}"#).await;
    a.send_text(r#"{"id":"register","name":"first"}"#).await;
    expect(&mut a, r#"{"id":"registerResponse","response":"rejected"}"#).await;
    a.send_text(r#"{"id":"list"}"#).await;
    expect(&mut a, r#"{"id":"listResponse","list":["first","second"]}"#).await;
}

#[tokio::test]
async fn list_returns_every_registered_name() {
    let s = server().await;
    let mut unregistered = connect(&s).await;
    unregistered.send_text(r#"{"id":"list"}"#).await;
    expect(&mut unregistered, r#"{"id":"listResponse","list":[]}"#).await;
    let mut a = register(&s, "user1").await;
    let _b = register(&s, "user2").await;
    a.send_text(r#"{"id":"list"}"#).await;
    expect(&mut a, r#"{"id":"listResponse","list":["user1","user2"]}"#).await;
}

#[tokio::test]
async fn ping_gets_pong() {
    let s = server().await;
    let mut a = connect(&s).await;
    a.send_text(r#"{"id":"ping"}"#).await;
    expect(&mut a, r#"{"id":"pong"}"#).await;
}

#[tokio::test]
async fn call_to_unknown_user_is_rejected_with_a_message() {
    let s = server().await;
    let mut a = register(&s, "user1").await;
    a.send_text(&call("user1", "nobody")).await;
    expect(&mut a, r#"{"id":"callResponse","response":"rejected","message":"User not registered"}"#).await;
}

#[tokio::test]
async fn call_from_unknown_name_is_rejected_instead_of_crashing() {
    let s = server().await;
    let mut b = register(&s, "user2").await;
    let mut c = connect(&s).await;
    c.send_text(&call("ghost", "user2")).await;
    expect(&mut c, r#"{"id":"callResponse","response":"rejected","message":"User not registered"}"#).await;
    c.send_text(r#"{"id":"call"}"#).await;
    expect(&mut c, r#"{"id":"callResponse","response":"rejected","message":"User not registered"}"#).await;
    b.expect_silence(QUIET).await;
    // Still serving.
    let _d = register(&s, "user3").await;
}

#[tokio::test]
async fn caller_identity_comes_from_the_from_field() {
    let s = server().await;
    let mut a = register(&s, "user1").await;
    let mut b = register(&s, "user2").await;
    let mut c = connect(&s).await;
    // An unregistered socket calls as user1: user2 sees user1 calling...
    c.send_text(&call("user1", "user2")).await;
    expect(&mut b, &incoming("user1")).await;
    // ...and a rejection for user1's call goes to user1's socket.
    c.send_text(&call("user1", "nobody")).await;
    expect(&mut a, r#"{"id":"callResponse","response":"rejected","message":"User not registered"}"#).await;
    c.expect_silence(QUIET).await;
    // user1 is now linked to user2: its candidates flow there.
    let (send, got) = ice(1);
    a.send_text(&send).await;
    expect(&mut b, &got).await;
}

#[tokio::test]
async fn call_rejection_goes_back_to_the_callee() {
    let s = server().await;
    let (mut a, mut b) = calling(&s).await;
    b.send_text(r#"{"id":"incomingCallResponse","from":"user1","callResponse":"reject"}"#).await;
    expect(&mut b, r#"{"id":"callResponse","response":"rejected"}"#).await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn accept_from_unknown_caller_or_unregistered_callee_is_rejected_to_the_sender() {
    let s = server().await;
    let (mut a, mut b) = calling(&s).await;
    b.send_text(&format!(
        r#"{{"id":"incomingCallResponse","from":"ghost","callResponse":"accept","sdpOffer":{ANSWER}}}"#
    ))
    .await;
    expect(&mut b, r#"{"id":"callResponse","response":"rejected"}"#).await;
    let mut c = connect(&s).await;
    c.send_text(&format!(
        r#"{{"id":"incomingCallResponse","from":"user1","callResponse":"accept","sdpOffer":{ANSWER}}}"#
    ))
    .await;
    expect(&mut c, r#"{"id":"callResponse","response":"rejected"}"#).await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn accept_without_a_stored_offer_sends_start_communication_without_sdp() {
    let s = server().await;
    let mut a = register(&s, "user1").await;
    let mut b = register(&s, "user2").await;
    // user1 never called; user2 accepts anyway.
    b.send_text(&format!(
        r#"{{"id":"incomingCallResponse","from":"user1","callResponse":"accept","sdpOffer":{ANSWER}}}"#
    ))
    .await;
    expect(&mut a, &format!(r#"{{"id":"callResponse","response":"accepted","sdpAnswer":{ANSWER}}}"#)).await;
    expect(&mut b, r#"{"id":"startCommunication"}"#).await;
}

#[tokio::test]
async fn candidates_relay_at_once_along_the_link_set_at_call_time() {
    let s = server().await;
    let (mut a, mut b) = calling(&s).await;
    // Before any accept: both directions relay immediately, no queue.
    let (send, got) = ice(1);
    b.send_text(&send).await;
    expect(&mut a, &got).await;
    let (send, got) = ice(2);
    a.send_text(&send).await;
    expect(&mut b, &got).await;
}

#[tokio::test]
async fn candidates_before_call_are_dropped() {
    let s = server().await;
    let mut a = register(&s, "user1").await;
    let mut b = register(&s, "user2").await;
    let mut c = connect(&s).await;
    let (send, _) = ice(1);
    a.send_text(&send).await;
    c.send_text(&send).await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn busy_callee_link_is_overwritten() {
    let s = server().await;
    let (mut a, mut b) = calling(&s).await;
    let mut c = register(&s, "user3").await;
    c.send_text(&call("user3", "user2")).await;
    expect(&mut b, &incoming("user3")).await;
    let (send, got) = ice(1);
    b.send_text(&send).await;
    expect(&mut c, &got).await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn answer_message_reaches_the_peer_as_start_communication() {
    let s = server().await;
    let (mut a, mut b) = calling(&s).await;
    b.send_text(&format!(r#"{{"id":"answer","sdp":{ANSWER}}}"#)).await;
    expect(&mut a, &format!(r#"{{"id":"startCommunication","sdpAnswer":{ANSWER}}}"#)).await;
    let mut c = register(&s, "user3").await;
    c.send_text(&format!(r#"{{"id":"answer","sdp":{ANSWER}}}"#)).await;
    c.expect_silence(QUIET).await;
}

#[tokio::test]
async fn stop_is_a_no_op() {
    let s = server().await;
    let (mut a, mut b) = calling(&s).await;
    a.send_text(r#"{"id":"stop"}"#).await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
    // The link survives a stop.
    let (send, got) = ice(1);
    a.send_text(&send).await;
    expect(&mut b, &got).await;
}

#[tokio::test]
async fn unknown_ids_and_bad_json_are_ignored_instead_of_crashing() {
    let s = server().await;
    let mut a = register(&s, "user1").await;
    for bad in ["not json", "null", "[1]", "{}", r#"{"id":"nope"}"#, r#"{"id":5}"#, r#"{"id":"register","name":"#] {
        a.send_text(bad).await;
    }
    a.expect_silence(QUIET).await;
    a.send_text(r#"{"id":"ping"}"#).await;
    expect(&mut a, r#"{"id":"pong"}"#).await;
}

#[tokio::test]
async fn disconnect_tells_nobody_and_frees_the_name() {
    let s = server().await;
    let (a, mut b) = calling(&s).await;
    a.drop_abruptly().await;
    b.expect_silence(QUIET).await;
    let mut c = connect(&s).await;
    let mut freed = false;
    for _ in 0..500 {
        c.send_text(r#"{"id":"register","name":"user1"}"#).await;
        if c.recv_text().await == r#"{"id":"registerResponse","response":"accepted"}"# {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(freed, "user1 was never freed after its connection dropped");
    // Quirk: user2's link still names user1, so it now reaches the newcomer.
    let (send, got) = ice(7);
    b.send_text(&send).await;
    expect(&mut c, &got).await;
}

/// Sends a raw HTTP/1.1 request and returns the whole response text.
async fn http(s: &TestServer, path: &str, extra_headers: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(s.addr(0)).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(common::WAIT, tcp.read_to_end(&mut buf)).await.expect("response in time").expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

const UPGRADE: &str =
    "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

#[tokio::test]
async fn call_path_accepts_a_query_string() {
    let s = server().await;
    let mut c = Client::connect(&s.ws_url("/call?x=1")).await;
    c.send_text(r#"{"id":"ping"}"#).await;
    expect(&mut c, r#"{"id":"pong"}"#).await;
}

#[tokio::test]
async fn other_upgrade_paths_are_refused_with_a_clear_error() {
    let s = server().await;
    for path in ["/", "/ws", "/call/x", "/healthz"] {
        let resp = http(&s, path, &format!("Connection: Upgrade\r\n{UPGRADE}")).await;
        assert!(resp.starts_with("HTTP/1.1 404"), "{path}: {resp}");
        assert!(resp.contains("/call"), "{path}: {resp}");
    }
}

#[tokio::test]
async fn static_files_are_served_at_the_root() {
    let dir = std::env::temp_dir().join(format!("sb-one2one-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("js")).expect("temp dir");
    std::fs::write(dir.join("index.html"), "<p>one2one page</p>").expect("write");
    std::fs::write(dir.join("js/main.js"), "// main").expect("write");
    let mut config = Config::single(DialectKind::One2one, "127.0.0.1:0".parse().expect("addr"));
    config.listeners[0].static_dir = Some(dir.clone());
    let s = TestServer::start(config).await;
    let index = http(&s, "/", "").await;
    assert!(index.starts_with("HTTP/1.1 200") && index.contains("<p>one2one page</p>"), "{index}");
    let js = http(&s, "/js/main.js", "").await;
    assert!(js.starts_with("HTTP/1.1 200") && js.contains("// main"), "{js}");
    let mut c = Client::connect(&s.ws_url("/call")).await;
    c.send_text(r#"{"id":"ping"}"#).await;
    expect(&mut c, r#"{"id":"pong"}"#).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn without_static_the_root_explains_how_to_serve_the_app() {
    let s = server().await;
    let resp = http(&s, "/", "").await;
    assert!(resp.starts_with("HTTP/1.1 404") && resp.contains("--static"), "{resp}");
}

#[test]
fn default_listen_uses_each_originals_port_and_one2one_honours_port() {
    let addr = |d, p: Option<&str>| default_listen(d, p).expect("valid").to_string();
    assert_eq!(addr(DialectKind::Basic, None), "127.0.0.1:8888");
    assert_eq!(addr(DialectKind::One2one, None), "127.0.0.1:8000");
    assert_eq!(addr(DialectKind::One2one, Some("9123")), "127.0.0.1:9123");
    assert_eq!(addr(DialectKind::Native, None), "127.0.0.1:8080");
    assert_eq!(addr(DialectKind::Native, Some("9123")), "127.0.0.1:8080");
    assert_eq!(addr(DialectKind::Basic, Some("9123")), "127.0.0.1:8888");
    let err = default_listen(DialectKind::One2one, Some("eighty")).expect_err("not a port");
    assert!(err.to_string().contains("PORT"), "{err}");
}

#[tokio::test]
async fn refusals_and_bad_json_are_counted_in_metrics() {
    let s = server().await;
    let mut a = register(&s, "user1").await;
    a.send_text(r#"{"id":"register","name":"user1"}"#).await;
    expect(&mut a, r#"{"id":"registerResponse","response":"rejected"}"#).await;
    a.send_text(&call("user1", "nobody")).await;
    expect(&mut a, r#"{"id":"callResponse","response":"rejected","message":"User not registered"}"#).await;
    a.send_text("not json").await;
    assert_eq!(s.metric(r#"switchboard_errors_total{code="name_taken"}"#).await, 1.0);
    assert_eq!(s.metric(r#"switchboard_errors_total{code="unknown_peer"}"#).await, 1.0);
    s.wait_metric(r#"switchboard_errors_total{code="bad_json"}"#, |v| v == 1.0).await;
}
