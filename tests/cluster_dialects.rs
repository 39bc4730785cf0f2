//! Two nodes over one real Redis behave as one server in every dialect: the
//! two sides of each exchange are on different nodes, and every frame is
//! checked as exactly as in the single-node transcripts (`dialect_*.rs`).
//! Presence, rooms, peer lists, discovery and duplicate names span nodes.

mod common;
mod eio;

use std::time::Duration;

use common::redis::Redis;
use common::samples::{ANSWER, CANDIDATE, OFFER};
use common::{Client, TestServer, WAIT, expect_exact as expect, http_get};
use serde_json::{Value, json};
use switchboard::Config;
use switchboard::config::ClusterConfig;
use switchboard::dialect::DialectKind;
use switchboard::hub::{Hub, SpaceId};

const QUIET: Duration = Duration::from_millis(300);

/// A node of cluster `name` on `redis` with one listener of `dialect`.
async fn node(redis: &Redis, name: &str, dialect: DialectKind, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::single(dialect, "127.0.0.1:0".parse().expect("addr"));
    config.cluster =
        Some(ClusterConfig { redis: redis.url(), name: name.into(), node_timeout: Duration::from_secs(2) });
    tweak(&mut config);
    TestServer::start(config).await
}

/// `count` nodes of one cluster that know each other.
async fn nodes(
    redis: &Redis,
    name: &str,
    count: usize,
    dialect: DialectKind,
    tweak: impl Fn(&mut Config),
) -> Vec<TestServer> {
    let mut all = Vec::new();
    for _ in 0..count {
        all.push(node(redis, name, dialect, &tweak).await);
    }
    for n in &all {
        n.wait_metric("switchboard_cluster_nodes", |v| v == count as f64).await;
    }
    all
}

/// Two nodes of one cluster that know each other.
async fn two(redis: &Redis, name: &str, dialect: DialectKind, tweak: impl Fn(&mut Config)) -> (TestServer, TestServer) {
    let mut all = nodes(redis, name, 2, dialect, tweak).await;
    let n2 = all.pop().expect("two nodes");
    (all.pop().expect("two nodes"), n2)
}

/// Waits until every node counts `n` peers cluster-wide (the replicas of
/// the other node's peers are in place).
async fn settle(nodes: &[&TestServer], n: f64) {
    for s in nodes {
        s.wait_metric("switchboard_peers", |v| v == n).await;
    }
}

