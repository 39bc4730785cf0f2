//! Several nodes over one real Redis behave as one server: calls, presence,
//! rooms and names across nodes, in several dialects.

mod common;

use std::time::Duration;

use common::redis::Redis;
use common::{Client, TestServer};
use serde_json::json;
use switchboard::config::ClusterConfig;

/// A node of cluster `name` on `redis`, serving the native dialect.
async fn node(redis: &Redis, name: &str) -> TestServer {
    let cluster = ClusterConfig { redis: redis.url(), name: name.into(), node_timeout: Duration::from_secs(2) };
    TestServer::with(|c| c.cluster = Some(cluster)).await
}

/// Waits until every node counts `n` peers cluster-wide.
async fn settle(nodes: &[&TestServer], n: f64) {
    for s in nodes {
        s.wait_metric("switchboard_peers", |v| v == n).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_between_peers_on_two_nodes_goes_through_redis() {
    let redis = Redis::start();
    let (n1, n2, n3) = (node(&redis, "call").await, node(&redis, "call").await, node(&redis, "call").await);
    for n in [&n1, &n2, &n3] {
        n.wait_metric("switchboard_cluster_nodes", |v| v == 3.0).await;
    }
    let (mut alice, alice_id) = n1.named("alice").await;
    settle(&[&n1, &n2, &n3], 1.0).await;
    let (mut bob, bob_id) = n2.named("bob").await;
    let online = alice.recv_type("online").await;
    assert_eq!(online["peer"], json!({"id": bob_id, "name": "bob"}));
    settle(&[&n1, &n2, &n3], 2.0).await;

    alice.send(&json!({"type": "call", "to": bob_id, "ref": 1, "meta": {"video": true}})).await;
    let call = alice.recv_type("ok").await["call"].as_str().unwrap().to_string();
    let ring = bob.recv_type("ring").await;
    assert_eq!(ring["call"], call);
    assert_eq!(ring["from"], json!({"id": alice_id, "name": "alice"}));
    bob.send(&json!({"type": "accept", "call": call, "ref": 2})).await;
    assert_eq!(bob.recv_type("ok").await["ref"], 2);
    assert_eq!(alice.recv_type("accepted").await["by"]["id"], bob_id);

    // Signals both ways, in order.
    for i in 0..20 {
        alice.send(&json!({"type": "signal", "to": bob_id, "data": {"n": i}})).await;
        bob.send(&json!({"type": "signal", "to": alice_id, "data": {"n": i}})).await;
    }
    for i in 0..20 {
        let got = bob.recv_type("signal").await;
        assert_eq!((got["from"]["id"].clone(), got["data"]["n"].clone()), (json!(alice_id), json!(i)));
        assert_eq!(alice.recv_type("signal").await["data"]["n"], i);
    }
    bob.send(&json!({"type": "hangup", "call": call})).await;
    bob.recv_type("ok").await;
    assert_eq!(alice.recv_type("ended").await, json!({"type": "ended", "call": call, "reason": "hangup"}));

    // A clean goodbye on one node is an "offline" on the other.
    bob.close().await;
    assert_eq!(alice.recv_type("offline").await["peer"]["id"], bob_id);
    settle(&[&n1, &n2, &n3], 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_unique_across_nodes() {
    let redis = Redis::start();
    let (n1, n2) = (node(&redis, "names").await, node(&redis, "names").await);
    let (_alice, _) = n1.named("alice").await;
    settle(&[&n1, &n2], 1.0).await;
    let (mut other, _) = n2.client().await;
    other.send(&json!({"type": "name", "name": "alice", "ref": "n"})).await;
    let err = other.recv_type("error").await;
    assert_eq!(err["code"], "name_taken", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_differ_across_nodes() {
    let redis = Redis::start();
    let (n1, n2) = (node(&redis, "ids").await, node(&redis, "ids").await);
    let (_a, wa) = n1.client().await;
    let (_b, wb) = n2.client().await;
    assert_ne!(wa["id"], wb["id"]);
    assert_ne!(wa["resume"], wb["resume"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_for_one_name_on_two_nodes_has_one_winner() {
    let redis = Redis::start();
    let (n1, n2) = (node(&redis, "race").await, node(&redis, "race").await);
    for round in 0..10 {
        let name = format!("carol{round}");
        let (mut a, _) = n1.client().await;
        let (mut b, _) = n2.client().await;
        let claim = json!({"type": "name", "name": name, "ref": "n"});
        let (_, _) = tokio::join!(a.send(&claim), b.send(&claim));
        let (ra, rb) = tokio::join!(a.recv(), b.recv());
        let won = [&ra, &rb].iter().filter(|r| r["type"] == "ok").count();
        assert_eq!(won, 1, "exactly one claim of {name} wins: {ra} / {rb}");
        let lost = if ra["type"] == "ok" { &rb } else { &ra };
        assert_eq!(lost["code"], "name_taken", "{lost}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_a_reader_on_another_node_arrives_whole_and_costs_only_the_sender() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let redis = Redis::start();
    let small = |c: &mut switchboard::Config| {
        c.cluster =
            Some(ClusterConfig { redis: redis.url(), name: "burst".into(), node_timeout: Duration::from_secs(2) });
        c.queue_bytes = 64 << 10;
    };
    let (n1, n2) = (TestServer::with(small).await, TestServer::with(small).await);
    let (mut victim, victim_id) = n2.named("victim").await;
    let (mut attacker, _) = n1.named("attacker").await;
    settle(&[&n1, &n2], 2.0).await;
    // 16 MB at once: far more than the receiver's budget and than what
    // loopback socket buffers hold.
    let pad = "x".repeat(16_000);
    let sending = tokio::spawn(async move {
        for i in 0..1000 {
            let frame = json!({"type": "signal", "to": victim_id, "data": {"i": i, "pad": pad}}).to_string();
            attacker.ws.feed(Message::Text(frame.into())).await.expect("feed");
        }
        attacker.ws.flush().await.expect("flush");
        attacker
    });
    // The victim looks away for a moment (well within --slow-after).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..1000 {
        let got = loop {
            let v = victim.recv().await;
            if v["type"] == "signal" {
                break v;
            }
        };
        assert_eq!(got["data"]["i"], i);
    }
    let mut attacker = sending.await.expect("the sender finishes");
    for n in [&n1, &n2] {
        assert_eq!(n.metric("switchboard_queue_drops_total").await, 0.0);
        assert_eq!(n.metric("switchboard_deliveries_refused_total").await, 0.0);
    }
    attacker.send(&json!({"type": "ping", "ref": "a"})).await;
    assert_eq!(attacker.recv_type("pong").await["ref"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stops_reading_what_another_node_sends_is_closed_as_slow() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let redis = Redis::start();
    let small = |c: &mut switchboard::Config| {
        c.cluster =
            Some(ClusterConfig { redis: redis.url(), name: "slow".into(), node_timeout: Duration::from_secs(2) });
        c.queue_bytes = 64 << 10;
        c.slow_after = Duration::from_secs(1);
    };
    let (n1, n2) = (TestServer::with(small).await, TestServer::with(small).await);
    let (mut victim, victim_id) = n2.named("victim").await;
    let (mut sender, _) = n1.named("sender").await;
    settle(&[&n1, &n2], 2.0).await;
    // 16 MB for a receiver that reads nothing: more than its budget and
    // than loopback socket buffers hold.
    let pad = "x".repeat(16_000);
    let sending = tokio::spawn(async move {
        for i in 0..1000 {
            let frame = json!({"type": "signal", "to": victim_id, "data": {"i": i, "pad": pad}}).to_string();
            if sender.ws.feed(Message::Text(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = sender.ws.flush().await;
        sender
    });
    n2.wait_metric("switchboard_queue_drops_total", |v| v == 1.0).await;
    let (_, ending) = victim.read_to_end().await;
    assert!(matches!(ending, common::Ending::Close(1008, _)), "{ending:?}");
    let mut sender = sending.await.expect("the sender goes on");
    sender.send(&json!({"type": "ping", "ref": "s"})).await;
    loop {
        let v = sender.recv().await;
        if v["type"] == "pong" {
            break;
        }
    }
}

#[allow(dead_code)]
async fn unused(_: Client) {}
