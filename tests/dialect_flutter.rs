//! The `flutter` dialect (VertexChat, protocols.md §4) over real sockets:
//! each exchange of the spec replayed with the exact JSON each side gets.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Client, TestServer};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use switchboard::Config;
use switchboard::config::{ListenerConfig, ServeArgs};
use switchboard::dialect::DialectKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

const QUIET: Duration = Duration::from_millis(300);

const ALICE_NEW: &str =
    r#"{"type":"new","data":{"device_name":"Chrome","id":"42","username":"alice","user_agent":"Mozilla/5.0 A"}}"#;
const BOB_NEW: &str =
    r#"{"type":"new","data":{"device_name":"Pixel","id":"43","username":"bob","user_agent":"Mozilla/5.0 B"}}"#;
const ALICE: &str = r#"{"id":"42","device_name":"Chrome","username":"alice","user_agent":"Mozilla/5.0 A"}"#;
const BOB: &str = r#"{"id":"43","device_name":"Pixel","username":"bob","user_agent":"Mozilla/5.0 B"}"#;
const OFFER: &str = r#"{"type":"offer","data":{"to":"43","id":"42","description":{"sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n","type":"offer"},"session_id":"42-43","media":"video"}}"#;

async fn server() -> TestServer {
    TestServer::start(Config::single(DialectKind::Flutter, "127.0.0.1:0".parse().unwrap())).await
}

