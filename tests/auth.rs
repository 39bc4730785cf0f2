//! Authentication of the native dialect and of what every listener shares,
//! over real sockets: each place a token may travel, each way a token is
//! refused (missing, wrong signature, expired), claims outside the token
//! (a name, a room, another identity's resume token), `/metrics`, and the
//! `switchboard token` command with a server started from flags.

mod common;

use std::time::Duration;

use common::auth::{self, SECRET, connect, expired, get, refused, token, wrong_signature};
use common::{Bin, Client, TestServer};
use serde_json::{Value, json};
use switchboard::ice::Secret;

async fn server() -> TestServer {
    TestServer::with(auth::on).await
}

/// Connects to `/ws` with `query` and `headers`; returns the client and its welcome.
async fn admitted(server: &TestServer, query: &str, headers: &[(&str, &str)]) -> (Client, Value) {
    let mut c = connect(&server.ws_url(&format!("/ws{query}")), headers).await.expect("admitted");
    let welcome = c.recv_type("welcome").await;
    (c, welcome)
}

async fn ask(c: &mut Client, req: Value) -> Value {
    c.send(&req).await;
    c.recv().await
}

#[tokio::test]
async fn native_valid_token_admits_and_allows_its_name_and_rooms() {
    let server = server().await;
    let (mut c, _) = admitted(&server, &format!("?access_token={}", token("alice", &["r1"])), &[]).await;
    let reply = ask(&mut c, json!({"type": "name", "name": "alice", "ref": 1})).await;
    assert_eq!((reply["type"].as_str(), reply["name"].as_str()), (Some("ok"), Some("alice")), "{reply}");
    let reply = ask(&mut c, json!({"type": "join", "room": "r1", "ref": 2})).await;
    assert_eq!(reply["type"], "ok", "{reply}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn native_missing_token_is_refused_with_401_saying_where_to_put_one() {
    let server = server().await;
    let body = refused(&server.ws_url("/ws"), &[], 401).await;
    assert!(body.contains("requires an access token") && body.contains("access_token"), "{body}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn native_wrong_signature_is_refused() {
    let server = server().await;
    let body = refused(&server.ws_url(&format!("/ws?access_token={}", wrong_signature("alice"))), &[], 401).await;
    assert!(body.contains("signature"), "{body}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn native_expired_token_is_refused() {
    let server = server().await;
    let body = refused(&server.ws_url(&format!("/ws?access_token={}", expired("alice"))), &[], 401).await;
    assert!(body.contains("expired"), "{body}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn native_name_outside_the_token_is_forbidden() {
    let server = server().await;
    let (mut c, _) = admitted(&server, &format!("?access_token={}", token("alice", &[])), &[]).await;
    let reply = ask(&mut c, json!({"type": "name", "name": "bob", "ref": 7})).await;
    assert_eq!(reply["type"], "error", "{reply}");
    assert_eq!(reply["code"], "forbidden");
    assert_eq!(reply["ref"], 7);
    assert!(reply["message"].as_str().unwrap().contains("'bob'"), "{reply}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn native_room_outside_the_token_is_forbidden() {
    let server = server().await;
    let (mut c, _) = admitted(&server, &format!("?access_token={}", token("alice", &["r1"])), &[]).await;
    let reply = ask(&mut c, json!({"type": "join", "room": "r2", "ref": 1})).await;
    assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some("forbidden")), "{reply}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn token_in_sec_websocket_protocol_is_accepted_and_echoed() {
    let server = server().await;
    let entry = format!("access_token.{}", token("alice", &[]));
    let offered = format!("other, {entry}");
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(server.ws_url("/ws"))
        .expect("request");
    req.headers_mut().insert("Sec-WebSocket-Protocol", offered.parse().expect("header"));
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.expect("admitted");
    assert_eq!(resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()), Some(entry.as_str()));
    let mut c = Client { ws };
    c.recv_type("welcome").await;
    refused(&server.ws_url("/ws"), &[("Sec-WebSocket-Protocol", &format!("access_token.{}", expired("alice")))], 401)
        .await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn token_in_authorization_bearer_is_accepted() {
    let server = server().await;
    let bearer = format!("Bearer {}", token("alice", &[]));
    admitted(&server, "", &[("Authorization", &bearer)]).await;
    refused(&server.ws_url("/ws"), &[("Authorization", &format!("Bearer {}", wrong_signature("a")))], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn token_in_the_switchboard_token_cookie_is_accepted() {
    let server = server().await;
    let cookie = format!("theme=dark; switchboard_token={}", token("alice", &[]));
    admitted(&server, "", &[("Cookie", &cookie)]).await;
    refused(&server.ws_url("/ws"), &[("Cookie", &format!("switchboard_token={}", expired("alice")))], 401).await;
    refused(&server.ws_url("/ws"), &[("Cookie", "theme=dark")], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_query_parameter_comes_first() {
    let server = server().await;
    let query = format!("?access_token={}", token("alice", &[]));
    let cookie = format!("switchboard_token={}", expired("alice"));
    admitted(&server, &query, &[("Cookie", &cookie)]).await;
    let query = format!("?access_token={}", expired("alice"));
    let cookie = format!("switchboard_token={}", token("alice", &[]));
    refused(&server.ws_url(&format!("/ws{query}")), &[("Cookie", &cookie)], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_resume_token_works_only_for_the_identity_it_was_issued_to() {
    let server = TestServer::with(|c| {
        auth::on(c);
        c.grace = Duration::from_secs(30);
    })
    .await;
    let (mut bob, welcome) = admitted(&server, &format!("?access_token={}", token("bob", &[])), &[]).await;
    let reply = ask(&mut bob, json!({"type": "name", "name": "bob"})).await;
    assert_eq!(reply["type"], "ok");
    let resume = welcome["resume"].as_str().expect("a resume token").to_string();
    let id = welcome["id"].clone();
    bob.drop_abruptly().await;

    let query = format!("?resume={resume}&access_token={}", token("mallory", &["*"]));
    let mut mallory = connect(&server.ws_url(&format!("/ws{query}")), &[]).await.expect("admitted");
    let error = mallory.recv_type("error").await;
    assert_eq!(error["code"], "forbidden", "{error}");
    let welcome = mallory.recv_type("welcome").await;
    assert_eq!(welcome["resumed"], false);
    assert_ne!(welcome["id"], id, "mallory is a new peer, not bob");

    let query = format!("?resume={resume}&access_token={}", token("bob", &[]));
    let (_bob, welcome) = admitted(&server, &query, &[]).await;
    assert_eq!((welcome["resumed"].as_bool(), &welcome["id"]), (Some(true), &id), "{welcome}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_live_connection_is_not_cut_when_its_token_expires() {
    let server = server().await;
    let now = std::time::SystemTime::now();
    let claims = switchboard::auth::Claims::new("alice", &[], Duration::from_secs(1), now);
    let short = switchboard::auth::Signer::secret(SECRET).mint(&claims).unwrap();
    let (mut c, _) = admitted(&server, &format!("?access_token={short}"), &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = ask(&mut c, json!({"type": "name", "name": "alice"})).await;
    assert_eq!(reply["type"], "ok", "{reply}");
    refused(&server.ws_url(&format!("/ws?access_token={short}")), &[], 401).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn metrics_with_auth_on_need_a_valid_token() {
    let server = server().await;
    let addr = server.addr(0);
    assert_eq!(get(addr, "/metrics", &[]).await.0, 401, "missing");
    let wrong = format!("Bearer {}", wrong_signature("ops"));
    assert_eq!(get(addr, "/metrics", &[("Authorization", &wrong)]).await.0, 401, "wrong signature");
    let old = format!("Bearer {}", expired("ops"));
    assert_eq!(get(addr, "/metrics", &[("Authorization", &old)]).await.0, 401, "expired");
    let good = format!("Bearer {}", token("ops", &[]));
    let (status, body) = get(addr, "/metrics", &[("Authorization", &good)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#"switchboard_errors_total{code="token_missing"} 1"#), "{body}");
    assert_eq!(get(addr, "/healthz", &[]).await.0, 200, "health checks need nothing");
    server.running.shutdown().await;
}

#[tokio::test]
async fn metrics_token_is_a_plain_bearer_token_of_its_own() {
    let server = TestServer::with(|c| {
        auth::on(c);
        c.metrics_token = Some(Secret::new("scrape-me"));
    })
    .await;
    let addr = server.addr(0);
    assert_eq!(get(addr, "/metrics", &[("Authorization", "Bearer scrape-me")]).await.0, 200);
    assert_eq!(get(addr, "/metrics", &[("Authorization", "Bearer scrape-you")]).await.0, 401);
    assert_eq!(get(addr, "/metrics", &[]).await.0, 401);
    let jwt = format!("Bearer {}", token("ops", &[]));
    assert_eq!(get(addr, "/metrics", &[("Authorization", &jwt)]).await.0, 401, "only the metrics token");
    server.running.shutdown().await;

    let open = TestServer::with(|c| c.metrics_token = Some(Secret::new("scrape-me"))).await;
    assert_eq!(get(open.addr(0), "/metrics", &[]).await.0, 401, "a metrics token without auth still guards /metrics");
    assert_eq!(get(open.addr(0), "/metrics", &[("Authorization", "Bearer scrape-me")]).await.0, 200);
    open.running.shutdown().await;
}

#[tokio::test]
async fn switchboard_token_mints_what_a_server_started_with_the_secret_accepts() {
    let (status, out, err) =
        Bin::run(&["token", "--sub", "alice", "--room", "r1", "--ttl", "1h", "--auth-secret", SECRET]);
    assert!(status.success(), "{err}");
    let minted = out.trim().to_string();
    let id = switchboard::auth::Verifier::secret(SECRET).verify(&minted).expect("a valid token");
    assert_eq!(&*id.sub, "alice");
    let (status, _, err) = Bin::run(&["token", "--sub", "alice", "--ttl", "1w", "--auth-secret", SECRET]);
    assert!(!status.success() && err.contains("s, m, h or d"), "{err}");
    let (status, _, err) = Bin::run(&["token", "--sub", "alice"]);
    assert!(!status.success() && err.contains("--auth-secret"), "{err}");

    let bin = Bin::spawn(&["--listen", "127.0.0.1:0"], &[("SWITCHBOARD_AUTH_SECRET", SECRET)]);
    let url = format!("ws://{}/ws", bin.addr());
    refused(&url, &[], 401).await;
    let mut c = connect(&format!("{url}?access_token={minted}"), &[]).await.expect("admitted");
    c.recv_type("welcome").await;
    let reply = ask(&mut c, json!({"type": "join", "room": "r1"})).await;
    assert_eq!(reply["type"], "ok", "{reply}");
}

#[test]
fn the_secrets_never_show_in_the_settings() {
    use clap::Parser;
    let cli = switchboard::config::Cli::parse_from([
        "switchboard",
        "--auth-secret",
        "hush-hush-0123456789-0123456789-0123",
        "--metrics-token",
        "scrape-token-42",
    ]);
    let config = switchboard::Config::from_args(&cli.serve).expect("valid");
    assert!(config.auth.is_some());
    for shown in [format!("{cli:?}"), format!("{config:?}")] {
        assert!(!shown.contains("hush-hush") && !shown.contains("scrape-token-42"), "{shown}");
    }
}

#[tokio::test]
async fn es256_tokens_from_a_private_key_pass_a_server_started_with_the_public_key() {
    let dir = common::temp_dir("auth-es256");
    let pair = rcgen::KeyPair::generate().expect("a P-256 key");
    let (private, public) = (dir.join("private.pem"), dir.join("public.pem"));
    std::fs::write(&private, pair.serialize_pem()).expect("write");
    std::fs::write(&public, pair.public_key_pem()).expect("write");
    let private = private.to_str().expect("utf-8 path");
    let (status, out, err) = Bin::run(&["token", "--sub", "alice", "--private-key", private]);
    assert!(status.success(), "{err}");
    let minted = out.trim().to_string();

    let bin = Bin::spawn(&["--listen", "127.0.0.1:0", "--auth-public-key", public.to_str().expect("path")], &[]);
    let url = format!("ws://{}/ws", bin.addr());
    let mut c = connect(&format!("{url}?access_token={minted}"), &[]).await.expect("admitted");
    c.recv_type("welcome").await;
    let hs256 = token("alice", &[]);
    let body = refused(&format!("{url}?access_token={hs256}"), &[], 401).await;
    assert!(body.contains("ES256"), "an HS256 token is refused by a public key server: {body}");
}

#[test]
fn the_config_file_turns_auth_on_and_flags_win() {
    use clap::Parser;
    let dir = common::temp_dir("auth-config");
    let file = dir.join("switchboard.toml");
    std::fs::write(&file, format!("auth_secret = \"{SECRET}\"\nmetrics_token = \"scrape\"\n")).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let cli = switchboard::config::Cli::parse_from(["switchboard", "--config", path]);
    let config = switchboard::Config::from_args(&cli.serve).expect("valid");
    let verifier = config.auth.expect("auth is on");
    assert_eq!(verifier.verify(&token("alice", &[])).map(|i| i.sub.to_string()), Ok("alice".to_string()));
    assert_eq!(config.metrics_token.as_ref().map(|t| t.expose()), Some("scrape"));

    let cli =
        switchboard::config::Cli::parse_from(["switchboard", "--config", path, "--auth-secret", "another-secret"]);
    let config = switchboard::Config::from_args(&cli.serve).expect("valid");
    assert!(config.auth.expect("auth is on").verify(&token("alice", &[])).is_err(), "the flag's secret wins");
    let cli = switchboard::config::Cli::parse_from(["switchboard", "--auth-secret", ""]);
    assert!(switchboard::Config::from_args(&cli.serve).is_err(), "an empty secret is refused");
}

#[tokio::test]
async fn ice_with_auth_on_needs_a_valid_token() {
    let server = server().await;
    let addr = server.addr(0);
    assert_eq!(get(addr, "/ice", &[]).await.0, 401, "missing");
    assert_eq!(get(addr, &format!("/ice?access_token={}", wrong_signature("a")), &[]).await.0, 401, "wrong signature");
    assert_eq!(get(addr, &format!("/ice?access_token={}", expired("a")), &[]).await.0, 401, "expired");
    let (status, body) = get(addr, &format!("/ice?access_token={}", token("alice", &[])), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("iceServers"), "{body}");
    server.running.shutdown().await;
}
