//! One client never harms another: a burst of relays to a victim that reads
//! normally costs the sender (its reads pause), never the victim. Before
//! byte budgets and backpressure, 260 relays written at once to a reading
//! victim closed it with 1008 "reads too slowly" before it read one of them
//! (its outbox held 256 events); here every dialect delivers all of them.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use futures_util::SinkExt;
use serde_json::json;
use switchboard::Config;
use switchboard::dialect::DialectKind;
use tokio_tungstenite::tungstenite::Message;

/// The burst of the hostile-client report.
const BURST: usize = 260;

async fn server(dialect: DialectKind, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::single(dialect, "127.0.0.1:0".parse().expect("addr"));
    tweak(&mut config);
    TestServer::start(config).await
}

/// Writes every frame in one go (buffered, one flush: as few TCP writes as
/// the socket allows).
async fn burst(c: &mut Client, frames: impl IntoIterator<Item = String>) {
    for f in frames {
        c.ws.feed(Message::Text(f.into())).await.expect("feed");
    }
    c.ws.flush().await.expect("flush");
}

/// The victim reads `expected` frames, exactly and in order, and is still
/// connected afterwards.
async fn reads_all(victim: &mut Client, expected: impl IntoIterator<Item = String>) {
    for (i, want) in expected.into_iter().enumerate() {
        assert_eq!(victim.recv_text().await, want, "frame {i}");
    }
    victim.expect_silence(Duration::from_millis(100)).await;
}

async fn no_one_dropped(s: &TestServer) {
    assert_eq!(s.metric("switchboard_queue_drops_total").await, 0.0);
    assert_eq!(s.metric("switchboard_deliveries_refused_total").await, 0.0);
}

#[tokio::test]
async fn native_burst_to_a_reading_victim_is_delivered_whole() {
    let s = server(DialectKind::Native, |_| {}).await;
    let (mut victim, victim_id) = s.named("victim").await;
    let (mut attacker, _) = s.named("attacker").await;
    victim.recv_type("online").await;
    burst(&mut attacker, (0..BURST).map(|i| json!({"type": "signal", "to": victim_id, "data": {"i": i}}).to_string()))
        .await;
    for i in 0..BURST {
        let f = victim.recv_type("signal").await;
        assert_eq!(f["data"]["i"], i, "{f}");
    }
    victim.send(&json!({"type": "ping", "ref": "still here"})).await;
    assert_eq!(victim.recv_type("pong").await["ref"], "still here");
    no_one_dropped(&s).await;
}

