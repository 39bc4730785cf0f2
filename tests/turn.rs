//! The embedded STUN/TURN server over real UDP sockets on 127.0.0.1: the
//! `turn` crate's client (in-process server) for credentials, the peer
//! filter, the quota and the idle timeout; coturn's `turnutils_uclient`
//! (spawned binary) for relaying with minted credentials, against the
//! embedded server and against a real coturn `turnserver` (external mode).
//!
//! The coturn tools come from the Debian package `coturn` (scripts/test.sh
//! installs it). Without them these tests skip with a message, unless CI is
//! set: there they must run.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Bin, TestServer, WAIT, http_get};
use serde_json::Value;
use switchboard::Config;
use switchboard::dialect::DialectKind;
use switchboard::ice::{Minted, Secret, mint};
use switchboard::turn::config::{DEFAULT_RELAY_PORTS, TurnConfig};
use switchboard::turn::peers::PeerPolicy;
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

const SECRET: &str = "turn-test-secret";

/// A native server with the embedded TURN server on 127.0.0.1:0.
async fn server_with_turn(tweak: impl FnOnce(&mut TurnConfig)) -> TestServer {
    let mut turn = TurnConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        secret: Secret::new(SECRET),
        realm: "switchboard-test".into(),
        relay_ports: DEFAULT_RELAY_PORTS,
        public_ip: "127.0.0.1".parse().expect("address"),
        max_allocations: 16,
        idle_timeout: Duration::from_secs(300),
        peers: PeerPolicy { allow_loopback: false },
        advertise: true,
    };
    tweak(&mut turn);
    let mut config = Config::single(DialectKind::Native, "127.0.0.1:0".parse().expect("address"));
    config.ice.minted = Some(Minted { urls: vec![], secret: turn.secret.clone(), ttl: Duration::from_secs(3600) });
    config.turn = Some(turn);
    TestServer::start(config).await
}

/// What `/ice` says about the TURN server: its address, username and password.
struct Ice {
    turn: SocketAddr,
    username: String,
    password: String,
}

async fn ice(http: SocketAddr) -> Ice {
    let (status, body) = http_get(http, "/ice").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let servers = v["iceServers"].as_array().expect("a list");
    assert_eq!(servers.len(), 2, "the embedded server's stun: and turn: entries: {v}");
    let entry = servers.iter().find(|s| s.get("username").is_some()).expect("a TURN entry with credentials");
    let url = entry["urls"][0].as_str().expect("a URL");
    let hostport = url.strip_prefix("turn:").and_then(|u| u.split('?').next()).expect("turn:HOST:PORT");
    let stun = servers[0]["urls"][0].as_str().expect("stun URL");
    assert_eq!(stun, format!("stun:{hostport}"), "{v}");
    Ice {
        turn: hostport.parse().expect("HOST:PORT"),
        username: entry["username"].as_str().expect("username").into(),
        password: entry["credential"].as_str().expect("credential").into(),
    }
}

async fn turn_client(server: SocketAddr, username: &str, password: &str) -> Client {
    let conn = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("client socket"));
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.into(),
        password: password.into(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .expect("client");
    client.listen().await.expect("client listens");
    client
}

async fn allocate(client: &Client) -> Result<impl Conn, turn::Error> {
    tokio::time::timeout(WAIT, client.allocate()).await.expect("an answer in time")
}

#[tokio::test]
async fn the_embedded_server_answers_stun_binding_requests() {
    let server = server_with_turn(|_| {}).await;
    let ice = ice(server.addr(0)).await;
    let client = turn_client(ice.turn, "", "").await;
    let mapped = tokio::time::timeout(WAIT, client.send_binding_request()).await.expect("in time").expect("binding");
    assert_eq!(mapped.ip().to_string(), "127.0.0.1");
    server.running.shutdown().await;
}

