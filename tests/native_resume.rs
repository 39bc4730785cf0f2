//! Resume over real sockets: a peer that dropped comes back with its token
//! within the grace period and finds its id, name, rooms, call and every
//! signal sent meanwhile; after the grace period the senders are told.

mod common;

use std::time::Duration;

use common::{Client, Ending, TestServer};
use serde_json::{Value, json};

/// Indexes of the signals among `frames`, in order.
fn indexes(frames: &[Value]) -> Vec<u64> {
    frames.iter().filter(|f| f["type"] == "signal").map(|f| f["data"]["i"].as_u64().expect("index")).collect()
}

/// Reads `n` signals (skipping nothing else) and returns their indexes.
async fn read_signals(c: &mut Client, n: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < n {
        let f = c.recv_type("signal").await;
        got.push(f["data"]["i"].as_u64().expect("index"));
    }
    got
}

#[tokio::test]
async fn dropped_peer_resumes_with_id_name_rooms_call_and_every_signal_in_order() {
    let server = TestServer::native().await;
    let (mut alice, alice_id) = server.named("alice").await;
    let (mut bob, welcome) = server.client().await;
    let bob_id = welcome["id"].as_str().unwrap().to_string();
    let token = welcome["resume"].as_str().expect("a resume token").to_string();
    bob.send(&json!({"type": "name", "name": "bob", "ref": 1})).await;
    bob.recv_type("ok").await;
    alice.recv_type("online").await;
    for c in [&mut alice, &mut bob] {
        c.send(&json!({"type": "join", "room": "den", "ref": "j"})).await;
        c.recv_type("ok").await;
    }
    alice.recv_type("joined").await;
    alice.send(&json!({"type": "call", "to": "bob", "ref": 2})).await;
    let call = alice.recv_type("ok").await["call"].as_str().unwrap().to_string();
    bob.recv_type("ring").await;
    bob.send(&json!({"type": "accept", "call": call})).await;
    bob.recv_type("ok").await;
    alice.recv_type("accepted").await;

    bob.drop_abruptly().await;
    assert_eq!(alice.recv_type("away").await, json!({"type": "away", "call": call, "peer": bob_id}));
    const N: u64 = 50;
    for i in 0..N {
        alice.send(&json!({"type": "signal", "to": bob_id, "ref": i, "data": {"i": i}})).await;
        let reply = alice.recv_type("ok").await;
        assert_eq!((reply["ref"].as_u64(), reply["queued"].as_bool()), (Some(i), Some(true)), "{reply}");
    }

    let (mut bob, frames) = server.resume(&token).await;
    assert_eq!(frames.len(), 1, "no error before the welcome: {frames:?}");
    assert_eq!(frames[0]["resumed"], true);
    assert_eq!(frames[0]["id"], bob_id);
    assert_eq!(frames[0]["resume"], token.as_str());
    assert_eq!(alice.recv_type("back").await, json!({"type": "back", "call": call, "peer": bob_id}));
    assert_eq!(read_signals(&mut bob, N as usize).await, (0..N).collect::<Vec<_>>());

    // Name, room and call survived.
    alice.send(&json!({"type": "signal", "to": "bob", "data": {"i": 100}})).await;
    alice.send(&json!({"type": "signal", "room": "den", "data": {"i": 101}})).await;
    assert_eq!(read_signals(&mut bob, 2).await, [100, 101]);
    bob.send(&json!({"type": "peers", "ref": 3})).await;
    assert_eq!(bob.recv_type("ok").await["peers"], json!([{"id": alice_id, "name": "alice"}]));
    alice.send(&json!({"type": "hangup", "call": call, "ref": 4})).await;
    alice.recv_type("ok").await;
    assert_eq!(bob.recv_type("ended").await["reason"], "hangup");

    assert_eq!(server.metric("switchboard_resumes_total").await, 1.0);
    assert_eq!(server.metric("switchboard_connections").await, 2.0);
    assert_eq!(server.metric("switchboard_peers_away").await, 0.0);
    server.running.shutdown().await;
}

