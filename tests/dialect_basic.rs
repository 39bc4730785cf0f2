//! `basic` dialect transcripts over real sockets: every exchange of
//! protocols.md §1.2, its quirks, the original's crash cases answered
//! safely, and disconnect behaviour. Frames are compared as exact text.

mod common;

use std::time::Duration;

use common::samples::{ANSWER, CANDIDATE, OFFER};
use common::{Client, TestServer, expect_exact as expect};
use switchboard::Config;
use switchboard::dialect::DialectKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const QUIET: Duration = Duration::from_millis(300);
async fn server() -> TestServer {
    TestServer::start(Config::single(DialectKind::Basic, "127.0.0.1:0".parse().expect("addr"))).await
}

async fn connect(s: &TestServer) -> Client {
    Client::connect(&s.ws_url("/")).await
}

async fn login(s: &TestServer, name: &str) -> Client {
    let mut c = connect(s).await;
    c.send_text(&format!(r#"{{"type":"login","name":"{name}"}}"#)).await;
    expect(&mut c, r#"{"type":"login","success":true}"#).await;
    c
}

/// alice offers to bob; both have their frames read.
async fn offered(s: &TestServer) -> (Client, Client) {
    let mut a = login(s, "alice").await;
    let mut b = login(s, "bob").await;
    a.send_text(&format!(r#"{{"type":"offer","offer":{OFFER},"name":"bob"}}"#)).await;
    expect(&mut b, &format!(r#"{{"type":"offer","offer":{OFFER},"name":"alice"}}"#)).await;
    (a, b)
}

#[tokio::test]
async fn example_exchange_from_the_spec() {
    let s = server().await;
    let (mut a, mut b) = offered(&s).await;
    b.send_text(&format!(r#"{{"type":"answer","answer":{ANSWER},"name":"alice"}}"#)).await;
    expect(&mut a, &format!(r#"{{"type":"answer","answer":{ANSWER}}}"#)).await;
    a.send_text(&format!(r#"{{"type":"candidate","candidate":{CANDIDATE},"name":"bob"}}"#)).await;
    expect(&mut b, &format!(r#"{{"type":"candidate","candidate":{CANDIDATE}}}"#)).await;
    b.send_text(&format!(r#"{{"type":"candidate","candidate":{CANDIDATE},"name":"alice"}}"#)).await;
    expect(&mut a, &format!(r#"{{"type":"candidate","candidate":{CANDIDATE}}}"#)).await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn login_refuses_a_taken_name() {
    let s = server().await;
    let _a = login(&s, "alice").await;
    let mut b = connect(&s).await;
    b.send_text(r#"{"type":"login","name":"alice"}"#).await;
    expect(&mut b, r#"{"type":"login","success":false}"#).await;
}

#[tokio::test]
async fn login_twice_with_the_same_name_is_refused() {
    let s = server().await;
    let mut a = login(&s, "alice").await;
    a.send_text(r#"{"type":"login","name":"alice"}"#).await;
    expect(&mut a, r#"{"type":"login","success":false}"#).await;
}

#[tokio::test]
async fn one_connection_may_log_in_under_several_names() {
    let s = server().await;
    let mut a = login(&s, "alice").await;
    a.send_text(r#"{"type":"login","name":"alice2"}"#).await;
    expect(&mut a, r#"{"type":"login","success":true}"#).await;
    let mut b = login(&s, "bob").await;
    // Both names reach the same connection.
    b.send_text(r#"{"type":"candidate","candidate":{"c":1},"name":"alice"}"#).await;
    expect(&mut a, r#"{"type":"candidate","candidate":{"c":1}}"#).await;
    b.send_text(r#"{"type":"candidate","candidate":{"c":2},"name":"alice2"}"#).await;
    expect(&mut a, r#"{"type":"candidate","candidate":{"c":2}}"#).await;
    // The latest login is the name its relays carry.
    a.send_text(&format!(r#"{{"type":"offer","offer":{OFFER},"name":"bob"}}"#)).await;
    expect(&mut b, &format!(r#"{{"type":"offer","offer":{OFFER},"name":"alice2"}}"#)).await;
}

#[tokio::test]
async fn answer_relay_omits_sender_name() {
    let s = server().await;
    let (mut a, mut b) = offered(&s).await;
    b.send_text(r#"{"type":"answer","answer":{"type":"answer","sdp":"x"},"name":"alice"}"#).await;
    let got = a.recv_text().await;
    assert_eq!(got, r#"{"type":"answer","answer":{"type":"answer","sdp":"x"}}"#);
    assert!(!got.contains("bob"), "the answer must not name its sender: {got}");
}

#[tokio::test]
async fn offer_before_login_omits_the_sender_name() {
    let s = server().await;
    let mut b = login(&s, "bob").await;
    let mut anon = connect(&s).await;
    anon.send_text(&format!(r#"{{"type":"offer","offer":{OFFER},"name":"bob"}}"#)).await;
    expect(&mut b, &format!(r#"{{"type":"offer","offer":{OFFER}}}"#)).await;
}

#[tokio::test]
async fn busy_callee_still_gets_a_second_offer() {
    let s = server().await;
    let (_a, mut b) = offered(&s).await;
    let mut c = login(&s, "carol").await;
    c.send_text(&format!(r#"{{"type":"offer","offer":{OFFER},"name":"bob"}}"#)).await;
    expect(&mut b, &format!(r#"{{"type":"offer","offer":{OFFER},"name":"carol"}}"#)).await;
    c.expect_silence(QUIET).await;
}

#[tokio::test]
async fn unknown_target_is_silently_dropped() {
    let s = server().await;
    let mut a = login(&s, "alice").await;
    for ty in ["offer", "answer", "candidate"] {
        a.send_text(&format!(r#"{{"type":"{ty}","{ty}":{{}},"name":"nobody"}}"#)).await;
    }
    a.send_text(r#"{"type":"candidate","candidate":{}}"#).await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn leave_to_unknown_target_is_ignored_instead_of_crashing() {
    let s = server().await;
    let mut a = login(&s, "alice").await;
    a.send_text(r#"{"type":"leave","name":"nobody"}"#).await;
    a.send_text(r#"{"type":"leave"}"#).await;
    a.expect_silence(QUIET).await;
    // The server is still up and serving.
    let _b = login(&s, "bob").await;
}

#[tokio::test]
async fn message_to_unknown_target_is_ignored_instead_of_crashing() {
    let s = server().await;
    let mut a = login(&s, "alice").await;
    a.send_text(r#"{"type":"message","name":"nobody","message":"hi"}"#).await;
    // The client's chat without a peer targets the literal name "name".
    a.send_text(r#"{"type":"message","name":"name","message":"hi"}"#).await;
    a.expect_silence(QUIET).await;
    let _b = login(&s, "bob").await;
}

#[tokio::test]
async fn message_relays_text_and_sender_name() {
    let s = server().await;
    let mut a = login(&s, "alice").await;
    let mut b = login(&s, "bob").await;
    a.send_text(r#"{"type":"message","name":"bob","message":"hello \"bob\""}"#).await;
    expect(&mut b, r#"{"type":"message","message":"hello \"bob\"","name":"alice"}"#).await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn leave_relays_a_bare_leave() {
    let s = server().await;
    let (mut a, mut b) = offered(&s).await;
    a.send_text(r#"{"type":"leave","name":"bob"}"#).await;
    expect(&mut b, r#"{"type":"leave"}"#).await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn leave_keeps_the_senders_own_link() {
    let s = server().await;
    let (mut a, mut b) = offered(&s).await;
    a.send_text(r#"{"type":"leave","name":"bob"}"#).await;
    expect(&mut b, r#"{"type":"leave"}"#).await;
    // alice's otherName is still bob: her disconnect tells him again.
    a.drop_abruptly().await;
    expect(&mut b, r#"{"type":"leave"}"#).await;
}

#[tokio::test]
async fn leave_clears_the_targets_link_so_its_disconnect_is_silent() {
    let s = server().await;
    let (mut a, mut b) = offered(&s).await;
    b.send_text(&format!(r#"{{"type":"answer","answer":{ANSWER},"name":"alice"}}"#)).await;
    expect(&mut a, &format!(r#"{{"type":"answer","answer":{ANSWER}}}"#)).await;
    a.send_text(r#"{"type":"leave","name":"bob"}"#).await;
    expect(&mut b, r#"{"type":"leave"}"#).await;
    b.drop_abruptly().await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn message_clears_the_targets_link_so_its_disconnect_is_silent() {
    let s = server().await;
    let (mut a, mut b) = offered(&s).await;
    b.send_text(&format!(r#"{{"type":"answer","answer":{ANSWER},"name":"alice"}}"#)).await;
    expect(&mut a, &format!(r#"{{"type":"answer","answer":{ANSWER}}}"#)).await;
    a.send_text(r#"{"type":"message","name":"bob","message":"bye"}"#).await;
    expect(&mut b, r#"{"type":"message","message":"bye","name":"alice"}"#).await;
    b.drop_abruptly().await;
    a.expect_silence(QUIET).await;
}

#[tokio::test]
async fn disconnect_sends_leave_to_the_peer_offered_to() {
    let s = server().await;
    let (a, mut b) = offered(&s).await;
    a.drop_abruptly().await;
    expect(&mut b, r#"{"type":"leave"}"#).await;
}

#[tokio::test]
async fn disconnect_sends_leave_to_the_peer_answered() {
    let s = server().await;
    let (mut a, b) = offered(&s).await;
    let mut b = b;
    b.send_text(&format!(r#"{{"type":"answer","answer":{ANSWER},"name":"alice"}}"#)).await;
    expect(&mut a, &format!(r#"{{"type":"answer","answer":{ANSWER}}}"#)).await;
    b.ws.close(None).await.expect("close");
    expect(&mut a, r#"{"type":"leave"}"#).await;
}

// The original sends one `leave` per message the closing client had sent; no
// client depends on the repeats, so we deliberately send exactly one.
#[tokio::test]
async fn leave_sent_once_on_disconnect_not_once_per_message_sent() {
    let s = server().await;
    let (mut a, mut b) = offered(&s).await;
    for i in 0..4 {
        a.send_text(&format!(r#"{{"type":"candidate","candidate":{{"n":{i}}},"name":"bob"}}"#)).await;
        expect(&mut b, &format!(r#"{{"type":"candidate","candidate":{{"n":{i}}}}}"#)).await;
    }
    a.drop_abruptly().await;
    expect(&mut b, r#"{"type":"leave"}"#).await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn disconnect_without_offer_or_answer_tells_nobody() {
    let s = server().await;
    let a = login(&s, "alice").await;
    let mut b = login(&s, "bob").await;
    let mut a = a;
    a.send_text(r#"{"type":"candidate","candidate":{},"name":"bob"}"#).await;
    expect(&mut b, r#"{"type":"candidate","candidate":{}}"#).await;
    a.drop_abruptly().await;
    b.expect_silence(QUIET).await;
}

#[tokio::test]
async fn disconnect_frees_every_name() {
    let s = server().await;
    let mut a = login(&s, "alice").await;
    a.send_text(r#"{"type":"login","name":"alice2"}"#).await;
    expect(&mut a, r#"{"type":"login","success":true}"#).await;
    a.drop_abruptly().await;
    // The name is free once the server has seen the drop.
    for name in ["alice", "alice2"] {
        let mut c = connect(&s).await;
        let mut freed = false;
        for _ in 0..500 {
            c.send_text(&format!(r#"{{"type":"login","name":"{name}"}}"#)).await;
            if c.recv_text().await == r#"{"type":"login","success":true}"# {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(freed, "{name} was never freed after its connection dropped");
    }
}

#[tokio::test]
async fn unknown_type_gets_unrecognized_command_error() {
    let s = server().await;
    let mut a = connect(&s).await;
    let cases = [
        (r#"{"type":"hello"}"#, "Unrecognized command: hello"),
        (r#"{"type":"Login","name":"x"}"#, "Unrecognized command: Login"),
        (r#"{"type":5}"#, "Unrecognized command: 5"),
        (r#"{"type":null}"#, "Unrecognized command: null"),
        (r#"{"name":"x"}"#, "Unrecognized command: undefined"),
        ("{}", "Unrecognized command: undefined"),
        // Invalid JSON is treated as {}.
        ("not json", "Unrecognized command: undefined"),
        // `null` crashes the original (null.type); we answer as for {}.
        ("null", "Unrecognized command: undefined"),
        ("[1,2]", "Unrecognized command: undefined"),
    ];
    for (sent, message) in cases {
        a.send_text(sent).await;
        expect(&mut a, &format!(r#"{{"type":"error","message":"{message}"}}"#)).await;
    }
}

#[tokio::test]
async fn any_path_upgrades() {
    let s = server().await;
    for path in ["/", "/ws", "/some/deep/path?x=1", "/healthz"] {
        let mut c = Client::connect(&s.ws_url(path)).await;
        c.send_text(r#"{"type":"nope"}"#).await;
        expect(&mut c, r#"{"type":"error","message":"Unrecognized command: nope"}"#).await;
    }
}

/// Sends a raw HTTP/1.1 GET and returns the whole response text.
async fn http_get(s: &TestServer, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(s.addr(0)).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(common::WAIT, tcp.read_to_end(&mut buf)).await.expect("response in time").expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn plain_http_without_static_gets_a_hint() {
    let s = server().await;
    let resp = http_get(&s, "/").await;
    assert!(resp.starts_with("HTTP/1.1 426"), "{resp}");
    assert!(resp.contains("connect a WebSocket"), "{resp}");
    let health = http_get(&s, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[tokio::test]
async fn plain_http_with_static_serves_files() {
    let dir = std::env::temp_dir().join(format!("sb-basic-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("index.html"), "<p>basic page</p>").expect("write");
    let mut config = Config::single(DialectKind::Basic, "127.0.0.1:0".parse().expect("addr"));
    config.listeners[0].static_dir = Some(dir.clone());
    let s = TestServer::start(config).await;
    let resp = http_get(&s, "/").await;
    assert!(resp.starts_with("HTTP/1.1 200") && resp.contains("<p>basic page</p>"), "{resp}");
    // The same path still upgrades.
    let mut c = Client::connect(&s.ws_url("/")).await;
    c.send_text(r#"{"type":"login","name":"x"}"#).await;
    expect(&mut c, r#"{"type":"login","success":true}"#).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn refusals_are_counted_in_metrics() {
    let s = server().await;
    let _a = login(&s, "alice").await;
    let mut b = connect(&s).await;
    b.send_text(r#"{"type":"login","name":"alice"}"#).await;
    expect(&mut b, r#"{"type":"login","success":false}"#).await;
    b.send_text("not json").await;
    expect(&mut b, r#"{"type":"error","message":"Unrecognized command: undefined"}"#).await;
    assert_eq!(s.metric(r#"switchboard_errors_total{code="name_taken"}"#).await, 1.0);
    assert_eq!(s.metric(r#"switchboard_errors_total{code="unknown_type"}"#).await, 1.0);
}
