//! Faults of a cluster over a real Redis: a node killed with SIGKILL, Redis
//! restarting, a node drained with SIGTERM. Nothing sent to a peer after
//! its node died is lost: it resumes on another node and receives it, in order.

mod common;

use std::time::Duration;

use common::redis::Redis;
use common::{Bin, Client, TestServer, WAIT};
use serde_json::{Value, json};
use switchboard::config::ClusterConfig;

const CLUSTER: &str = "faults";

async fn node(redis: &Redis) -> TestServer {
    let cluster = ClusterConfig { redis: redis.url(), name: CLUSTER.into(), node_timeout: Duration::from_secs(2) };
    TestServer::with(|c| c.cluster = Some(cluster)).await
}

/// A node in its own process (so it can be killed).
fn node_process(redis: &Redis) -> Bin {
    Bin::spawn(&["--listen", "127.0.0.1:0", "--redis", &redis.url(), "--cluster", CLUSTER, "--node-timeout", "2"], &[])
}

/// Connects to `/ws` of `addr` and takes `name`; the client, its id and token.
async fn named_at(addr: std::net::SocketAddr, name: &str) -> (Client, String, String) {
    let mut c = Client::connect(&format!("ws://{addr}/ws")).await;
    let welcome = c.recv_type("welcome").await;
    c.send(&json!({"type": "name", "name": name, "ref": "n"})).await;
    loop {
        if c.recv().await["type"] == "ok" {
            break;
        }
    }
    (c, welcome["id"].as_str().unwrap().into(), welcome["resume"].as_str().unwrap().into())
}

/// The next frame of type `ty`, skipping presence.
async fn next_of(c: &mut Client, ty: &str) -> Value {
    loop {
        let v = c.recv().await;
        if v["type"] == ty {
            return v;
        }
        assert!(v["type"] == "online" || v["type"] == "offline", "expected '{ty}', got {v}");
    }
}

