//! Lifecycle: graceful shutdown closes every open socket with a notice and
//! code 1012, both through `Running::shutdown` and through SIGTERM to the
//! built binary; the keep-alive finds a client that vanished.

mod common;

use std::time::Duration;

use common::{Bin, Client, Ending, TestServer, WAIT};
use serde_json::json;

/// Reads to the end and checks for the shutdown notice and the 1012 close.
async fn told_to_reconnect(c: &mut Client) {
    let (frames, ending) = c.read_to_end().await;
    let last = frames.last().unwrap_or_else(|| panic!("a notice before the close, got {ending:?}"));
    assert_eq!(last["type"], "shutdown", "{frames:?}");
    assert!(last["message"].as_str().unwrap().contains("reconnect"), "{last}");
    match ending {
        Ending::Close(1012, reason) => assert!(reason.contains("restarting"), "{reason}"),
        other => panic!("expected close 1012, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_tells_every_open_socket_and_returns_before_the_deadline() {
    let server = TestServer::with(|c| c.shutdown_deadline = Duration::from_secs(60)).await;
    let (mut a, _) = server.named("a").await;
    let (mut b, b_id) = server.named("b").await;
    let (mut idle, _) = server.client().await;
    a.recv_type("online").await;
    a.send(&json!({"type": "call", "to": b_id, "ref": 1})).await;
    a.recv_type("ok").await;
    b.recv_type("ring").await;

    let addr = server.addr(0);
    // Returning well before the 60 s deadline shows no socket was left open.
    let stop = tokio::spawn(async move { server.running.shutdown().await });
    for c in [&mut a, &mut b, &mut idle] {
        told_to_reconnect(c).await;
    }
    tokio::time::timeout(WAIT, stop).await.expect("shutdown returns once the sockets closed").unwrap();
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

#[tokio::test]
async fn sigterm_closes_sockets_with_1012_and_exits_zero() {
    let mut bin = Bin::spawn(&["--listen", "127.0.0.1:0"], &[]);
    let addr = bin.addr();
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(c.recv().await["type"], "welcome");
    bin.signal("TERM");
    told_to_reconnect(&mut c).await;
    let status = tokio::task::spawn_blocking(move || bin.wait_exit()).await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// A client that vanished without closing (alive TCP, nothing read, no pong)
/// is found by the keep-alive: dropped once silent for the idle timeout,
/// kept for its resume grace; a client that keeps talking stays.
#[tokio::test]
async fn a_silent_client_is_dropped_by_the_heartbeat_and_a_talking_one_stays() {
    let server = TestServer::native().await;
    let idle = switchboard::transport::ws::ConnLimits::default().idle_timeout;
    let (mut talking, _) = server.client().await;
    let (frozen, _) = server.client().await;
    common::fast_forward(idle / 2).await;
    talking.send(&json!({"type": "ping", "ref": 1})).await;
    assert_eq!(talking.recv_type("pong").await["ref"], 1);
    assert_eq!(server.metric("switchboard_peers_away").await, 0.0);
    common::fast_forward(idle / 2 + Duration::from_secs(1)).await;
    server.wait_metric("switchboard_peers_away", |v| v == 1.0).await;
    talking.send(&json!({"type": "ping", "ref": 2})).await;
    assert_eq!(talking.recv_type("pong").await["ref"], 2, "the talking client is still connected");
    assert_eq!(server.metric("switchboard_connections").await, 1.0);
    drop(frozen);
    server.running.shutdown().await;
}

/// A restart (SIGTERM, a new process on the same port): clients come back
/// as their protocol allows. A PeerJS client registers again with its id and
/// token and is reachable; a native client's resume token died with the old
/// process, so it is told `bad_token` and gets a fresh welcome.
#[tokio::test]
async fn after_a_restart_clients_come_back_as_their_protocol_allows() {
    let mut old = Bin::spawn(&["--dialect", "peerjs", "--listen", "127.0.0.1:0"], &[]);
    let addr = old.addr();
    let url = |id: &str| format!("ws://{addr}/peerjs?key=peerjs&id={id}&token=t-{id}");
    let mut alice = Client::connect(&url("alice")).await;
    assert_eq!(alice.recv_text().await, r#"{"type":"OPEN"}"#);
    old.signal("TERM");
    assert_eq!(alice.recv_close().await.0, 1012);
    assert!(tokio::task::spawn_blocking(move || old.wait_exit()).await.unwrap().success());

    let new = Bin::spawn(&["--dialect", "peerjs", "--listen", &addr.to_string()], &[]);
    assert_eq!(new.addr(), addr);
    let mut alice = Client::connect(&url("alice")).await;
    assert_eq!(alice.recv_text().await, r#"{"type":"OPEN"}"#, "the same id and token register again");
    let mut bob = Client::connect(&url("bob")).await;
    assert_eq!(bob.recv_text().await, r#"{"type":"OPEN"}"#);
    bob.send_text(r#"{"type":"OFFER","dst":"alice","payload":{"sdp":1}}"#).await;
    assert_eq!(alice.recv_text().await, r#"{"type":"OFFER","src":"bob","dst":"alice","payload":{"sdp":1}}"#);
    drop(new);

    let mut old = Bin::spawn(&["--listen", "127.0.0.1:0"], &[]);
    let addr = old.addr();
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    let welcome = c.recv().await;
    let token = welcome["resume"].as_str().expect("a resume token").to_string();
    old.signal("TERM");
    told_to_reconnect(&mut c).await;
    assert!(tokio::task::spawn_blocking(move || old.wait_exit()).await.unwrap().success());
    let new = Bin::spawn(&["--listen", &addr.to_string()], &[]);
    assert_eq!(new.addr(), addr);
    let mut c = Client::connect(&format!("ws://{addr}/ws?resume={token}")).await;
    let first = c.recv().await;
    assert_eq!((first["type"].as_str(), first["code"].as_str()), (Some("error"), Some("bad_token")), "{first}");
    let fresh = c.recv().await;
    assert_eq!((fresh["type"].as_str(), fresh["resumed"].as_bool()), (Some("welcome"), Some(false)), "{fresh}");
}
