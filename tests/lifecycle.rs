//! Lifecycle: graceful shutdown closes every open socket with a notice and
//! code 1012, both through `Running::shutdown` and through SIGTERM to the
//! built binary.

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