fn peers(list: &[&str]) -> String {
    format!(r#"{{"type":"peers","data":[{}]}}"#, list.join(","))
}

async fn connect(server: &TestServer) -> Client {
    Client::connect(&server.ws_url("/ws")).await
}

/// Alice then Bob send `new`; every list they get is checked on the way.
async fn alice_and_bob(server: &TestServer) -> (Client, Client) {
    let mut alice = connect(server).await;
    alice.send_text(ALICE_NEW).await;
    assert_eq!(alice.recv_text().await, peers(&[ALICE]));
    let mut bob = connect(server).await;
    bob.send_text(BOB_NEW).await;
    assert_eq!(bob.recv_text().await, peers(&[ALICE, BOB]));
    assert_eq!(alice.recv_text().await, peers(&[ALICE, BOB]));
    (alice, bob)
}

#[tokio::test]
async fn new_sends_the_peers_list_to_everyone_listed_including_the_sender() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    let mut carol = connect(&server).await;
    carol.send_text(r#"{"type":"new","data":{"id":"44","username":"carol"}}"#).await;
    let all = peers(&[ALICE, BOB, r#"{"id":"44","username":"carol"}"#]);
    assert_eq!(carol.recv_text().await, all);
    assert_eq!(alice.recv_text().await, all);
    assert_eq!(bob.recv_text().await, all);
    server.running.shutdown().await;
}

#[tokio::test]
async fn profile_lists_only_the_four_fields_in_order_and_omits_absent_ones() {
    let server = server().await;
    let mut old = connect(&server).await;
    // The earlier client sent `name`; the original lists only the four fields.
    old.send_text(r#"{"type":"new","data":{"user_agent":"UA","name":"Old","extra":1,"id":"7","device_name":null}}"#)
        .await;
    assert_eq!(old.recv_text().await, peers(&[r#"{"id":"7","device_name":null,"user_agent":"UA"}"#]));
    server.running.shutdown().await;
}

#[tokio::test]
async fn offer_answer_and_candidates_are_forwarded_whole_and_unchanged() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_text(OFFER).await;
    assert_eq!(bob.recv_text().await, OFFER);
    let candidate = r#"{"type":"candidate","data":{"to":"43","id":"42","candidate":{"sdpMLineIndex":0,"sdpMid":"0","candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"},"session_id":"42-43"}}"#;
    alice.send_text(candidate).await;
    assert_eq!(bob.recv_text().await, candidate);
    let answer = r#"{"type":"answer","data":{"to":"42","id":"43","description":{"sdp":"v=0\r\n","type":"answer"},"session_id":"42-43"}}"#;
    bob.send_text(answer).await;
    assert_eq!(alice.recv_text().await, answer);
    let back = candidate.replace(r#""to":"43","id":"42""#, r#""to":"42","id":"43""#);
    bob.send_text(&back).await;
    assert_eq!(alice.recv_text().await, back);
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn forwarding_drops_whitespace_like_the_originals_reserialization() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_text("{ \"type\": \"offer\",\n \"data\": { \"to\": \"43\", \"note\": \"a b\\\" c\" } }").await;
    assert_eq!(bob.recv_text().await, r#"{"type":"offer","data":{"to":"43","note":"a b\" c"}}"#);
    alice.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn unknown_to_is_silently_dropped() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_text(&OFFER.replace(r#""to":"43""#, r#""to":"99""#)).await;
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn missing_or_empty_to_gets_peer_to_id_not_found() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    for offer in [
        r#"{"type":"offer","data":{"id":"42","session_id":"42-43"}}"#,
        r#"{"type":"answer","data":{"to":"","id":"42"}}"#,
        r#"{"type":"candidate","data":{"to":null}}"#,
        r#"{"type":"offer"}"#,
    ] {
        alice.send_text(offer).await;
        assert_eq!(alice.recv_text().await, r#"{"type":"error","data":"Peer to id not found"}"#, "for {offer}");
    }
    bob.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn unknown_type_gets_the_exact_reason_with_no_space_before_the_type() {
    let server = server().await;
    let mut c = connect(&server).await;
    c.send_text(r#"{"type":"hello","data":{}}"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"{"type":"error","data":{"reason":"Unable to process request, may not be correct \"type\"hello"}}"#
    );
    c.send_text(r#"{"data":{}}"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"{"type":"error","data":{"reason":"Unable to process request, may not be correct \"type\"undefined"}}"#
    );
    // `peers` is server-to-client only.
    c.send_text(r#"{"type":"peers","data":[]}"#).await;
    assert_eq!(
        c.recv_text().await,
        r#"{"type":"error","data":{"reason":"Unable to process request, may not be correct \"type\"peers"}}"#
    );
    server.running.shutdown().await;
}

#[tokio::test]
async fn bye_quirk_caller_hangup_tells_each_side_its_own_id() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_text(r#"{"type":"bye","data":{"session_id":"42-43","from":"42"}}"#).await;
    assert_eq!(alice.recv_text().await, r#"{"type":"bye","data":{"to":"42","session_id":"42-43"}}"#);
    assert_eq!(bob.recv_text().await, r#"{"type":"bye","data":{"to":"43","session_id":"42-43"}}"#);
    alice.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn bye_quirk_callee_hangup_sends_both_byes_to_the_callee_and_none_to_the_caller() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    bob.send_text(r#"{"type":"bye","data":{"session_id":"42-43","from":"43"}}"#).await;
    assert_eq!(bob.recv_text().await, r#"{"type":"bye","data":{"to":"42","session_id":"42-43"}}"#);
    assert_eq!(bob.recv_text().await, r#"{"type":"bye","data":{"to":"43","session_id":"42-43"}}"#);
    alice.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn bye_without_session_id_gets_an_error_instead_of_a_crash() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_text(r#"{"type":"bye","data":{"from":"42"}}"#).await;
    let reply: serde_json::Value = serde_json::from_str(&alice.recv_text().await).unwrap();
    assert_eq!(reply["type"], "error");
    assert!(reply["data"]["reason"].as_str().unwrap().contains("session_id"), "{reply}");
    // Still connected and routed.
    alice.send_text(OFFER).await;
    assert_eq!(bob.recv_text().await, OFFER);
    server.running.shutdown().await;
}

#[tokio::test]
async fn leave_is_accepted_and_does_nothing() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    alice.send_text(r#"{"type":"leave","data":"43"}"#).await;
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    // Alice is still listed and reachable.
    bob.send_text(&OFFER.replace(r#""to":"43""#, r#""to":"42""#)).await;
    assert_eq!(alice.recv_text().await, OFFER.replace(r#""to":"43""#, r#""to":"42""#));
    server.running.shutdown().await;
}

#[tokio::test]
async fn disconnect_sends_peers_to_all_who_remain() {
    let server = server().await;
    let (mut alice, bob) = alice_and_bob(&server).await;
    let mut carol = connect(&server).await;
    carol.send_text(r#"{"type":"new","data":{"id":"44"}}"#).await;
    let all = peers(&[ALICE, BOB, r#"{"id":"44"}"#]);
    assert_eq!(carol.recv_text().await, all);
    assert_eq!(alice.recv_text().await, all);
    bob.drop_abruptly().await;
    let rest = peers(&[ALICE, r#"{"id":"44"}"#]);
    assert_eq!(alice.recv_text().await, rest);
    assert_eq!(carol.recv_text().await, rest);
    carol.ws.close(None).await.unwrap();
    assert_eq!(alice.recv_text().await, peers(&[ALICE]));
    server.running.shutdown().await;
}

/// The original re-sends the unchanged list to everyone on any close: with
/// 20 profiles of 60 KB, 50 bare connections made it send 1.37 GB. Presence
/// goes out only when it changes.
#[tokio::test]
async fn a_connection_that_never_sent_new_changes_nothing_and_sends_nothing() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    for _ in 0..5 {
        let lurker = connect(&server).await;
        lurker.drop_abruptly().await;
    }
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_profile_over_the_cap_is_refused_and_not_listed() {
    let server = server().await;
    let (mut alice, _bob) = alice_and_bob(&server).await;
    let mut big = connect(&server).await;
    let name = "x".repeat(5000);
    big.send_text(&format!(r#"{{"type":"new","data":{{"id":"99","username":"{name}"}}}}"#)).await;
    let reply = big.recv_text().await;
    assert!(reply.starts_with(r#"{"type":"error","data":{"reason":"the profile in 'new' is"#), "{reply}");
    alice.expect_silence(QUIET).await;
    big.send_text(r#"{"type":"new","data":{"id":"99"}}"#).await;
    let listed = peers(&[ALICE, BOB, r#"{"id":"99"}"#]);
    assert_eq!(big.recv_text().await, listed);
    assert_eq!(alice.recv_text().await, listed);
    server.running.shutdown().await;
}

#[tokio::test]
async fn duplicate_ids_quirk_both_are_listed_and_the_first_one_gets_the_messages() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    // A reconnecting Bob whose old socket is still open.
    let mut bob2 = connect(&server).await;
    bob2.send_text(BOB_NEW).await;
    let three = peers(&[ALICE, BOB, BOB]);
    assert_eq!(bob2.recv_text().await, three);
    assert_eq!(alice.recv_text().await, three);
    assert_eq!(bob.recv_text().await, three);
    alice.send_text(OFFER).await;
    assert_eq!(bob.recv_text().await, OFFER);
    bob2.expect_silence(QUIET).await;
    // Once the old socket is gone, the new one is the first match.
    bob.ws.close(None).await.unwrap();
    assert_eq!(alice.recv_text().await, peers(&[ALICE, BOB]));
    assert_eq!(bob2.recv_text().await, peers(&[ALICE, BOB]));
    alice.send_text(OFFER).await;
    assert_eq!(bob2.recv_text().await, OFFER);
    server.running.shutdown().await;
}

#[tokio::test]
async fn later_messages_keep_the_new_profile_and_bye_keeps_the_sender_reachable() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    // The original would overwrite Alice's profile with the offer's data and,
    // after her `bye`, her id with undefined. We keep what `new` said.
    alice.send_text(OFFER).await;
    assert_eq!(bob.recv_text().await, OFFER);
    alice.send_text(r#"{"type":"bye","data":{"session_id":"42-43","from":"42"}}"#).await;
    alice.recv_text().await;
    bob.recv_text().await;
    let mut carol = connect(&server).await;
    carol.send_text(r#"{"type":"new","data":{"id":"44"}}"#).await;
    assert_eq!(carol.recv_text().await, peers(&[ALICE, BOB, r#"{"id":"44"}"#]));
    carol.send_text(r#"{"type":"offer","data":{"to":"42","id":"44"}}"#).await;
    assert_eq!(alice.recv_text().await, peers(&[ALICE, BOB, r#"{"id":"44"}"#]));
    assert_eq!(alice.recv_text().await, r#"{"type":"offer","data":{"to":"42","id":"44"}}"#);
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_second_new_replaces_the_entry_and_moves_the_id() {
    let server = server().await;
    let (mut alice, mut bob) = alice_and_bob(&server).await;
    bob.send_text(r#"{"type":"new","data":{"id":"45","username":"robert"}}"#).await;
    let renamed = peers(&[ALICE, r#"{"id":"45","username":"robert"}"#]);
    assert_eq!(bob.recv_text().await, renamed);
    assert_eq!(alice.recv_text().await, renamed);
    alice.send_text(OFFER).await; // to the old id "43"
    bob.expect_silence(QUIET).await;
    alice.send_text(&OFFER.replace(r#""to":"43""#, r#""to":"45""#)).await;
    assert_eq!(bob.recv_text().await, OFFER.replace(r#""to":"43""#, r#""to":"45""#));
    server.running.shutdown().await;
}

#[tokio::test]
async fn not_json_gets_an_error_reply_and_the_connection_stays() {
    let server = server().await;
    let mut c = connect(&server).await;
    for bad in ["not json", "[1,2]", "\"new\""] {
        c.send_text(bad).await;
        let reply: serde_json::Value = serde_json::from_str(&c.recv_text().await).unwrap();
        assert_eq!(reply["type"], "error", "for {bad}");
        assert!(reply["data"]["reason"].as_str().unwrap().contains("JSON object"), "{reply}");
    }
    c.send_text(ALICE_NEW).await;
    assert_eq!(c.recv_text().await, peers(&[ALICE]));
    server.running.shutdown().await;
}

#[tokio::test]
async fn websocket_upgrades_are_accepted_on_any_path() {
    let server = server().await;
    for path in ["/", "/ws", "/some/where?x=1"] {
        let mut c = Client::connect(&server.ws_url(path)).await;
        c.send_text(r#"{"type":"new","data":{"id":"1"}}"#).await;
        assert_eq!(c.recv_text().await, peers(&[r#"{"id":"1"}"#]), "on {path}");
        c.ws.close(None).await.unwrap();
    }
    server.running.shutdown().await;
}

/// Sends a raw HTTP/1.1 request and reads the whole response (or, for an
/// upgrade, its head).
async fn raw_http(server: &TestServer, request: &str) -> String {
    let mut tcp = TcpStream::connect(server.addr(0)).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(common::WAIT, tcp.read(&mut buf)).await.expect("a response in time").unwrap();
        got.extend_from_slice(&buf[..n]);
        let head_done = got.windows(4).any(|w| w == b"\r\n\r\n");
        if n == 0 || (head_done && got.starts_with(b"HTTP/1.1 101")) {
            return String::from_utf8_lossy(&got).into_owned();
        }
    }
}

#[tokio::test]
async fn plain_http_requests_on_any_path_get_the_banner() {
    let server = server().await;
    for path in ["/", "/ws", "/anything"] {
        let res = raw_http(&server, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
        assert!(res.starts_with("HTTP/1.1 200 "), "{path}: {res}");
        assert!(res.ends_with("\r\n\r\nWebSocket Server - Vertex"), "{path}: {res}");
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn short_lower_case_websocket_key_is_accepted_and_hashed_as_given() {
    let server = server().await;
    // The mobile client's key: 8 random bytes, base64, lower-cased. The
    // expected answers are base64(sha1(key + RFC 6455 GUID)), computed apart.
    for (key, accept) in
        [("q0hzngtyhqw=", "vgcaUcoCERE2c+p9iNk/YasZaQc="), ("3q2+7wecawq=", "VMrHpf60qNSKXAWy+uxUBq0jbfk=")]
    {
        let req = format!(
            "GET /ws HTTP/1.1\r\nHost: vertex.chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        );
        let res = raw_http(&server, &req).await;
        assert!(res.starts_with("HTTP/1.1 101 "), "{res}");
        let line = res.lines().find(|l| l.to_ascii_lowercase().starts_with("sec-websocket-accept:")).expect("accept");
        assert_eq!(line.split_once(':').unwrap().1.trim(), accept);
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn static_files_are_served_behind_the_any_path_websocket() {
    let dir = temp_dir("static");
    std::fs::write(dir.join("index.html"), "<p>page</p>").unwrap();
    let mut config = Config::single(DialectKind::Flutter, "127.0.0.1:0".parse().unwrap());
    config.listeners[0].static_dir = Some(dir.clone());
    let server = TestServer::start(config).await;
    let page = raw_http(&server, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(page.ends_with("<p>page</p>"), "{page}");
    let missing = raw_http(&server, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(missing.ends_with("WebSocket Server - Vertex"), "{missing}");
    let mut c = connect(&server).await;
    c.send_text(r#"{"type":"new","data":{"id":"1"}}"#).await;
    assert_eq!(c.recv_text().await, peers(&[r#"{"id":"1"}"#]));
    server.running.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("switchboard-flutter-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn dialect_flutter_without_listen_defaults_to_wss_on_port_8086() {
    let dir = temp_dir("default");
    switchboard::cert::generate(&dir, &["localhost".to_string()]).unwrap();
    let args = ServeArgs {
        dialect: Some(DialectKind::Flutter),
        tls_cert: Some(dir.join("ssl/server.cert")),
        tls_key: Some(dir.join("ssl/server.key")),
        ..ServeArgs::default()
    };
    let config = Config::from_args(&args).unwrap();
    assert_eq!(config.listeners[0].listen, "127.0.0.1:8086".parse().unwrap());
    assert!(config.listeners[0].tls_files().is_some(), "flutter serves WSS");
    assert!(DialectKind::Flutter.wants_tls());
    let args = ServeArgs { dialect: Some(DialectKind::Native), ..ServeArgs::default() };
    assert_eq!(Config::from_args(&args).unwrap().listeners[0].listen, "127.0.0.1:8080".parse().unwrap());
    let _ = std::fs::remove_dir_all(dir);
}

/// A TLS connector that trusts only the CA in `ca`.
fn connector(ca: &Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn wss_with_the_flutter_file_names_speaks_the_dialect_and_takes_the_mobile_key() {
    let dir = temp_dir("wss");
    let made = switchboard::cert::generate(&dir, &switchboard::cert::machine_names(&[])).unwrap();
    let mut listener = ListenerConfig::plain(DialectKind::Flutter, "127.0.0.1:0".parse().unwrap());
    listener.tls_cert = Some(dir.join("ssl/server.cert"));
    listener.tls_key = Some(dir.join("ssl/server.key"));
    let server = TestServer::start(Config { listeners: vec![listener], ..Config::default() }).await;
    let tls = connector(&made.ca_cert);
    let name = || ServerName::try_from("localhost").unwrap();

    // HTTPS: the banner.
    let tcp = TcpStream::connect(server.addr(0)).await.unwrap();
    let mut https = tls.connect(name(), tcp).await.expect("TLS handshake");
    https.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut res = String::new();
    https.read_to_string(&mut res).await.ok();
    assert!(res.starts_with("HTTP/1.1 200 ") && res.ends_with("WebSocket Server - Vertex"), "{res}");

    // WSS as the mobile client does it: its own upgrade with an 8-byte key.
    let tcp = TcpStream::connect(server.addr(0)).await.unwrap();
    let mut wss = tls.connect(name(), tcp).await.expect("TLS handshake");
    let req = "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
               Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: q0hzngtyhqw=\r\n\r\n";
    wss.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(common::WAIT, wss.read_exact(&mut byte)).await.expect("head in time").unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(head.contains("sec-websocket-accept: vgcaucocere2c+p9ink/yaszaqc="), "{head}");
    let mut ws = WebSocketStream::from_raw_socket(wss, Role::Client, None).await;
    ws.send(Message::Text(ALICE_NEW.into())).await.unwrap();
    let reply = tokio::time::timeout(common::WAIT, ws.next()).await.expect("peers in time");
    let Some(Ok(Message::Text(reply))) = reply else { panic!("expected peers, got {reply:?}") };
    assert_eq!(reply.as_str(), peers(&[ALICE]));
    server.running.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
