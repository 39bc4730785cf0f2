//! Authentication of each demo dialect over real sockets, with the token
//! where that dialect's unchanged client can carry it (docs/dialects/):
//! valid, missing, wrong signature, expired, and a name outside the token
//! refused with the dialect's own error. Plus the PeerJS HTTP endpoints,
//! whose key carries the token.

mod common;
mod eio;

use common::auth::{self, connect, expired, get, refused, token, wrong_signature};
use common::{Client, TestServer, WAIT, expect_exact};
use eio::Polling;
use switchboard::Config;
use switchboard::dialect::DialectKind;

async fn server(dialect: DialectKind, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::single(dialect, "127.0.0.1:0".parse().expect("addr"));
    auth::on(&mut config);
    tweak(&mut config);
    TestServer::start(config).await
}

fn cookie(token: &str) -> String {
    format!("switchboard_token={token}")
}

/// Connects with the token in the cookie and expects admission.
async fn with_cookie(server: &TestServer, path: &str, token: &str) -> Client {
    connect(&server.ws_url(path), &[("Cookie", &cookie(token))]).await.expect("admitted")
}

// basic: the page hard-codes its socket URL; a cookie is what it can carry.

#[tokio::test]
async fn basic_valid_token_logs_in_as_its_subject() {
    let server = server(DialectKind::Basic, |_| {}).await;
    let mut c = with_cookie(&server, "/", &token("alice", &[])).await;
    c.send_text(r#"{"type":"login","name":"alice"}"#).await;
    expect_exact(&mut c, r#"{"type":"login","success":true}"#).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn basic_missing_token_is_refused() {
    let server = server(DialectKind::Basic, |_| {}).await;
    refused(&server.ws_url("/"), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn basic_wrong_signature_is_refused() {
    let server = server(DialectKind::Basic, |_| {}).await;
    refused(&server.ws_url("/"), &[("Cookie", &cookie(&wrong_signature("alice")))], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn basic_expired_token_is_refused() {
    let server = server(DialectKind::Basic, |_| {}).await;
    refused(&server.ws_url("/"), &[("Cookie", &cookie(&expired("alice")))], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn basic_login_outside_the_token_is_refused_as_a_login() {
    let server = server(DialectKind::Basic, |_| {}).await;
    let mut c = with_cookie(&server, "/", &token("alice", &[])).await;
    c.send_text(r#"{"type":"login","name":"bob"}"#).await;
    expect_exact(&mut c, r#"{"type":"login","success":false}"#).await;
    server.running.shutdown().await;
}

// one2one: the page derives /call from its own address; a cookie again.

#[tokio::test]
async fn one2one_valid_token_registers_its_subject() {
    let server = server(DialectKind::One2one, |_| {}).await;
    let mut c = with_cookie(&server, "/call", &token("alice", &[])).await;
    c.send_text(r#"{"id":"register","name":"alice"}"#).await;
    expect_exact(&mut c, r#"{"id":"registerResponse","response":"accepted"}"#).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn one2one_missing_token_is_refused() {
    let server = server(DialectKind::One2one, |_| {}).await;
    refused(&server.ws_url("/call"), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn one2one_wrong_signature_is_refused() {
    let server = server(DialectKind::One2one, |_| {}).await;
    refused(&server.ws_url("/call"), &[("Cookie", &cookie(&wrong_signature("alice")))], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn one2one_expired_token_is_refused() {
    let server = server(DialectKind::One2one, |_| {}).await;
    refused(&server.ws_url("/call"), &[("Cookie", &cookie(&expired("alice")))], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn one2one_register_outside_the_token_is_rejected() {
    let server = server(DialectKind::One2one, |_| {}).await;
    let mut c = with_cookie(&server, "/call", &token("alice", &[])).await;
    c.send_text(r#"{"id":"register","name":"bob"}"#).await;
    expect_exact(&mut c, r#"{"id":"registerResponse","response":"rejected"}"#).await;
    server.running.shutdown().await;
}

// flutter: the app connects to the server URL it is given; the query.

fn flutter_url(server: &TestServer, token: &str) -> String {
    server.ws_url(&format!("/ws?access_token={token}"))
}

#[tokio::test]
async fn flutter_valid_token_lists_its_subject() {
    let server = server(DialectKind::Flutter, |_| {}).await;
    let mut c = connect(&flutter_url(&server, &token("42", &[])), &[]).await.expect("admitted");
    c.send_text(r#"{"type":"new","data":{"id":"42","username":"alice"}}"#).await;
    expect_exact(&mut c, r#"{"type":"peers","data":[{"id":"42","username":"alice"}]}"#).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn flutter_missing_token_is_refused() {
    let server = server(DialectKind::Flutter, |_| {}).await;
    refused(&server.ws_url("/ws"), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn flutter_wrong_signature_is_refused() {
    let server = server(DialectKind::Flutter, |_| {}).await;
    refused(&flutter_url(&server, &wrong_signature("42")), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn flutter_expired_token_is_refused() {
    let server = server(DialectKind::Flutter, |_| {}).await;
    refused(&flutter_url(&server, &expired("42")), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn flutter_id_outside_the_token_gets_an_error_and_is_not_listed() {
    let server = server(DialectKind::Flutter, |_| {}).await;
    let mut mallory = connect(&flutter_url(&server, &token("66", &[])), &[]).await.expect("admitted");
    mallory.send_text(r#"{"type":"new","data":{"id":"42","username":"alice"}}"#).await;
    let reason = "your access token does not allow the name '42'; use the name it was issued for";
    expect_exact(&mut mallory, &format!(r#"{{"type":"error","data":{{"reason":"{reason}"}}}}"#)).await;
    let mut alice = connect(&flutter_url(&server, &token("42", &[])), &[]).await.expect("admitted");
    alice.send_text(r#"{"type":"new","data":{"id":"42","username":"alice"}}"#).await;
    expect_exact(&mut alice, r#"{"type":"peers","data":[{"id":"42","username":"alice"}]}"#).await;
    server.running.shutdown().await;
}

// peerjs: the client's `key` option is the one thing it sends everywhere.

fn peerjs_url(server: &TestServer, key: &str, id: &str) -> String {
    server.ws_url(&format!("/peerjs?key={key}&id={id}&token=tab1&version=1.5.5"))
}

#[tokio::test]
async fn peerjs_valid_token_as_key_opens_its_subject() {
    let server = server(DialectKind::Peerjs, |_| {}).await;
    let mut c = connect(&peerjs_url(&server, &token("alice", &[]), "alice"), &[]).await.expect("admitted");
    expect_exact(&mut c, r#"{"type":"OPEN"}"#).await;
    // The server's own key still works with the token elsewhere (a cookie).
    let mut c = connect(&peerjs_url(&server, "peerjs", "bob"), &[("Cookie", &cookie(&token("bob", &[])))])
        .await
        .expect("admitted");
    expect_exact(&mut c, r#"{"type":"OPEN"}"#).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn peerjs_missing_token_is_refused() {
    let server = server(DialectKind::Peerjs, |_| {}).await;
    refused(&peerjs_url(&server, "peerjs", "alice"), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn peerjs_wrong_signature_is_refused() {
    let server = server(DialectKind::Peerjs, |_| {}).await;
    refused(&peerjs_url(&server, &wrong_signature("alice"), "alice"), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn peerjs_expired_token_is_refused() {
    let server = server(DialectKind::Peerjs, |_| {}).await;
    refused(&peerjs_url(&server, &expired("alice"), "alice"), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn peerjs_id_outside_the_token_gets_an_error_frame_and_the_close() {
    let server = server(DialectKind::Peerjs, |_| {}).await;
    // alice drops without a close: her id waits for her (another PeerJS
    // token could take it over), but not for a client whose access token
    // is someone else's.
    let mut alice = connect(&peerjs_url(&server, &token("alice", &[]), "alice"), &[]).await.expect("admitted");
    expect_exact(&mut alice, r#"{"type":"OPEN"}"#).await;
    alice.drop_abruptly().await;
    let hub = &server.running.hub;
    let away = || hub.read(|h| h.lookup(server.running.spaces[0], "alice").is_some_and(|p| h.is_away(p)));
    tokio::time::timeout(WAIT, async {
        while !away() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("alice is away");
    let url = server.ws_url(&format!("/peerjs?key={}&id=alice&token=tab2", token("mallory", &[])));
    let mut mallory = connect(&url, &[]).await.expect("admitted");
    let msg = "your access token does not allow the name 'alice'; use the name it was issued for";
    expect_exact(&mut mallory, &format!(r#"{{"type":"ERROR","payload":{{"msg":"{msg}"}}}}"#)).await;
    assert_eq!(mallory.recv_close().await, (1008, "registration refused".to_string()));
    assert!(away(), "alice's id still waits for her");
    assert_eq!(hub.read(|h| h.census().peers), 1, "the refused client left no peer behind");
    server.running.shutdown().await;
}

#[tokio::test]
async fn peerjs_id_endpoint_hands_out_the_tokens_subject() {
    let server = server(DialectKind::Peerjs, |_| {}).await;
    let addr = server.addr(0);
    assert_eq!(get(addr, &format!("/{}/id", token("alice", &[])), &[]).await, (200, "alice".to_string()), "valid");
    assert_eq!(get(addr, "/peerjs/id", &[]).await.0, 401, "missing");
    assert_eq!(get(addr, &format!("/{}/id", wrong_signature("alice")), &[]).await.0, 401, "wrong signature");
    assert_eq!(get(addr, &format!("/{}/id", expired("alice")), &[]).await.0, 401, "expired");
    server.running.shutdown().await;
}

#[tokio::test]
async fn peerjs_peer_list_needs_a_valid_token() {
    let server = server(DialectKind::Peerjs, |c| c.peerjs.allow_discovery = true).await;
    let alice = token("alice", &[]);
    let mut c = connect(&peerjs_url(&server, &alice, "alice"), &[]).await.expect("admitted");
    expect_exact(&mut c, r#"{"type":"OPEN"}"#).await;
    let addr = server.addr(0);
    assert_eq!(get(addr, &format!("/{alice}/peers"), &[]).await, (200, r#"["alice"]"#.to_string()), "valid");
    assert_eq!(get(addr, "/peerjs/peers", &[]).await.0, 401, "missing");
    assert_eq!(get(addr, &format!("/{}/peers", wrong_signature("a")), &[]).await.0, 401, "wrong signature");
    assert_eq!(get(addr, &format!("/{}/peers", expired("a")), &[]).await.0, 401, "expired");
    server.running.shutdown().await;
}

// offers: socket.io's handshake `auth` carries `token` beside userName and password.

fn offers_auth(user: &str, token: Option<&str>) -> String {
    match token {
        Some(t) => format!(r#"{{"userName":"{user}","password":"x","token":"{t}"}}"#),
        None => format!(r#"{{"userName":"{user}","password":"x"}}"#),
    }
}

/// Opens a polling session and sends CONNECT with `auth`; returns the answer.
async fn offers_connect(server: &TestServer, extra_query: &str, auth: &str) -> String {
    let (mut p, _) = Polling::open_with(server.addr(0), extra_query).await;
    p.send(&[&format!("40{auth}")]).await;
    p.next().await
}

async fn offers_refused(server: &TestServer, auth: &str) -> String {
    let answer = offers_connect(server, "", auth).await;
    assert!(answer.starts_with(r#"44{"message":"#), "connect_error: {answer}");
    answer
}

#[tokio::test]
async fn offers_valid_token_in_auth_connects() {
    let server = server(DialectKind::Offers, |_| {}).await;
    let answer = offers_connect(&server, "", &offers_auth("Rob", Some(&token("Rob", &[])))).await;
    assert!(answer.starts_with(r#"40{"sid":"#), "CONNECT ack: {answer}");
    // An unchanged client can carry it in the handshake's query instead.
    let answer =
        offers_connect(&server, &format!("&access_token={}", token("Ann", &[])), &offers_auth("Ann", None)).await;
    assert!(answer.starts_with(r#"40{"sid":"#), "CONNECT ack: {answer}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn offers_missing_token_is_a_connect_error() {
    let server = server(DialectKind::Offers, |_| {}).await;
    let answer = offers_refused(&server, &offers_auth("Rob", None)).await;
    assert!(answer.contains("requires an access token"), "{answer}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn offers_wrong_signature_is_a_connect_error() {
    let server = server(DialectKind::Offers, |_| {}).await;
    offers_refused(&server, &offers_auth("Rob", Some(&wrong_signature("Rob")))).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn offers_expired_token_is_a_connect_error() {
    let server = server(DialectKind::Offers, |_| {}).await;
    let answer = offers_refused(&server, &offers_auth("Rob", Some(&expired("Rob")))).await;
    assert!(answer.contains("expired"), "{answer}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn offers_user_name_outside_the_token_is_a_connect_error() {
    let server = server(DialectKind::Offers, |_| {}).await;
    let answer = offers_refused(&server, &offers_auth("Rob", Some(&token("Ann", &[])))).await;
    assert!(answer.contains("'Rob'"), "{answer}");
    assert!(server.running.hub.read(|h| h.census().peers) == 0, "the refused socket left no peer");
    server.running.shutdown().await;
}