/// alice (in-process node) and bob (node process) in an accepted call.
async fn call(alice: &mut Client, bob: &mut Client, bob_id: &str) -> String {
    alice.send(&json!({"type": "call", "to": bob_id, "ref": 1})).await;
    let call = next_of(alice, "ok").await["call"].as_str().unwrap().to_string();
    next_of(bob, "ring").await;
    bob.send(&json!({"type": "accept", "call": call, "ref": 2})).await;
    next_of(bob, "ok").await;
    next_of(alice, "accepted").await;
    call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_peer_resumes_elsewhere_and_gets_every_message_in_order() {
    let redis = Redis::start();
    let (a, c) = (node(&redis).await, node(&redis).await);
    let b = node_process(&redis);
    let b_addr = b.addr();
    let (mut alice, alice_id, _) = named_at(a.addr(0), "alice").await;
    let (mut bob, bob_id, bob_token) = named_at(b_addr, "bob").await;
    a.wait_metric("switchboard_peers", |v| v == 2.0).await;
    let call = call(&mut alice, &mut bob, &bob_id).await;

    let mut b = b;
    b.signal("KILL");
    b.wait_exit();
    bob.drop_abruptly().await;
    // Sent after the kill, before anyone noticed: the first of them finds
    // nobody reading node B's channel.
    for i in 0..10 {
        alice.send(&json!({"type": "signal", "to": bob_id, "data": {"n": i}})).await;
    }
    // The partner is told, as when a peer drops.
    let away = next_of(&mut alice, "away").await;
    assert_eq!((away["call"].as_str(), away["peer"].as_str()), (Some(call.as_str()), Some(bob_id.as_str())));

    // bob resumes on node C with his token: same id, every message, in order.
    let mut bob = Client::connect(&format!("ws://{}/ws?resume={bob_token}", c.addr(0))).await;
    let welcome = bob.recv_type("welcome").await;
    assert_eq!((welcome["resumed"].as_bool(), welcome["id"].as_str()), (Some(true), Some(bob_id.as_str())));
    for i in 0..10 {
        let got = next_of(&mut bob, "signal").await;
        assert_eq!((got["from"]["id"].as_str(), &got["data"]["n"]), (Some(alice_id.as_str()), &json!(i)));
    }
    assert_eq!(next_of(&mut alice, "back").await["peer"], bob_id);
    // The call goes on across A and C.
    alice.send(&json!({"type": "signal", "to": bob_id, "data": {"n": 10}})).await;
    assert_eq!(next_of(&mut bob, "signal").await["data"]["n"], 10);
    bob.send(&json!({"type": "hangup", "call": call})).await;
    assert_eq!(next_of(&mut alice, "ended").await["reason"], "hangup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_peers_leave_when_nobody_resumes_them() {
    let redis = Redis::start();
    let a = TestServer::with(|cfg| {
        cfg.cluster =
            Some(ClusterConfig { redis: redis.url(), name: CLUSTER.into(), node_timeout: Duration::from_secs(2) });
        cfg.grace = Duration::from_secs(1);
    })
    .await;
    let mut b = Bin::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--redis",
            &redis.url(),
            "--cluster",
            CLUSTER,
            "--node-timeout",
            "2",
            "--grace",
            "1",
        ],
        &[],
    );
    let (mut alice, _, _) = named_at(a.addr(0), "alice").await;
    let (_bob, bob_id, _) = named_at(b.addr(), "bob").await;
    assert_eq!(next_of(&mut alice, "online").await["peer"]["id"], bob_id);
    b.signal("KILL");
    b.wait_exit();
    // Nobody sends to node B: its silence gives it away within the node
    // timeout, and bob leaves once his grace is over.
    let t0 = std::time::Instant::now();
    let offline = tokio::time::timeout(WAIT, next_of(&mut alice, "offline")).await.expect("bob goes offline");
    assert_eq!(offline["peer"]["id"], bob_id);
    assert!(t0.elapsed() < Duration::from_secs(5), "within node timeout plus grace: {:?}", t0.elapsed());
    a.wait_metric("switchboard_peers", |v| v == 1.0).await;
    assert_eq!(a.metric("switchboard_node_peers").await, 1.0, "the dead node's peers are forgotten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_recover_by_themselves_when_redis_restarts() {
    let mut redis = Redis::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let (mut alice, _, _) = named_at(a.addr(0), "alice").await;
    let (mut bob, bob_id, _) = named_at(b.addr(0), "bob").await;
    a.wait_metric("switchboard_peers", |v| v == 2.0).await;
    let call = call(&mut alice, &mut bob, &bob_id).await;
    alice.send(&json!({"type": "signal", "to": bob_id, "data": "before"})).await;
    assert_eq!(next_of(&mut bob, "signal").await["data"], "before");

    redis.kill();
    a.wait_metric("switchboard_redis_up", |v| v == 0.0).await;
    let (_, health) = a.get("/healthz").await;
    assert!(health.starts_with("degraded"), "{health}");
    // A send to another node fails with a clear error, in bounded time.
    alice.send(&json!({"type": "signal", "to": bob_id, "ref": 7, "data": "during"})).await;
    assert_eq!(next_of(&mut alice, "ok").await["ref"], 7);
    let undeliverable = tokio::time::timeout(WAIT, next_of(&mut alice, "undeliverable")).await.expect("told in time");
    assert_eq!((undeliverable["reason"].as_str(), &undeliverable["ref"]), (Some("unreachable"), &json!(7)));
    // Peers of one node keep working.
    let (mut carol, carol_id, _) = named_at(a.addr(0), "carol").await;
    alice.send(&json!({"type": "signal", "to": carol_id, "data": "local"})).await;
    assert_eq!(next_of(&mut carol, "signal").await["data"], "local");

    redis.restart();
    for n in [&a, &b] {
        n.wait_metric("switchboard_redis_up", |v| v == 1.0).await;
        n.wait_metric("switchboard_cluster_nodes", |v| v == 2.0).await;
        n.wait_metric("switchboard_peers", |v| v == 3.0).await;
    }
    let (_, health) = a.get("/healthz").await;
    assert!(health.starts_with("ok"), "{health}");
    alice.send(&json!({"type": "signal", "to": bob_id, "data": "after"})).await;
    assert_eq!(next_of(&mut bob, "signal").await["data"], "after");
    // Names are back in Redis: bob's name is still his.
    let (mut other, _) = a.client().await;
    other.send(&json!({"type": "name", "name": "bob", "ref": "n"})).await;
    assert_eq!(next_of(&mut other, "error").await["code"], "name_taken");
    // Nobody was taken for dead: the call went on without "away"/"back"
    // (`next_of` fails on any frame but presence before the one awaited).
    bob.send(&json!({"type": "hangup", "call": call})).await;
    assert_eq!(next_of(&mut alice, "ended").await["reason"], "hangup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_hands_its_peers_and_their_messages_to_another() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let mut b = node_process(&redis);
    let b_addr = b.addr();
    let (mut alice, alice_id, _) = named_at(a.addr(0), "alice").await;
    let (mut bob, bob_id, bob_token) = named_at(b_addr, "bob").await;
    a.wait_metric("switchboard_peers", |v| v == 2.0).await;
    let call = call(&mut alice, &mut bob, &bob_id).await;

    b.signal("TERM");
    // bob is told to reconnect (the server's shutdown close).
    let (_, ending) = bob.read_to_end().await;
    assert!(matches!(ending, common::Ending::Close(1012, _)), "{ending:?}");
    assert_eq!(next_of(&mut alice, "away").await["call"], call);
    // Sent while bob is between nodes.
    for i in 0..5 {
        alice.send(&json!({"type": "signal", "to": bob_id, "data": {"n": i}})).await;
    }
    assert!(b.wait_exit().success());
    let mut bob = Client::connect(&format!("ws://{}/ws?resume={bob_token}", a.addr(0))).await;
    let welcome = bob.recv_type("welcome").await;
    assert_eq!(welcome["resumed"], true);
    for i in 0..5 {
        let got = next_of(&mut bob, "signal").await;
        assert_eq!((got["from"]["id"].as_str(), &got["data"]["n"]), (Some(alice_id.as_str()), &json!(i)));
    }
    assert_eq!(next_of(&mut alice, "back").await["peer"], bob_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stops_in_bounded_time_while_redis_is_down() {
    let mut redis = Redis::start();
    let mut b = node_process(&redis);
    let addr = b.addr();
    let (_alice, _, _) = named_at(addr, "alice").await;
    redis.kill();
    b.wait_line("Redis is unreachable");
    b.signal("TERM");
    assert!(b.wait_exit().success(), "exits cleanly without Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_taken_for_dead_that_comes_back_gets_what_waited_for_its_peers() {
    let redis = Redis::start();
    let a = node(&redis).await;
    let b = node_process(&redis);
    let (mut alice, _, _) = named_at(a.addr(0), "alice").await;
    let b_addr = b.addr();
    let (mut bob, bob_id, _) = named_at(b_addr, "bob").await;
    a.wait_metric("switchboard_peers", |v| v == 2.0).await;
    // Node B stalls past the node timeout: A takes it for dead.
    b.signal("STOP");
    tokio::time::timeout(WAIT, async {
        while a.metric("switchboard_cluster_nodes").await != 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("A counts B dead");
    for i in 0..5 {
        alice.send(&json!({"type": "signal", "to": bob_id, "data": {"n": i}})).await;
    }
    // Someone arrives on A meanwhile: B must learn of her when it is back.
    let (_carol, _, _) = named_at(a.addr(0), "carol").await;
    b.signal("CONT");
    a.wait_metric("switchboard_cluster_nodes", |v| v == 2.0).await;
    tokio::time::timeout(WAIT, async {
        while common::metric_in(&common::http_get(b_addr, "/metrics").await.1, "switchboard_peers") != 3.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("node B knows all three peers again");
    for i in 0..5 {
        assert_eq!(next_of(&mut bob, "signal").await["data"]["n"], i);
    }
    alice.send(&json!({"type": "signal", "to": bob_id, "data": "later"})).await;
    assert_eq!(next_of(&mut bob, "signal").await["data"], "later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reach_redis_over_tls() {
    let dir = common::temp_dir("rediss");
    let (status, _, stderr) = Bin::run(&["cert", "--dir", dir.to_str().unwrap()]);
    assert!(status.success(), "{stderr}");
    let redis = Redis::start_tls(&dir.join("cert.crt"), &dir.join("cert.key"));
    // The nodes trust the CA through the standard variable (docs/cluster.md).
    let ca = dir.join("ca.crt");
    let env = [("SSL_CERT_FILE", ca.to_str().unwrap())];
    let args = ["--listen", "127.0.0.1:0", "--redis", &redis.url(), "--cluster", "tls", "--node-timeout", "2"];
    let (a, b) = (Bin::spawn(&args, &env), Bin::spawn(&args, &env));
    a.wait_line("joined the cluster");
    let (mut alice, _, _) = named_at(a.addr(), "alice").await;
    let (mut bob, bob_id, _) = named_at(b.addr(), "bob").await;
    assert_eq!(next_of(&mut alice, "online").await["peer"]["id"], bob_id);
    alice.send(&json!({"type": "signal", "to": bob_id, "data": "over tls"})).await;
    assert_eq!(next_of(&mut bob, "signal").await["data"], "over tls");
}