#[tokio::test]
async fn minted_credentials_allocate_and_relay_both_ways_to_an_allowed_peer() {
    let server = server_with_turn(|t| t.peers.allow_loopback = true).await;
    let ice = ice(server.addr(0)).await;
    let client = turn_client(ice.turn, &ice.username, &ice.password).await;
    let relay = allocate(&client).await.expect("allocation with minted credentials");
    let relayed = relay.local_addr().expect("relayed address");
    assert_eq!(relayed.ip().to_string(), "127.0.0.1", "--turn-public-ip (here the listen IP) is announced");

    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer socket");
    let peer_addr = peer.local_addr().expect("peer address");
    relay.send_to(b"ping", peer_addr).await.expect("permission and send");
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf)).await.expect("in time").expect("recv");
    assert_eq!((&buf[..n], from), (&b"ping"[..], relayed), "the peer sees the relayed address");

    peer.send_to(b"pong", relayed).await.expect("peer sends back");
    let (n, from) = tokio::time::timeout(WAIT, relay.recv_from(&mut buf)).await.expect("in time").expect("recv");
    assert_eq!((&buf[..n], from), (&b"pong"[..], peer_addr));
    client.close().await.ok();
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_permission_to_a_loopback_peer_is_refused_without_the_flag() {
    let server = server_with_turn(|_| {}).await;
    let ice = ice(server.addr(0)).await;
    let client = turn_client(ice.turn, &ice.username, &ice.password).await;
    let relay = allocate(&client).await.expect("allocation");
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer socket");
    let e = relay.send_to(b"ping", peer.local_addr().expect("addr")).await.expect_err("a loopback peer");
    assert!(e.to_string().contains("403"), "refused with 403 Forbidden: {e}");
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_millis(300), peer.recv_from(&mut buf)).await;
    assert!(got.is_err(), "nothing reached the peer");
    for private in ["10.0.0.1:9", "192.168.1.1:9", "169.254.0.1:9", "224.0.0.1:9", "0.0.0.0:9"] {
        let e = relay.send_to(b"x", private.parse().expect("addr")).await.expect_err(private);
        assert!(e.to_string().contains("403"), "{private}: {e}");
    }
    client.close().await.ok();
    server.running.shutdown().await;
}

#[tokio::test]
async fn an_expired_or_wrong_credential_is_refused() {
    let server = server_with_turn(|_| {}).await;
    let ice = ice(server.addr(0)).await;
    let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86_400);
    let (expired, password) = mint(&Secret::new(SECRET), "late", two_days_ago, Duration::from_secs(86_400));
    let client = turn_client(ice.turn, &expired, password.expose()).await;
    assert!(allocate(&client).await.is_err(), "an expired credential (with its right password) is refused");
    client.close().await.ok();

    let client = turn_client(ice.turn, &ice.username, "not-the-password").await;
    assert!(allocate(&client).await.is_err(), "a wrong password is refused");
    client.close().await.ok();

    let (other, password) = mint(&Secret::new("another-secret"), "x", SystemTime::now(), Duration::from_secs(60));
    let client = turn_client(ice.turn, &other, password.expose()).await;
    assert!(allocate(&client).await.is_err(), "a credential minted with another secret is refused");
    client.close().await.ok();
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_user_past_the_quota_is_refused_until_an_idle_allocation_closes() {
    let server = server_with_turn(|t| {
        t.max_allocations = 1;
        t.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let ice = ice(server.addr(0)).await;
    let first = turn_client(ice.turn, &ice.username, &ice.password).await;
    let _relay = allocate(&first).await.expect("first allocation");
    let second = turn_client(ice.turn, &ice.username, &ice.password).await;
    let e = allocate(&second).await.err().expect("a second allocation of the same user is refused");
    assert!(e.to_string().contains("486"), "Allocation Quota Reached: {e}");
    second.close().await.ok();

    // The first allocation relays nothing: after the idle timeout it is gone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let third = turn_client(ice.turn, &ice.username, &ice.password).await;
    allocate(&third).await.expect("the idle allocation no longer counts");
    first.close().await.ok();
    third.close().await.ok();
    server.running.shutdown().await;
}

// ---- coturn's tools -------------------------------------------------------

/// Whether `tool` can run; panics when it cannot and CI is set.
fn have(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path).any(|dir| dir.join(tool).is_file());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} is missing and CI is set: install the Debian package coturn (scripts/test.sh does)"
        );
        eprintln!("SKIPPED: {tool} is not installed (apt-get install coturn); this test runs in CI");
    }
    found
}

