//! ICE servers as clients get them: `GET /ice` on every listener (CORS, a
//! credential minted per request), the native welcome (minted per
//! connection), and the flags, environment and `[turn]` table behind them.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Bin, TestServer, WAIT};
use serde_json::{Value, json};
use switchboard::Config;
use switchboard::config::{ListenerConfig, ServeArgs};
use switchboard::dialect::DialectKind;
use switchboard::ice::{IceConfig, IceServer, Minted, Secret, check, rest_password};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "test-shared-secret";

fn minted_ice() -> IceConfig {
    IceConfig {
        fixed: vec![IceServer { urls: vec!["stun:127.0.0.1:3478".into()], username: None, credential: None }],
        minted: Some(Minted {
            urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            secret: Secret::new(SECRET),
            ttl: Duration::from_secs(3600),
        }),
    }
}

/// A raw HTTP/1.1 request: the response head (lower-cased) and body.
async fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (String, String) {
    let mut s = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw)).await.expect("response in time").expect("read response");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

/// Asserts that the minted entry of `servers` holds a credential that the
/// shared secret verifies and that expires about `ttl` from now; returns its username.
fn assert_minted(servers: &Value, ttl: Duration) -> String {
    let turn =
        servers.as_array().expect("a list").iter().find(|s| s.get("username").is_some()).expect("a minted entry");
    assert_eq!(turn["urls"], json!(["turn:127.0.0.1:3478?transport=udp"]));
    let username = turn["username"].as_str().expect("username").to_string();
    let credential = turn["credential"].as_str().expect("credential");
    assert_eq!(rest_password(&Secret::new(SECRET), &username).expose(), credential);
    let expiry: u64 = username.split(':').next().and_then(|t| t.parse().ok()).expect("<expiry>:<user>");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs();
    assert!(expiry.abs_diff(now + ttl.as_secs()) <= 5, "expiry {expiry} is not now + {}s", ttl.as_secs());
    assert!(check(&Secret::new(SECRET), &username, SystemTime::now()).is_ok());
    username
}

#[tokio::test]
async fn ice_answers_an_rtc_configuration_with_a_credential_minted_per_request_and_cors() {
    let server = TestServer::with(|c| c.ice = minted_ice()).await;
    let (head, body) = request(server.addr(0), "GET", "/ice", "Origin: https://app.example\r\n").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["iceServers"][0], json!({"urls": ["stun:127.0.0.1:3478"]}));
    let first = assert_minted(&v["iceServers"], Duration::from_secs(3600));

    let (_, body) = request(server.addr(0), "GET", "/ice", "").await;
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let second = assert_minted(&v["iceServers"], Duration::from_secs(3600));
    assert_ne!(first, second, "each request gets its own user");
    server.running.shutdown().await;
}