#[tokio::test]
async fn basic_burst_of_candidates_is_delivered_whole() {
    let s = server(DialectKind::Basic, |_| {}).await;
    let mut victim = Client::connect(&s.ws_url("/")).await;
    victim.send_text(r#"{"type":"login","name":"victim"}"#).await;
    assert_eq!(victim.recv_text().await, r#"{"type":"login","success":true}"#);
    let mut attacker = Client::connect(&s.ws_url("/")).await;
    burst(
        &mut attacker,
        (0..BURST).map(|i| format!(r#"{{"type":"candidate","candidate":{{"i":{i}}},"name":"victim"}}"#)),
    )
    .await;
    reads_all(&mut victim, (0..BURST).map(|i| format!(r#"{{"type":"candidate","candidate":{{"i":{i}}}}}"#))).await;
    no_one_dropped(&s).await;
}

#[tokio::test]
async fn one2one_burst_of_candidates_is_delivered_whole() {
    let s = server(DialectKind::One2one, |_| {}).await;
    let mut victim = Client::connect(&s.ws_url("/call")).await;
    victim.send_text(r#"{"id":"register","name":"victim"}"#).await;
    assert_eq!(victim.recv_text().await, r#"{"id":"registerResponse","response":"accepted"}"#);
    let mut attacker = Client::connect(&s.ws_url("/call")).await;
    attacker.send_text(r#"{"id":"register","name":"attacker"}"#).await;
    assert_eq!(attacker.recv_text().await, r#"{"id":"registerResponse","response":"accepted"}"#);
    attacker.send_text(r#"{"id":"call","from":"attacker","to":"victim","sdpOffer":"o"}"#).await;
    assert_eq!(victim.recv_text().await, r#"{"id":"incomingCall","from":"attacker","offer":"o"}"#);
    burst(&mut attacker, (0..BURST).map(|i| format!(r#"{{"id":"onIceCandidate","candidate":{{"i":{i}}}}}"#))).await;
    reads_all(&mut victim, (0..BURST).map(|i| format!(r#"{{"id":"iceCandidate","candidate":{{"i":{i}}}}}"#))).await;
    no_one_dropped(&s).await;
}

#[tokio::test]
async fn flutter_burst_of_candidates_is_delivered_whole() {
    let s = server(DialectKind::Flutter, |_| {}).await;
    let mut victim = Client::connect(&s.ws_url("/ws")).await;
    victim.send_text(r#"{"type":"new","data":{"id":"v"}}"#).await;
    assert_eq!(victim.recv_text().await, r#"{"type":"peers","data":[{"id":"v"}]}"#);
    let mut attacker = Client::connect(&s.ws_url("/ws")).await;
    let frame = |i: usize| format!(r#"{{"type":"candidate","data":{{"to":"v","candidate":{{"i":{i}}}}}}}"#);
    burst(&mut attacker, (0..BURST).map(frame)).await;
    reads_all(&mut victim, (0..BURST).map(frame)).await;
    no_one_dropped(&s).await;
}

#[tokio::test]
async fn peerjs_burst_of_candidates_is_delivered_whole() {
    let s = server(DialectKind::Peerjs, |_| {}).await;
    let url = |id: &str| s.ws_url(&format!("/peerjs?key=peerjs&id={id}&token=t{id}"));
    let mut victim = Client::connect(&url("victim")).await;
    assert_eq!(victim.recv_text().await, r#"{"type":"OPEN"}"#);
    let mut attacker = Client::connect(&url("attacker")).await;
    assert_eq!(attacker.recv_text().await, r#"{"type":"OPEN"}"#);
    burst(&mut attacker, (0..BURST).map(|i| format!(r#"{{"type":"CANDIDATE","dst":"victim","payload":{{"i":{i}}}}}"#)))
        .await;
    let relayed = |i: usize| format!(r#"{{"type":"CANDIDATE","src":"attacker","dst":"victim","payload":{{"i":{i}}}}}"#);
    reads_all(&mut victim, (0..BURST).map(relayed)).await;
    no_one_dropped(&s).await;
}

/// Far more than a receiver's budget, written as fast as the socket takes
/// it: the sender is paused while the victim catches up, nothing is lost or
/// reordered, nobody is closed.
#[tokio::test]
async fn a_flood_far_over_the_budget_pauses_the_sender_and_loses_nothing() {
    const N: usize = 4000;
    let s = server(DialectKind::Native, |c| c.queue_bytes = 64 * 1024).await;
    let (mut victim, victim_id) = s.named("victim").await;
    let (mut attacker, _) = s.named("attacker").await;
    victim.recv_type("online").await;
    let pad = "x".repeat(2048);
    let sender = tokio::spawn(async move {
        for start in (0..N).step_by(500) {
            let frames: Vec<String> = (start..start + 500)
                .map(|i| json!({"type": "signal", "to": victim_id, "data": {"i": i, "pad": pad}}).to_string())
                .collect();
            burst(&mut attacker, frames).await;
        }
        attacker
    });
    for i in 0..N {
        let f = victim.recv_type("signal").await;
        assert_eq!(f["data"]["i"], i);
    }
    let mut attacker = sender.await.expect("sender task");
    attacker.send(&json!({"type": "ping", "ref": 1})).await;
    assert_eq!(attacker.recv_type("pong").await["ref"], 1, "the sender is only paused, never closed");
    no_one_dropped(&s).await;
}