/// Waits until the hub of every node in `nodes` satisfies `ok` (about the
/// space of its first listener). [`settle`] counts a peer as soon as it
/// connects; what it does next (claims, joins) comes in later items.
async fn until_hub(nodes: &[&TestServer], what: &str, ok: impl Fn(&Hub, SpaceId) -> bool) {
    for s in nodes {
        let (hub, space) = (&s.running.hub, s.running.spaces[0]);
        tokio::time::timeout(WAIT, async {
            while !hub.read(|h| ok(h, space)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("node {} never saw {what}", s.addr(0)));
    }
}

/// Waits until every node has replayed a claim of `name`: a signal routed
/// by that name on any of them finds its holder.
async fn until_named(nodes: &[&TestServer], name: &str) {
    until_hub(nodes, &format!("{name} claimed"), |h, space| h.lookup(space, name).is_some()).await;
}

/// Waits until every node counts `n` members in `room`.
async fn until_members(nodes: &[&TestServer], room: &str, n: usize) {
    until_hub(nodes, &format!("{n} in {room:?}"), |h, space| h.members(space, room).len() == n).await;
}

/// The hub room of native's lobby (presence), as `dialect::native` names it.
const LOBBY: &str = "\u{0}lobby";
/// The hub room of flutter's peers list, as `dialect::flutter` names it.
const FLUTTER_PEERS: &str = "\u{0}flutter-peers";

// ---------------------------------------------------------------- native

/// Connects to `/ws` of `s` and takes `name`: the client, its id and the
/// `ok` reply (which lists the peers already online).
async fn native_named(s: &TestServer, name: &str) -> (Client, String, Value) {
    let (mut c, welcome) = s.client().await;
    c.send(&json!({"type": "name", "name": name, "ref": "n"})).await;
    let ok = c.recv_type("ok").await;
    (c, welcome["id"].as_str().expect("an id").to_string(), ok)
}

fn peer(id: &str, name: &str) -> Value {
    json!({"id": id, "name": name})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_lobby_presence_and_rooms_span_nodes() {
    let redis = Redis::start();
    let all = nodes(&redis, "native-rooms", 3, DialectKind::Native, |_| {}).await;
    let (n1, n2, n3) = (&all[0], &all[1], &all[2]);
    let (mut alice, alice_id, ok) = native_named(n1, "alice").await;
    assert_eq!(ok, json!({"type": "ok", "ref": "n", "name": "alice", "peers": []}));
    until_members(&[n2, n3], LOBBY, 1).await;

    // Bob on node 2 sees alice (node 1) online in his reply; she is told.
    let (mut bob, bob_id, ok) = native_named(n2, "bob").await;
    assert_eq!(ok, json!({"type": "ok", "ref": "n", "name": "bob", "peers": [peer(&alice_id, "alice")]}));
    assert_eq!(alice.recv().await, json!({"type": "online", "peer": peer(&bob_id, "bob")}));
    settle(&[n1, n2, n3], 2.0).await;
    alice.send(&json!({"type": "peers", "ref": "p"})).await;
    assert_eq!(alice.recv().await, json!({"type": "ok", "ref": "p", "peers": [peer(&bob_id, "bob")]}));
    bob.send(&json!({"type": "peers", "ref": "p"})).await;
    assert_eq!(bob.recv().await, json!({"type": "ok", "ref": "p", "peers": [peer(&alice_id, "alice")]}));

    // Room "den": alice (node 1) first, then bob (node 2) and carol (node 3).
    alice.send(&json!({"type": "join", "room": "den", "ref": "j"})).await;
    assert_eq!(alice.recv().await, json!({"type": "ok", "ref": "j", "room": "den", "members": []}));
    for n in [n1, n2, n3] {
        n.wait_metric("switchboard_rooms", |v| v == 1.0).await;
    }
    bob.send(&json!({"type": "join", "room": "den", "ref": "j"})).await;
    assert_eq!(
        bob.recv().await,
        json!({"type": "ok", "ref": "j", "room": "den", "members": [peer(&alice_id, "alice")]})
    );
    assert_eq!(alice.recv().await, json!({"type": "joined", "room": "den", "peer": peer(&bob_id, "bob")}));
    let (mut carol, carol_id, _) = native_named(n3, "carol").await;
    assert_eq!(alice.recv().await, json!({"type": "online", "peer": peer(&carol_id, "carol")}));
    assert_eq!(bob.recv().await, json!({"type": "online", "peer": peer(&carol_id, "carol")}));
    // Bob joined on node 2: node 3 must know that before carol joins there.
    until_members(&[n3], "den", 2).await;
    carol.send(&json!({"type": "join", "room": "den", "ref": "j"})).await;
    let members = json!([peer(&alice_id, "alice"), peer(&bob_id, "bob")]);
    assert_eq!(carol.recv().await, json!({"type": "ok", "ref": "j", "room": "den", "members": members}));
    for c in [&mut alice, &mut bob] {
        assert_eq!(c.recv().await, json!({"type": "joined", "room": "den", "peer": peer(&carol_id, "carol")}));
    }

    // A broadcast from node 2 reaches the members on nodes 1 and 3, and
    // one from node 1 those on nodes 2 and 3.
    bob.send(&json!({"type": "signal", "room": "den", "data": {"hi": "from bob"}})).await;
    let from_bob = format!(
        r#"{{"type":"signal","from":{{"id":"{bob_id}","name":"bob"}},"room":"den","data":{{"hi":"from bob"}}}}"#
    );
    expect(&mut alice, &from_bob).await;
    expect(&mut carol, &from_bob).await;
    alice.send(&json!({"type": "signal", "room": "den", "data": {"hi": "from alice"}})).await;
    let from_alice = format!(
        r#"{{"type":"signal","from":{{"id":"{alice_id}","name":"alice"}},"room":"den","data":{{"hi":"from alice"}}}}"#
    );
    expect(&mut bob, &from_alice).await;
    expect(&mut carol, &from_alice).await;
    bob.expect_silence(QUIET).await;

    // Leaving on node 2 is a `left` on nodes 1 and 3, and the other way round.
    bob.send(&json!({"type": "leave", "room": "den", "ref": "l"})).await;
    assert_eq!(bob.recv().await, json!({"type": "ok", "ref": "l", "room": "den"}));
    for c in [&mut alice, &mut carol] {
        assert_eq!(c.recv().await, json!({"type": "left", "room": "den", "peer": peer(&bob_id, "bob")}));
    }
    bob.send(&json!({"type": "join", "room": "ops", "ref": "j"})).await;
    assert_eq!(bob.recv().await, json!({"type": "ok", "ref": "j", "room": "ops", "members": []}));
    for n in [n1, n2, n3] {
        n.wait_metric("switchboard_rooms", |v| v == 2.0).await;
    }
    alice.send(&json!({"type": "join", "room": "ops", "ref": "j"})).await;
    assert_eq!(alice.recv().await, json!({"type": "ok", "ref": "j", "room": "ops", "members": [peer(&bob_id, "bob")]}));
    assert_eq!(bob.recv().await, json!({"type": "joined", "room": "ops", "peer": peer(&alice_id, "alice")}));
    carol.expect_silence(QUIET).await;

    // A goodbye on node 1 is `offline` and `left` on nodes 2 and 3; one on
    // node 2 is `offline` on node 3.
    // Rooms are left in the order they were joined, the lobby first.
    alice.close().await;
    assert_eq!(bob.recv().await, json!({"type": "offline", "peer": peer(&alice_id, "alice")}));
    assert_eq!(bob.recv().await, json!({"type": "left", "room": "ops", "peer": peer(&alice_id, "alice")}));
    assert_eq!(carol.recv().await, json!({"type": "offline", "peer": peer(&alice_id, "alice")}));
    assert_eq!(carol.recv().await, json!({"type": "left", "room": "den", "peer": peer(&alice_id, "alice")}));
    bob.close().await;
    assert_eq!(carol.recv().await, json!({"type": "offline", "peer": peer(&bob_id, "bob")}));
    settle(&[n1, n2, n3], 1.0).await;
    for n in [n1, n2, n3] {
        n.wait_metric("switchboard_rooms", |v| v == 1.0).await;
    }
}

/// Claims `name` from `c` until it is granted (the other node's record of
/// a released name goes with its next heartbeat); fails after [`WAIT`].
async fn claim_until_granted(c: &mut Client, name: &str) -> Value {
    let give_up = tokio::time::Instant::now() + WAIT;
    loop {
        c.send(&json!({"type": "name", "name": name, "ref": "n"})).await;
        let reply = c.recv().await;
        if reply["type"] == "ok" {
            return reply;
        }
        assert_eq!(reply["code"], "name_taken", "{reply}");
        assert!(tokio::time::Instant::now() < give_up, "{name} was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_a_name_held_on_one_node_is_refused_on_the_other_until_released() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "native-names", DialectKind::Native, |_| {}).await;
    let (dora, dora_id, _) = native_named(&n1, "dora").await;
    let (mut other, _) = n2.client().await;
    settle(&[&n1, &n2], 2.0).await;
    for n in [&n1, &n2] {
        let (mut c, _) = n.client().await;
        c.send(&json!({"type": "name", "name": "dora", "ref": "n"})).await;
        let err = c.recv_type("error").await;
        assert_eq!((&err["code"], &err["ref"]), (&json!("name_taken"), &json!("n")), "{err}");
        c.close().await;
    }
    other.send(&json!({"type": "name", "name": "dora", "ref": "n"})).await;
    assert_eq!(other.recv_type("error").await["code"], "name_taken");

    // Released on node 1 (its holder left): node 2 may grant it.
    dora.close().await;
    settle(&[&n1, &n2], 1.0).await;
    let ok = claim_until_granted(&mut other, "dora").await;
    assert_eq!(ok, json!({"type": "ok", "ref": "n", "name": "dora", "peers": []}));
    until_named(&[&n1, &n2], "dora").await;
    // Now held on node 2: refused on node 1.
    let (mut late, late_id) = n1.client().await;
    assert_ne!(late_id["id"], json!(dora_id));
    late.send(&json!({"type": "name", "name": "dora", "ref": "n"})).await;
    assert_eq!(late.recv_type("error").await["code"], "name_taken");
}

// ---------------------------------------------------------------- peerjs

fn peerjs_url(s: &TestServer, id: &str, token: &str) -> String {
    s.ws_url(&format!("/peerjs?key=peerjs&id={id}&token={token}&version=1.5.5"))
}

async fn peerjs_open(s: &TestServer, id: &str, token: &str) -> Client {
    let mut c = Client::connect(&peerjs_url(s, id, token)).await;
    assert_eq!(c.recv_text().await, r#"{"type":"OPEN"}"#);
    c
}

async fn peerjs_nodes(redis: &Redis, name: &str) -> (TestServer, TestServer) {
    two(redis, name, DialectKind::Peerjs, |c| c.peerjs.allow_discovery = true).await
}

/// `GET /peerjs/peers` of `s`, sorted.
async fn discovered(s: &TestServer) -> Vec<String> {
    let (status, body) = http_get(s.addr(0), "/peerjs/peers").await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = serde_json::from_str(&body).expect("a JSON array");
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peerjs_relays_across_nodes_with_exact_frames_and_discovery_lists_both() {
    let redis = Redis::start();
    let (n1, n2) = peerjs_nodes(&redis, "peerjs-relay").await;
    let mut a = peerjs_open(&n1, "alice", "ta").await;
    let mut b = peerjs_open(&n2, "bob", "tb").await;
    settle(&[&n1, &n2], 2.0).await;
    for n in [&n1, &n2] {
        assert_eq!(discovered(n).await, ["alice", "bob"]);
    }

    a.send_text(r#"{"type":"OFFER","src":"mallory","dst":"bob","payload":{"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"media","connectionId":"mc_1","x":[1, 2.50]}}"#).await;
    assert_eq!(
        b.recv_text().await,
        r#"{"type":"OFFER","src":"alice","dst":"bob","payload":{"sdp":{"type":"offer","sdp":"v=0\r\n"},"type":"media","connectionId":"mc_1","x":[1, 2.50]}}"#
    );
    b.send_text(r#"{"type":"ANSWER","dst":"alice","payload":{"sdp":"a"}}"#).await;
    assert_eq!(a.recv_text().await, r#"{"type":"ANSWER","src":"bob","dst":"alice","payload":{"sdp":"a"}}"#);
    for i in 0..5 {
        a.send_text(&format!(r#"{{"type":"CANDIDATE","dst":"bob","payload":{{"i":{i}}}}}"#)).await;
        b.send_text(&format!(r#"{{"type":"CANDIDATE","dst":"alice","payload":{{"i":{i}}}}}"#)).await;
    }
    for i in 0..5 {
        let to_bob = format!(r#"{{"type":"CANDIDATE","src":"alice","dst":"bob","payload":{{"i":{i}}}}}"#);
        assert_eq!(b.recv_text().await, to_bob);
        let to_alice = format!(r#"{{"type":"CANDIDATE","src":"bob","dst":"alice","payload":{{"i":{i}}}}}"#);
        assert_eq!(a.recv_text().await, to_alice);
    }
    a.send_text(r#"{"type":"LEAVE","dst":"bob"}"#).await;
    assert_eq!(b.recv_text().await, r#"{"type":"LEAVE","src":"alice","dst":"bob"}"#);
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;

    // Gone from node 1: gone from discovery on both.
    a.close().await;
    settle(&[&n1, &n2], 1.0).await;
    for n in [&n1, &n2] {
        assert_eq!(discovered(n).await, ["bob"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peerjs_an_id_open_on_one_node_is_taken_on_the_other_and_its_token_takes_it_over() {
    let redis = Redis::start();
    let (n1, n2) = peerjs_nodes(&redis, "peerjs-taken").await;
    let mut a1 = peerjs_open(&n1, "alice", "t1").await;
    let mut b = peerjs_open(&n2, "bob", "tb").await;
    settle(&[&n1, &n2], 2.0).await;

    // Another token on node 2: the live holder answers the probe, so
    // ID-TAKEN, then the close.
    let contest = async {
        let mut other = Client::connect(&peerjs_url(&n2, "alice", "t2")).await;
        let frame = other.recv_text().await;
        other.recv_close().await;
        frame
    };
    let (frame, ()) = tokio::join!(contest, a1.answer_pings_for(Duration::from_millis(2500)));
    assert_eq!(frame, r#"{"type":"ID-TAKEN","payload":{"msg":"ID is taken"}}"#);
    // The holder on node 1 is untouched.
    b.send_text(r#"{"type":"OFFER","dst":"alice","payload":"x"}"#).await;
    assert_eq!(a1.recv_text().await, r#"{"type":"OFFER","src":"bob","dst":"alice","payload":"x"}"#);

    // The same token on node 2 (a reload the load balancer sent elsewhere):
    // the new socket takes the id over, the old one is closed.
    let mut a2 = peerjs_open(&n2, "alice", "t1").await;
    assert_eq!(a1.recv_close().await.0, 1008);
    settle(&[&n1, &n2], 2.0).await;
    b.send_text(r#"{"type":"OFFER","dst":"alice","payload":"y"}"#).await;
    assert_eq!(a2.recv_text().await, r#"{"type":"OFFER","src":"bob","dst":"alice","payload":"y"}"#);
    a2.send_text(r#"{"type":"ANSWER","dst":"bob","payload":"z"}"#).await;
    assert_eq!(b.recv_text().await, r#"{"type":"ANSWER","src":"alice","dst":"bob","payload":"z"}"#);
    // Node 1 routes to it too.
    let mut c = peerjs_open(&n1, "carol", "tc").await;
    c.send_text(r#"{"type":"OFFER","dst":"alice","payload":"w"}"#).await;
    assert_eq!(a2.recv_text().await, r#"{"type":"OFFER","src":"carol","dst":"alice","payload":"w"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peerjs_messages_held_for_an_absent_id_reach_it_when_it_opens_on_the_other_node() {
    let redis = Redis::start();
    let (n1, n2) = peerjs_nodes(&redis, "peerjs-held").await;
    let mut a = peerjs_open(&n1, "alice", "ta").await;
    a.send_text(r#"{"type":"OFFER","dst":"carol","payload":{"n":1}}"#).await;
    a.send_text(r#"{"type":"CANDIDATE","dst":"carol","payload":{"n":2}}"#).await;
    n1.wait_metric("switchboard_held_messages", |v| v == 2.0).await;
    settle(&[&n1, &n2], 1.0).await;

    let mut c = peerjs_open(&n2, "carol", "tc").await;
    assert_eq!(c.recv_text().await, r#"{"type":"OFFER","src":"alice","dst":"carol","payload":{"n":1}}"#);
    assert_eq!(c.recv_text().await, r#"{"type":"CANDIDATE","src":"alice","dst":"carol","payload":{"n":2}}"#);
    n1.wait_metric("switchboard_held_messages", |v| v == 0.0).await;
    c.send_text(r#"{"type":"ANSWER","dst":"alice","payload":{"n":3}}"#).await;
    assert_eq!(a.recv_text().await, r#"{"type":"ANSWER","src":"carol","dst":"alice","payload":{"n":3}}"#);
    a.expect_silence(QUIET).await;
    c.expect_silence(QUIET).await;
}

/// A reload (new token) whose old page froze gets its id within 3 s, as on
/// one node (`dialect_peerjs.rs::a_frozen_holder_is_probed...`): the
/// holder's node pings it and, silent, drops it, so it is away everywhere
/// and the reload on the other node replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peerjs_a_frozen_holder_on_one_node_loses_its_id_to_a_reload_on_the_other_within_3_s() {
    let redis = Redis::start();
    let (n1, n2) = peerjs_nodes(&redis, "peerjs-frozen").await;
    let mut frozen = peerjs_open(&n1, "alice", "t1").await;
    settle(&[&n1, &n2], 1.0).await;
    let started = std::time::Instant::now();
    let mut reloaded = Client::connect(&peerjs_url(&n2, "alice", "t2")).await;
    assert_eq!(reloaded.recv_text().await, r#"{"type":"OPEN"}"#);
    assert!(started.elapsed() < Duration::from_secs(3), "OPEN after {:?}", started.elapsed());
    assert_eq!(frozen.recv_close().await.0, 1008);
}

// ---------------------------------------------------------------- one2one

async fn one2one_register(s: &TestServer, name: &str) -> Client {
    let mut c = Client::connect(&s.ws_url("/call")).await;
    c.send_text(&format!(r#"{{"id":"register","name":"{name}"}}"#)).await;
    expect(&mut c, r#"{"id":"registerResponse","response":"accepted"}"#).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one2one_a_whole_call_between_nodes() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "one2one", DialectKind::One2one, |_| {}).await;
    let mut callee = one2one_register(&n1, "user2").await;
    let mut caller = one2one_register(&n2, "user1").await;
    until_named(&[&n1, &n2], "user1").await;
    until_named(&[&n1, &n2], "user2").await;

    // Names registered on either node are taken on both, and listed by both.
    for n in [&n1, &n2] {
        let mut c = Client::connect(&n.ws_url("/call")).await;
        for name in ["user1", "user2"] {
            c.send_text(&format!(r#"{{"id":"register","name":"{name}"}}"#)).await;
            expect(&mut c, r#"{"id":"registerResponse","response":"rejected"}"#).await;
        }
        c.send_text(r#"{"id":"list"}"#).await;
        let list: Value = serde_json::from_str(&c.recv_text().await).expect("JSON");
        let mut names: Vec<String> = serde_json::from_value(list["list"].clone()).expect("a list of names");
        names.sort();
        assert_eq!(names, ["user1", "user2"], "{list}");
        c.close().await;
    }
    settle(&[&n1, &n2], 2.0).await;

    // The call, by name, from node 2 to node 1.
    caller.send_text(&format!(r#"{{"id":"call","from":"user1","to":"user2","sdpOffer":{OFFER}}}"#)).await;
    expect(&mut callee, &format!(r#"{{"id":"incomingCall","from":"user1","offer":{OFFER}}}"#)).await;
    caller.send_text(&format!(r#"{{"id":"onIceCandidate","candidate":{CANDIDATE}}}"#)).await;
    expect(&mut callee, &format!(r#"{{"id":"iceCandidate","candidate":{CANDIDATE}}}"#)).await;
    callee
        .send_text(&format!(
            r#"{{"id":"incomingCallResponse","from":"user1","callResponse":"accept","sdpOffer":{ANSWER}}}"#
        ))
        .await;
    expect(&mut caller, &format!(r#"{{"id":"callResponse","response":"accepted","sdpAnswer":{ANSWER}}}"#)).await;
    // Quirk: the callee gets the caller's own offer back as `sdpAnswer`.
    expect(&mut callee, &format!(r#"{{"id":"startCommunication","sdpAnswer":{OFFER}}}"#)).await;
    // The callee's candidates go back along the link the call set.
    for n in 0..3 {
        callee.send_text(&format!(r#"{{"id":"onIceCandidate","candidate":{{"n":{n}}}}}"#)).await;
    }
    for n in 0..3 {
        expect(&mut caller, &format!(r#"{{"id":"iceCandidate","candidate":{{"n":{n}}}}}"#)).await;
    }
    caller.expect_silence(QUIET).await;
    callee.expect_silence(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one2one_a_call_to_a_name_nobody_holds_is_rejected_on_either_node() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "one2one-unknown", DialectKind::One2one, |_| {}).await;
    let mut a = one2one_register(&n1, "user1").await;
    until_named(&[&n2], "user1").await;
    // A call made on node 2 in the name of user1 (node 1): the rejection
    // reaches user1 on node 1, as the original sends it to `from`.
    let mut b = Client::connect(&n2.ws_url("/call")).await;
    b.send_text(&format!(r#"{{"id":"call","from":"user1","to":"nobody","sdpOffer":{OFFER}}}"#)).await;
    expect(&mut a, r#"{"id":"callResponse","response":"rejected","message":"User not registered"}"#).await;
    b.expect_silence(QUIET).await;
}

// ---------------------------------------------------------------- flutter

const ALICE_NEW: &str =
    r#"{"type":"new","data":{"device_name":"Chrome","id":"42","username":"alice","user_agent":"Mozilla/5.0 A"}}"#;
const BOB_NEW: &str =
    r#"{"type":"new","data":{"device_name":"Pixel","id":"43","username":"bob","user_agent":"Mozilla/5.0 B"}}"#;
const ALICE: &str = r#"{"id":"42","device_name":"Chrome","username":"alice","user_agent":"Mozilla/5.0 A"}"#;
const BOB: &str = r#"{"id":"43","device_name":"Pixel","username":"bob","user_agent":"Mozilla/5.0 B"}"#;

fn peers(list: &[&str]) -> String {
    format!(r#"{{"type":"peers","data":[{}]}}"#, list.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flutter_peer_list_and_relay_span_nodes() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "flutter", DialectKind::Flutter, |_| {}).await;
    let mut alice = Client::connect(&n1.ws_url("/ws")).await;
    alice.send_text(ALICE_NEW).await;
    assert_eq!(alice.recv_text().await, peers(&[ALICE]));
    until_members(&[&n2], FLUTTER_PEERS, 1).await;
    let mut bob = Client::connect(&n2.ws_url("/ws")).await;
    bob.send_text(BOB_NEW).await;
    assert_eq!(bob.recv_text().await, peers(&[ALICE, BOB]));
    assert_eq!(alice.recv_text().await, peers(&[ALICE, BOB]));
    settle(&[&n1, &n2], 2.0).await;

    let offer = r#"{"type":"offer","data":{"to":"43","id":"42","description":{"sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n","type":"offer"},"session_id":"42-43","media":"video"}}"#;
    alice.send_text(offer).await;
    assert_eq!(bob.recv_text().await, offer);
    let candidate = r#"{"type":"candidate","data":{"to":"43","id":"42","candidate":{"sdpMLineIndex":0,"sdpMid":"0","candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"},"session_id":"42-43"}}"#;
    alice.send_text(candidate).await;
    assert_eq!(bob.recv_text().await, candidate);
    let answer = r#"{"type":"answer","data":{"to":"42","id":"43","description":{"sdp":"v=0\r\n","type":"answer"},"session_id":"42-43"}}"#;
    bob.send_text(answer).await;
    assert_eq!(alice.recv_text().await, answer);
    let back = candidate.replace(r#""to":"43","id":"42""#, r#""to":"42","id":"43""#);
    bob.send_text(&back).await;
    assert_eq!(alice.recv_text().await, back);
    // `bye` from the caller: each side is told its own id.
    alice.send_text(r#"{"type":"bye","data":{"session_id":"42-43","from":"42"}}"#).await;
    assert_eq!(alice.recv_text().await, r#"{"type":"bye","data":{"to":"42","session_id":"42-43"}}"#);
    assert_eq!(bob.recv_text().await, r#"{"type":"bye","data":{"to":"43","session_id":"42-43"}}"#);
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;

    // Bob leaves node 2: alice's list on node 1 shrinks.
    bob.close().await;
    assert_eq!(alice.recv_text().await, peers(&[ALICE]));
    settle(&[&n1, &n2], 1.0).await;
    alice.expect_silence(QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flutter_a_duplicate_id_on_another_node_is_listed_and_the_earliest_holder_gets_the_messages() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "flutter-dup", DialectKind::Flutter, |_| {}).await;
    let mut alice = Client::connect(&n1.ws_url("/ws")).await;
    alice.send_text(ALICE_NEW).await;
    assert_eq!(alice.recv_text().await, peers(&[ALICE]));
    until_members(&[&n2], FLUTTER_PEERS, 1).await;
    // The same id again, on node 2: both are listed, as on one node.
    let phone_new = r#"{"type":"new","data":{"device_name":"Phone","id":"42","username":"alice"}}"#;
    let phone = r#"{"id":"42","device_name":"Phone","username":"alice"}"#;
    let mut alice2 = Client::connect(&n2.ws_url("/ws")).await;
    alice2.send_text(phone_new).await;
    assert_eq!(alice2.recv_text().await, peers(&[ALICE, phone]));
    assert_eq!(alice.recv_text().await, peers(&[ALICE, phone]));
    settle(&[&n1, &n2], 2.0).await;
    let mut bob = Client::connect(&n2.ws_url("/ws")).await;
    bob.send_text(BOB_NEW).await;
    let all = peers(&[ALICE, phone, BOB]);
    for c in [&mut bob, &mut alice, &mut alice2] {
        assert_eq!(c.recv_text().await, all);
    }
    settle(&[&n1, &n2], 3.0).await;

    // Bob (node 2) writes to 42: the earliest holder gets it, on node 1,
    // not the later one beside him.
    let offer = r#"{"type":"offer","data":{"to":"42","id":"43","session_id":"43-42"}}"#;
    bob.send_text(offer).await;
    assert_eq!(alice.recv_text().await, offer);
    alice2.expect_silence(QUIET).await;
    // Once it leaves, 42 is the one on node 2.
    alice.close().await;
    let left = peers(&[phone, BOB]);
    assert_eq!(bob.recv_text().await, left);
    assert_eq!(alice2.recv_text().await, left);
    settle(&[&n1, &n2], 2.0).await;
    bob.send_text(offer).await;
    assert_eq!(alice2.recv_text().await, offer);
    bob.expect_silence(QUIET).await;
}

// ---------------------------------------------------------------- basic

async fn basic_login(s: &TestServer, name: &str) -> Client {
    let mut c = Client::connect(&s.ws_url("/")).await;
    c.send_text(&format!(r#"{{"type":"login","name":"{name}"}}"#)).await;
    expect(&mut c, r#"{"type":"login","success":true}"#).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_offer_answer_candidates_and_leave_between_nodes() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "basic", DialectKind::Basic, |_| {}).await;
    let mut a = basic_login(&n1, "alice").await;
    let mut b = basic_login(&n2, "bob").await;
    until_named(&[&n1, &n2], "alice").await;
    until_named(&[&n1, &n2], "bob").await;
    // Taken on the other node too.
    let mut dup = Client::connect(&n2.ws_url("/")).await;
    dup.send_text(r#"{"type":"login","name":"alice"}"#).await;
    expect(&mut dup, r#"{"type":"login","success":false}"#).await;

    a.send_text(&format!(r#"{{"type":"offer","offer":{OFFER},"name":"bob"}}"#)).await;
    expect(&mut b, &format!(r#"{{"type":"offer","offer":{OFFER},"name":"alice"}}"#)).await;
    b.send_text(&format!(r#"{{"type":"answer","answer":{ANSWER},"name":"alice"}}"#)).await;
    expect(&mut a, &format!(r#"{{"type":"answer","answer":{ANSWER}}}"#)).await;
    a.send_text(&format!(r#"{{"type":"candidate","candidate":{CANDIDATE},"name":"bob"}}"#)).await;
    expect(&mut b, &format!(r#"{{"type":"candidate","candidate":{CANDIDATE}}}"#)).await;
    b.send_text(&format!(r#"{{"type":"candidate","candidate":{CANDIDATE},"name":"alice"}}"#)).await;
    expect(&mut a, &format!(r#"{{"type":"candidate","candidate":{CANDIDATE}}}"#)).await;
    a.send_text(r#"{"type":"message","name":"bob","message":"hello \"bob\""}"#).await;
    expect(&mut b, r#"{"type":"message","message":"hello \"bob\"","name":"alice"}"#).await;
    // Alice (node 1) offered to bob: her leaving is a `leave` for him on node 2.
    a.close().await;
    expect(&mut b, r#"{"type":"leave"}"#).await;
    b.expect_silence(QUIET).await;
}

// ---------------------------------------------------------------- matchbox

const MB_OFFER: &str = r#"{"Offer":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
const MB_ANSWER: &str = r#"{"Answer":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}"#;

/// Connects to `path` of `s` and reads the `IdAssigned` that comes first.
async fn matchbox_join(s: &TestServer, path: &str) -> (Client, String) {
    let mut c = Client::connect(&s.ws_url(path)).await;
    let first = c.recv_text().await;
    let id = first
        .strip_prefix(r#"{"IdAssigned":""#)
        .and_then(|rest| rest.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("first frame is IdAssigned: {first}"))
        .to_string();
    (c, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchbox_one_room_split_across_nodes() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "matchbox", DialectKind::Matchbox, |_| {}).await;
    let (mut a, a_id) = matchbox_join(&n1, "/room").await;
    settle(&[&n1, &n2], 1.0).await;
    let (mut b, b_id) = matchbox_join(&n2, "/room").await;
    expect(&mut a, &format!(r#"{{"NewPeer":"{b_id}"}}"#)).await;
    settle(&[&n1, &n2], 2.0).await;
    let (mut c, c_id) = matchbox_join(&n1, "/room").await;
    expect(&mut a, &format!(r#"{{"NewPeer":"{c_id}"}}"#)).await;
    expect(&mut b, &format!(r#"{{"NewPeer":"{c_id}"}}"#)).await;
    settle(&[&n1, &n2], 3.0).await;
    assert!(a_id != b_id && b_id != c_id && a_id != c_id);
    // Another room on node 2 hears of none of them.
    let (mut x, _) = matchbox_join(&n2, "/other").await;

    // The one who heard of the other offers; signals cross both ways.
    a.send_text(&format!(r#"{{"Signal":{{"receiver":"{b_id}","data":{MB_OFFER}}}}}"#)).await;
    expect(&mut b, &format!(r#"{{"Signal":{{"sender":"{a_id}","data":{MB_OFFER}}}}}"#)).await;
    b.send_text(&format!(r#"{{"Signal":{{"receiver":"{a_id}","data":{MB_ANSWER}}}}}"#)).await;
    expect(&mut a, &format!(r#"{{"Signal":{{"sender":"{b_id}","data":{MB_ANSWER}}}}}"#)).await;
    b.send_text(&format!(r#"{{"Signal":{{"receiver":"{c_id}","data":{MB_OFFER}}}}}"#)).await;
    expect(&mut c, &format!(r#"{{"Signal":{{"sender":"{b_id}","data":{MB_OFFER}}}}}"#)).await;
    c.send_text(&format!(r#"{{"Signal":{{"receiver":"{b_id}","data":{MB_ANSWER}}}}}"#)).await;
    expect(&mut b, &format!(r#"{{"Signal":{{"sender":"{c_id}","data":{MB_ANSWER}}}}}"#)).await;

    // Node 2's peer drops without a close frame: both on node 1 hear.
    b.drop_abruptly().await;
    expect(&mut a, &format!(r#"{{"PeerLeft":"{b_id}"}}"#)).await;
    expect(&mut c, &format!(r#"{{"PeerLeft":"{b_id}"}}"#)).await;
    // And node 1's leaving reaches node 2's newcomer.
    let (mut d, d_id) = matchbox_join(&n2, "/room").await;
    expect(&mut a, &format!(r#"{{"NewPeer":"{d_id}"}}"#)).await;
    expect(&mut c, &format!(r#"{{"NewPeer":"{d_id}"}}"#)).await;
    c.close().await;
    expect(&mut a, &format!(r#"{{"PeerLeft":"{c_id}"}}"#)).await;
    expect(&mut d, &format!(r#"{{"PeerLeft":"{c_id}"}}"#)).await;
    for client in [&mut a, &mut d, &mut x] {
        client.expect_silence(QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchbox_next_2_pairs_span_nodes_and_never_meet_later_ones() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "matchbox-next", DialectKind::Matchbox, |_| {}).await;
    let open = switchboard::dialect::matchbox::open_room("game", 2);
    let (mut a, a_id) = matchbox_join(&n1, "/game?next=2").await;
    until_members(&[&n2], &open, 1).await;
    // b on node 2 completes a's pair: a hears of b, b of nobody.
    let (mut b, b_id) = matchbox_join(&n2, "/game?next=2").await;
    expect(&mut a, &format!(r#"{{"NewPeer":"{b_id}"}}"#)).await;
    // The pair is sealed on both nodes: the next two form a pair of their own.
    until_members(&[&n1, &n2], &open, 0).await;
    let (mut c, c_id) = matchbox_join(&n1, "/game?next=2").await;
    until_members(&[&n2], &open, 1).await;
    let (mut d, d_id) = matchbox_join(&n2, "/game?next=2").await;
    expect(&mut c, &format!(r#"{{"NewPeer":"{d_id}"}}"#)).await;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.expect_silence(QUIET).await;
    }
    // Within a pair, signals cross nodes; across pairs they do not.
    a.send_text(&format!(r#"{{"Signal":{{"receiver":"{b_id}","data":{MB_OFFER}}}}}"#)).await;
    expect(&mut b, &format!(r#"{{"Signal":{{"sender":"{a_id}","data":{MB_OFFER}}}}}"#)).await;
    d.send_text(&format!(r#"{{"Signal":{{"receiver":"{c_id}","data":{MB_ANSWER}}}}}"#)).await;
    expect(&mut c, &format!(r#"{{"Signal":{{"sender":"{d_id}","data":{MB_ANSWER}}}}}"#)).await;
    a.send_text(&format!(r#"{{"Signal":{{"receiver":"{d_id}","data":{MB_OFFER}}}}}"#)).await;
    d.expect_silence(QUIET).await;
    // A leaver is reported to its own pair only.
    b.drop_abruptly().await;
    expect(&mut a, &format!(r#"{{"PeerLeft":"{b_id}"}}"#)).await;
    c.expect_silence(QUIET).await;
    d.expect_silence(QUIET).await;
}

// ---------------------------------------------------------------- offers

/// An offer made on node 1 is answered on node 2 (the board is shared
/// through each node's board peer: docs/dialects/offers.md §7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_an_offer_made_on_one_node_is_answered_on_the_other() {
    let redis = Redis::start();
    let (n1, n2) = two(&redis, "offers", DialectKind::Offers, |_| {}).await;
    let offer = r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
    let answer = r#"{"type":"answer","sdp":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}"#;
    let auth = |user: &str| format!(r#"{{"userName":"{user}","password":"x"}}"#);
    let (mut rob1, _) = eio::Ws::open(n1.addr(0)).await;
    rob1.connect(&auth("Rob-1")).await;
    let (mut rob2, _) = eio::Ws::open(n2.addr(0)).await;
    rob2.connect(&auth("Rob-2")).await;
    // Two users, plus each node's board peer.
    settle(&[&n1, &n2], 4.0).await;

    rob1.send(&format!(r#"42["newOffer",{offer}]"#)).await;
    let stored = |answerer: &str, answer: &str| {
        format!(
            r#"{{"offererUserName":"Rob-1","offer":{offer},"offerIceCandidates":[],"answererUserName":{answerer},"answer":{answer},"answererIceCandidates":[]}}"#
        )
    };
    assert_eq!(rob2.next().await, format!(r#"42["newOfferAwaiting",[{}]]"#, stored("null", "null")));
    rob2.send(&format!(r#"420["newAnswer",{}]"#, stored("null", answer))).await;
    assert_eq!(rob2.next().await, "430[[]]");
    assert_eq!(rob1.next().await, format!(r#"42["answerResponse",{}]"#, stored(r#""Rob-2""#, answer)));
}