#[tokio::test]
async fn ice_answers_a_cors_preflight() {
    let server = TestServer::with(|c| c.ice = minted_ice()).await;
    let (head, _) = request(
        server.addr(0),
        "OPTIONS",
        "/ice",
        "Origin: https://app.example\r\nAccess-Control-Request-Method: GET\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
    assert!(head.contains("access-control-allow-methods: get"), "{head}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn ice_is_served_on_every_dialect_listener() {
    let any = "127.0.0.1:0".parse().expect("address");
    let dialects =
        [DialectKind::Native, DialectKind::Basic, DialectKind::One2one, DialectKind::Peerjs, DialectKind::Flutter];
    let config = Config {
        listeners: dialects.iter().map(|d| ListenerConfig::plain(*d, any)).collect(),
        ice: minted_ice(),
        ..Config::default()
    };
    let server = TestServer::start(config).await;
    for (i, d) in dialects.iter().enumerate() {
        let (head, body) = request(server.addr(i), "GET", "/ice", "").await;
        assert!(head.starts_with("http/1.1 200"), "{d:?}: {head}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{d:?}: {e}: {body}"));
        assert_minted(&v["iceServers"], Duration::from_secs(3600));
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn without_ice_servers_ice_answers_an_empty_list() {
    let server = TestServer::native().await;
    let (head, body) = request(server.addr(0), "GET", "/ice", "").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, r#"{"iceServers":[]}"#);
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_native_welcome_carries_a_credential_minted_per_connection() {
    let server = TestServer::with(|c| c.ice = minted_ice()).await;
    let (_a, welcome_a) = server.client().await;
    let (_b, welcome_b) = server.client().await;
    assert_eq!(welcome_a["ice_servers"][0], json!({"urls": ["stun:127.0.0.1:3478"]}));
    let a = assert_minted(&welcome_a["ice_servers"], Duration::from_secs(3600));
    let b = assert_minted(&welcome_b["ice_servers"], Duration::from_secs(3600));
    assert_ne!(a, b, "each connection gets its own user");
    server.running.shutdown().await;
}

#[test]
fn turn_flags_win_over_the_turn_table() {
    let path = std::env::temp_dir().join(format!("switchboard-test-{}-turn.toml", std::process::id()));
    std::fs::write(&path, "[turn]\nsecret = \"file-secret\"\nurls = [\"turn:10.0.0.1:3478\"]\ncredential_ttl = 600\n")
        .expect("write config");
    let args = ServeArgs { config: Some(path.clone()), ..ServeArgs::default() };
    let c = Config::from_args(&args).expect("valid [turn] table");
    let m = c.ice.minted.clone().expect("minted");
    assert_eq!(
        (m.urls, m.secret.expose(), m.ttl),
        (vec!["turn:10.0.0.1:3478".to_string()], "file-secret", Duration::from_secs(600))
    );

    let mut args = ServeArgs { config: Some(path.clone()), ..ServeArgs::default() };
    args.turn.secret = Some(Secret::new("flag-secret"));
    args.turn.urls = vec!["turns:turn.example.org:5349".into()];
    let m = Config::from_args(&args).expect("valid").ice.minted.expect("minted");
    assert_eq!(m.urls, vec!["turns:turn.example.org:5349"]);
    assert_eq!((m.secret.expose(), m.ttl), ("flag-secret", Duration::from_secs(600)), "the file fills the rest");
    let debug = format!("{:?}", Config::from_args(&args).expect("valid"));
    assert!(!debug.contains("flag-secret") && debug.contains("MASKED"), "{debug}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_turn_url_without_a_secret_or_a_bad_url_is_refused() {
    let mut args = ServeArgs::default();
    args.turn.urls = vec!["turn:10.0.0.1:3478".into()];
    let e = Config::from_args(&args).expect_err("no secret").to_string();
    assert!(e.contains("--turn-secret"), "{e}");

    let args = ServeArgs { ice_servers: vec!["http://example.org".into()], ..ServeArgs::default() };
    let e = Config::from_args(&args).expect_err("not an ICE URL").to_string();
    assert!(e.contains("stun:"), "{e}");
}

#[tokio::test]
async fn the_environment_sets_the_secret_and_it_never_reaches_the_log() {
    let secret = "env-secret-9f8e7d";
    let mut bin = Bin::spawn(
        &["--listen", "127.0.0.1:0"],
        &[("SWITCHBOARD_TURN_SECRET", secret), ("SWITCHBOARD_TURN_URLS", "turn:127.0.0.1:3478?transport=udp")],
    );
    let addr = bin.addr();
    let (_, body) = request(addr, "GET", "/ice", "").await;
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let turn = &v["iceServers"][0];
    let username = turn["username"].as_str().expect("username");
    assert_eq!(
        rest_password(&Secret::new(secret), username).expose(),
        turn["credential"].as_str().expect("credential")
    );
    bin.signal("TERM");
    bin.wait_exit();
    let log: Vec<String> = bin.lines.try_iter().collect();
    assert!(!log.iter().any(|l| l.contains(secret)), "the secret is in the log:\n{}", log.join("\n"));
}

#[test]
fn startup_says_which_ice_servers_clients_get_and_warns_without_turn() {
    let bin = Bin::spawn(&["--listen", "127.0.0.1:0"], &[]);
    let line = bin.wait_line("no STUN or TURN server is configured");
    assert!(line.contains("WARN"), "{line}");
    drop(bin);

    let bin = Bin::spawn(&["--listen", "127.0.0.1:0", "--ice-server", "stun:stun.example.org:3478"], &[]);
    assert!(bin.wait_line("ICE server handed to clients").contains("stun:stun.example.org:3478"));
    assert!(bin.wait_line("only STUN is configured").contains("WARN"));
    drop(bin);

    let secret = "startup-secret-1b2c";
    let mut bin =
        Bin::spawn(&["--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", "--turn-secret", secret], &[]);
    let turn = bin.wait_line("TURN listening");
    let port = turn.split("addr=127.0.0.1:").nth(1).and_then(|s| s.split_whitespace().next()).expect("the TURN port");
    assert!(bin.wait_line("ICE server handed to clients").ends_with(&format!("stun:127.0.0.1:{port}")));
    let line = bin.wait_line("ICE server handed to clients");
    assert!(line.contains(&format!("turn:127.0.0.1:{port}?transport=udp (credentials minted per client")), "{line}");
    bin.addr();
    bin.signal("TERM");
    bin.wait_exit();
    let rest: Vec<String> = bin.lines.try_iter().collect();
    assert!(!rest.iter().any(|l| l.contains("only STUN") || l.contains(secret)), "{rest:?}");
}