/// A free UDP port on 127.0.0.1 (for coturn, which cannot report one it picked).
fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// Runs `turnutils_uclient` in client-to-client mode (`-y`: two allocations
/// relaying to each other) and returns whether it succeeded, and its output.
fn uclient(turn: SocketAddr, username: &str, password: &str, messages: u32) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["60", "turnutils_uclient", "-y", "-m", "2", "-l", "200"])
        .args(["-n", &messages.to_string(), "-u", username, "-w", password])
        .args(["-p", &turn.port().to_string(), &turn.ip().to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("turnutils_uclient runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn assert_no_loss(ok: bool, out: &str, messages: u32) {
    assert!(ok, "turnutils_uclient failed:\n{out}");
    assert!(out.contains("Total lost packets 0 (0.000000%)"), "packets lost:\n{out}");
    // -m 2 clients, each a pair (-y), each side sending `messages`.
    let sent = messages * 4;
    assert!(out.contains(&format!("tot_send_msgs={sent}, tot_recv_msgs={sent}")), "not all relayed:\n{out}");
}

/// The addresses in the binary's `TURN listening` and `listening dialect` lines.
fn turn_and_http(bin: &Bin) -> (SocketAddr, SocketAddr) {
    let addr_in = |line: String| -> SocketAddr {
        let a = line.split("addr=").nth(1).and_then(|s| s.split_whitespace().next()).expect("addr=");
        a.parse().unwrap_or_else(|e| panic!("{a:?}: {e}"))
    };
    let turn = addr_in(bin.wait_line("TURN listening"));
    let http = addr_in(bin.wait_line("listening dialect"));
    (turn, http)
}

#[tokio::test]
async fn uclient_relays_through_the_embedded_server_with_minted_credentials_and_loses_nothing() {
    if !have("turnutils_uclient") {
        return;
    }
    let bin = Bin::spawn(
        &["--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", "--turn-allow-loopback-peers"],
        &[("SWITCHBOARD_TURN_SECRET", SECRET)],
    );
    let (turn, http) = turn_and_http(&bin);
    let ice = ice(http).await;
    assert_eq!(ice.turn, turn, "/ice names the embedded server");
    let (ok, out) = tokio::task::spawn_blocking(move || uclient(turn, &ice.username, &ice.password, 50))
        .await
        .expect("uclient thread");
    assert_no_loss(ok, &out, 50);
}

#[tokio::test]
async fn uclient_with_a_wrong_password_gets_no_allocation_on_the_embedded_server() {
    if !have("turnutils_uclient") {
        return;
    }
    let bin =
        Bin::spawn(&["--listen", "127.0.0.1:0", "--turn-listen", "127.0.0.1:0", "--turn-allow-loopback-peers"], &[]);
    let (turn, http) = turn_and_http(&bin);
    let ice = ice(http).await;
    let (ok, out) =
        tokio::task::spawn_blocking(move || uclient(turn, &ice.username, "wrong", 5)).await.expect("uclient thread");
    // The `turn` crate answers a bad MESSAGE-INTEGRITY with 400 (RFC 5389 says 401).
    assert!(!ok && out.contains("error 400") && !out.contains("tot_recv_msgs"), "{out}");
}

/// A coturn `turnserver` on 127.0.0.1 that checks REST credentials with `secret`.
struct Coturn {
    child: std::process::Child,
    port: u16,
}

impl Coturn {
    fn start(secret: &str) -> Coturn {
        let port = free_udp_port();
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--no-tcp", "--simple-log", "--log-file=stdout"])
            .args(["--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers"])
            .arg(format!("--listening-port={port}"))
            .args(["--min-port=49152", "--max-port=65535", "--realm=coturn.test"])
            .args(["--use-auth-secret", &format!("--static-auth-secret={secret}")])
            .arg(format!("--pidfile={}", std::env::temp_dir().join(format!("sb-coturn-{port}.pid")).display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("turnserver starts");
        Coturn { child, port }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn minted_credentials_work_on_a_real_coturn() {
    if !have("turnutils_uclient") || !have("turnserver") {
        return;
    }
    let coturn = Coturn::start(SECRET);
    let url = format!("turn:127.0.0.1:{}", coturn.port);
    let bin = Bin::spawn(&["--listen", "127.0.0.1:0", "--turn-url", &url, "--turn-secret", SECRET], &[]);
    let http = bin.addr();
    let (_, body) = http_get(http, "/ice").await;
    let v: Value = serde_json::from_str(&body).expect("JSON");
    let entry = &v["iceServers"][0];
    assert_eq!(entry["urls"][0], url.as_str(), "{v}");
    let username = entry["username"].as_str().expect("username").to_string();
    let password = entry["credential"].as_str().expect("credential").to_string();
    let turn: SocketAddr = format!("127.0.0.1:{}", coturn.port).parse().expect("address");
    wait_for_stun(turn).await;
    let (u, p) = (username.clone(), password);
    let (ok, out) = tokio::task::spawn_blocking(move || uclient(turn, &u, &p, 20)).await.expect("uclient thread");
    assert_no_loss(ok, &out, 20);
    let (ok, out) =
        tokio::task::spawn_blocking(move || uclient(turn, &username, "wrong", 5)).await.expect("uclient thread");
    assert!(!ok, "coturn refuses a wrong password too:\n{out}");
}

/// Waits until a STUN binding request to `server` is answered.
async fn wait_for_stun(server: SocketAddr) {
    let client = turn_client(server, "", "").await;
    let give_up = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < give_up {
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), client.send_binding_request()).await {
            client.close().await.ok();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no STUN answer from {server}");
}