#[tokio::test]
async fn after_grace_the_queue_is_dropped_senders_are_told_and_the_token_is_dead() {
    let server = TestServer::with(|c| c.grace = Duration::from_secs(30)).await;
    let (mut alice, _) = server.named("alice").await;
    let (mut bob, welcome) = server.client().await;
    let bob_id = welcome["id"].as_str().unwrap().to_string();
    let token = welcome["resume"].as_str().unwrap().to_string();
    bob.send(&json!({"type": "name", "name": "bob", "ref": 1})).await;
    bob.recv_type("ok").await;
    alice.recv_type("online").await;

    bob.drop_abruptly().await;
    server.wait_metric("switchboard_peers_away", |v| v == 1.0).await;
    for i in 0..3 {
        alice.send(&json!({"type": "signal", "to": bob_id, "ref": format!("r{i}"), "data": {"i": i}})).await;
        assert_eq!(alice.recv_type("ok").await["queued"], true);
    }
    common::fast_forward(Duration::from_secs(30)).await;
    let mut told = Vec::new();
    while told.len() < 3 {
        let f = alice.recv().await;
        match f["type"].as_str() {
            Some("undeliverable") => {
                assert_eq!(f["reason"], "peer_gone", "{f}");
                assert_eq!(f["to"], "bob", "{f}");
                told.push(f["ref"].as_str().unwrap().to_string());
            }
            Some("offline") => assert_eq!(f["peer"]["id"], bob_id),
            _ => panic!("unexpected {f}"),
        }
    }
    assert_eq!(told, ["r0", "r1", "r2"]);

    let (_bob, frames) = server.resume(&token).await;
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["type"], "error");
    assert_eq!(frames[0]["code"], "bad_token");
    assert_eq!(frames[1]["resumed"], false);
    assert_ne!(frames[1]["id"], bob_id, "a fresh peer");
    assert_ne!(frames[1]["resume"], token.as_str(), "with a fresh token");
    assert_eq!(server.metric(r#"switchboard_errors_total{code="bad_token"}"#).await, 1.0);
    server.running.shutdown().await;
}

#[tokio::test]
async fn resuming_over_a_live_connection_replaces_it_without_loss() {
    let server = TestServer::native().await;
    let (mut alice, _) = server.named("alice").await;
    let (mut old, welcome) = server.client().await;
    let bob_id = welcome["id"].as_str().unwrap().to_string();
    let token = welcome["resume"].as_str().unwrap().to_string();
    old.send(&json!({"type": "name", "name": "bob", "ref": 1})).await;
    old.recv_type("ok").await;
    alice.recv_type("online").await;

    for i in 0..5 {
        alice.send(&json!({"type": "signal", "to": "bob", "data": {"i": i}})).await;
    }
    let (mut new, frames) = server.resume(&token).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!((frames[0]["resumed"].as_bool(), frames[0]["id"].as_str()), (Some(true), Some(bob_id.as_str())));
    for i in 5..10 {
        alice.send(&json!({"type": "signal", "to": "bob", "data": {"i": i}})).await;
    }

    let (before, ending) = old.read_to_end().await;
    let reason = match ending {
        Ending::Close(1008, reason) => reason,
        other => panic!("expected close 1008, got {other:?}"),
    };
    assert!(reason.contains("replaced"), "{reason}");
    let mut seen = indexes(&before);
    let rest = 10 - seen.len();
    seen.extend(read_signals(&mut new, rest).await);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());

    // The replaced connection is counted out; the peer is not away.
    server.wait_metric("switchboard_connections", |v| v == 2.0).await;
    assert_eq!(server.metric("switchboard_peers_away").await, 0.0);
    assert_eq!(server.metric("switchboard_peers").await, 2.0);
    new.close().await;
    server.wait_metric("switchboard_connections", |v| v == 1.0).await;
    assert_eq!(server.metric("switchboard_peers").await, 1.0);
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_token_resumes_only_on_the_listener_that_issued_it() {
    let mut config =
        switchboard::Config::single(switchboard::dialect::DialectKind::Native, "127.0.0.1:0".parse().unwrap());
    config.listeners.push(config.listeners[0].clone());
    config.listeners[1].name = Some("second".into());
    let server = TestServer::start(config).await;
    let (mut bob, welcome) = server.client().await;
    let token = welcome["resume"].as_str().unwrap().to_string();
    bob.send(&json!({"type": "name", "name": "bob", "ref": 1})).await;
    bob.recv_type("ok").await;
    bob.drop_abruptly().await;
    server.wait_metric("switchboard_peers_away", |v| v == 1.0).await;

    // The other listener is another namespace: its token means nothing there.
    let mut other = Client::connect(&format!("ws://{}/ws?resume={token}", server.addr(1))).await;
    let err = other.recv_type("error").await;
    assert_eq!(err["code"], "bad_token");
    let fresh = other.recv_type("welcome").await;
    assert_eq!(fresh["resumed"], false);
    assert_ne!(fresh["id"], welcome["id"]);
    assert_eq!(server.metric("switchboard_peers_away").await, 1.0, "bob still waits on his own listener");

    let (_bob, frames) = server.resume(&token).await;
    assert_eq!((frames.len(), &frames[0]["id"]), (1, &welcome["id"]));
    server.running.shutdown().await;
}

#[tokio::test]
async fn resuming_over_a_stalled_connection_delivers_what_it_never_wrote_first_and_in_order() {
    // Room for every signal in bob's outbox: bob is not dropped as slow.
    let server = TestServer::with(|c| c.queue_bytes = 16 << 20).await;
    let (mut alice, _) = server.named("alice").await;
    let (mut old, welcome) = server.client().await;
    let token = welcome["resume"].as_str().unwrap().to_string();
    old.send(&json!({"type": "name", "name": "bob", "ref": 1})).await;
    old.recv_type("ok").await;
    alice.recv_type("online").await;

    // Bob stops reading: large signals fill the socket buffers, and the rest
    // waits in bob's outbox (200 x 60 KB: more than the buffers hold, less
    // than this outbox's budget, so bob is not dropped as slow).
    const N: u64 = 200;
    let pad = "x".repeat(60_000);
    for i in 0..N {
        let mut m = json!({"type": "signal", "to": "bob", "data": {"i": i, "pad": pad}});
        if i == N - 1 {
            m["ref"] = json!("last");
        }
        alice.send(&m).await;
    }
    assert_eq!(alice.recv_type("ok").await["ref"], "last", "every signal reached the hub");

    let (mut new, frames) = server.resume(&token).await;
    assert_eq!(frames.last().map(|f| f["resumed"].clone()), Some(json!(true)), "{frames:?}");
    for i in N..N + 5 {
        alice.send(&json!({"type": "signal", "to": "bob", "data": {"i": i}})).await;
    }

    let mut got = Vec::new();
    while got.last() != Some(&(N + 4)) {
        got.push(new.recv_type("signal").await["data"]["i"].as_u64().expect("index"));
    }
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "in order, without gaps: {got:?}");
    assert!(got.len() > 5, "the stalled connection had signals it never wrote: {got:?}");

    // What the old connection did write, its client can still read: the two
    // together miss nothing (the signal being written may come twice).
    let (before, _) = old.read_to_end().await;
    let old_seen = indexes(&before);
    assert_eq!(old_seen, (0..old_seen.len() as u64).collect::<Vec<_>>());
    assert!(got[0] <= old_seen.len() as u64, "no gap: old {} signals, new from {}", old_seen.len(), got[0]);
    server.running.shutdown().await;
}
