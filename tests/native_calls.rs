//! Native protocol call control over real sockets: setup, reject, busy,
//! cancel, hangup, ring timeout and the partner going away.

mod common;

use std::time::Duration;

use common::{Client, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn full_call_setup_relays_offer_answer_and_candidates_both_ways() {
    let server = TestServer::native().await;
    let (mut alice, alice_id) = server.named("alice").await;
    let (mut bob, bob_id) = server.named("bob").await;
    let online = alice.recv_type("online").await;
    assert_eq!(online["peer"], json!({"id": bob_id, "name": "bob"}));

    alice.send(&json!({"type": "call", "to": bob_id, "ref": 1, "meta": {"video": true}})).await;
    let ok = alice.recv_type("ok").await;
    assert_eq!(ok["ref"], 1);
    let call = ok["call"].as_str().unwrap().to_string();
    let ring = bob.recv_type("ring").await;
    assert_eq!(ring["call"], call);
    assert_eq!(ring["from"], json!({"id": alice_id, "name": "alice"}));
    assert_eq!(ring["meta"], json!({"video": true}));

    bob.send(&json!({"type": "accept", "call": call, "ref": 2})).await;
    assert_eq!(bob.recv_type("ok").await["ref"], 2);
    let accepted = alice.recv_type("accepted").await;
    assert_eq!(accepted["by"]["id"], bob_id);

    let offer = json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"});
    alice.send(&json!({"type": "signal", "to": bob_id, "data": {"sdp": offer}})).await;
    let got = bob.recv_type("signal").await;
    assert_eq!(got["from"]["id"], alice_id);
    assert_eq!(got["data"], json!({"sdp": offer}));

    let answer = json!({"type": "answer", "sdp": "v=0\r\n"});
    bob.send(&json!({"type": "signal", "to": alice_id, "data": {"sdp": answer}})).await;
    assert_eq!(alice.recv_type("signal").await["data"]["sdp"], answer);

    for i in 0..3 {
        let cand = json!({"candidate": format!("candidate:{i} 1 udp 2122260223 127.0.0.1 5000{i} typ host"), "sdpMid": "0", "sdpMLineIndex": 0});
        alice.send(&json!({"type": "signal", "to": bob_id, "data": {"candidate": cand}})).await;
        bob.send(&json!({"type": "signal", "to": alice_id, "data": {"candidate": cand}})).await;
        assert_eq!(bob.recv_type("signal").await["data"]["candidate"], cand);
        assert_eq!(alice.recv_type("signal").await["data"]["candidate"], cand);
    }

    alice.send(&json!({"type": "hangup", "call": call})).await;
    alice.recv_type("ok").await;
    let ended = bob.recv_type("ended").await;
    assert_eq!(ended, json!({"type": "ended", "call": call, "reason": "hangup"}));
    server.running.shutdown().await;
}

/// Two named peers; alice has seen bob come online.
async fn pair(server: &TestServer) -> (Client, String, Client, String) {
    let (alice, alice_id) = server.named("alice").await;
    let (bob, bob_id) = server.named("bob").await;
    let mut alice = alice;
    alice.recv_type("online").await;
    (alice, alice_id, bob, bob_id)
}

/// Alice rings bob; returns the call id once bob heard the ring.
async fn ring(alice: &mut Client, bob: &mut Client, bob_id: &str) -> String {
    alice.send(&json!({"type": "call", "to": bob_id, "ref": "ring"})).await;
    let call = alice.recv_type("ok").await["call"].as_str().unwrap().to_string();
    assert_eq!(bob.recv_type("ring").await["call"], call);
    call
}

/// Alice calls bob and bob accepts.
async fn in_call(alice: &mut Client, bob: &mut Client, bob_id: &str) -> String {
    let call = ring(alice, bob, bob_id).await;
    bob.send(&json!({"type": "accept", "call": call})).await;
    bob.recv_type("ok").await;
    alice.recv_type("accepted").await;
    call
}

/// Reads frames until one of type `ty`; returns the types skipped and it.
async fn until(c: &mut Client, ty: &str) -> (Vec<String>, Value) {
    let mut skipped = Vec::new();
    loop {
        let v = c.recv().await;
        if v["type"] == ty {
            return (skipped, v);
        }
        skipped.push(v["type"].as_str().unwrap_or("?").to_string());
    }
}

#[tokio::test]
async fn rejected_call_tells_caller_with_reason_and_frees_both() {
    let server = TestServer::native().await;
    let (mut alice, _, mut bob, bob_id) = pair(&server).await;
    let call = ring(&mut alice, &mut bob, &bob_id).await;
    bob.send(&json!({"type": "reject", "call": call, "reason": "in a meeting", "ref": 3})).await;
    assert_eq!(bob.recv_type("ok").await["ref"], 3);
    let rejected = alice.recv_type("rejected").await;
    assert_eq!(
        rejected,
        json!({"type": "rejected", "call": call, "by": {"id": bob_id, "name": "bob"}, "reason": "in a meeting"})
    );
    // Both are free again: the same pair can ring anew.
    let again = ring(&mut alice, &mut bob, &bob_id).await;
    assert_ne!(again, call);
    server.running.shutdown().await;
}

#[tokio::test]
async fn callee_in_a_call_is_busy_for_a_third_caller() {
    let server = TestServer::native().await;
    let (mut alice, alice_id, mut bob, bob_id) = pair(&server).await;
    let (mut carol, _) = server.named("carol").await;
    alice.recv_type("online").await;
    bob.recv_type("online").await;
    let call = ring(&mut alice, &mut bob, &bob_id).await;
    // Ringing counts as busy, for the callee and for the caller.
    for (target, r) in [(&bob_id, 10), (&alice_id, 11)] {
        carol.send(&json!({"type": "call", "to": target, "ref": r})).await;
        let err = carol.recv_type("error").await;
        assert_eq!((err["code"].as_str(), err["ref"].as_i64()), (Some("busy"), Some(r)), "{err}");
        assert!(err["message"].as_str().unwrap().contains("busy"), "{err}");
    }
    bob.send(&json!({"type": "accept", "call": call})).await;
    bob.recv_type("ok").await;
    carol.send(&json!({"type": "call", "to": "bob", "ref": 12})).await;
    let err = carol.recv_type("error").await;
    assert_eq!((err["code"].as_str(), err["ref"].as_i64()), (Some("busy"), Some(12)), "{err}");
    // Nobody was disturbed by the refused calls.
    alice.recv_type("accepted").await;
    bob.expect_silence(std::time::Duration::from_millis(100)).await;
    assert_eq!(server.metric(r#"switchboard_errors_total{code="busy"}"#).await, 3.0);
    server.running.shutdown().await;
}

#[tokio::test]
async fn caller_cancels_a_ringing_call() {
    let server = TestServer::native().await;
    let (mut alice, _, mut bob, bob_id) = pair(&server).await;
    let call = ring(&mut alice, &mut bob, &bob_id).await;
    // Only the caller may cancel.
    bob.send(&json!({"type": "cancel", "call": call, "ref": 1})).await;
    assert_eq!(bob.recv_type("error").await["code"], "unknown_call");
    alice.send(&json!({"type": "cancel", "call": call, "ref": 2})).await;
    assert_eq!(alice.recv_type("ok").await["ref"], 2);
    assert_eq!(bob.recv_type("ended").await, json!({"type": "ended", "call": call, "reason": "cancelled"}));
    // Too late to accept.
    bob.send(&json!({"type": "accept", "call": call, "ref": 3})).await;
    let err = bob.recv_type("error").await;
    assert_eq!((err["code"].as_str(), err["ref"].as_i64()), (Some("unknown_call"), Some(3)));
    server.running.shutdown().await;
}

#[tokio::test]
async fn callee_hangs_up_and_the_call_is_gone() {
    let server = TestServer::native().await;
    let (mut alice, _, mut bob, bob_id) = pair(&server).await;
    let call = in_call(&mut alice, &mut bob, &bob_id).await;
    assert_eq!(server.metric("switchboard_calls").await, 1.0);
    bob.send(&json!({"type": "hangup", "call": call, "ref": 1})).await;
    bob.recv_type("ok").await;
    assert_eq!(alice.recv_type("ended").await, json!({"type": "ended", "call": call, "reason": "hangup"}));
    alice.send(&json!({"type": "hangup", "call": call, "ref": 2})).await;
    assert_eq!(alice.recv_type("error").await["code"], "unknown_call");
    assert_eq!(server.metric("switchboard_calls").await, 0.0);
    server.running.shutdown().await;
}

#[tokio::test]
async fn unanswered_call_times_out_for_both_sides() {
    let server = TestServer::with(|c| c.ring_timeout = Duration::from_secs(30)).await;
    let (mut alice, _, mut bob, bob_id) = pair(&server).await;
    let call = ring(&mut alice, &mut bob, &bob_id).await;
    common::fast_forward(Duration::from_secs(29)).await;
    alice.expect_silence(Duration::from_millis(500)).await;
    common::fast_forward(Duration::from_secs(1)).await;
    let ended = json!({"type": "ended", "call": call, "reason": "timeout"});
    assert_eq!(alice.recv_type("ended").await, ended);
    assert_eq!(bob.recv_type("ended").await, ended);
    bob.send(&json!({"type": "accept", "call": call, "ref": 1})).await;
    assert_eq!(bob.recv_type("error").await["code"], "unknown_call");
    server.running.shutdown().await;
}

#[tokio::test]
async fn partner_saying_bye_ends_the_call_as_disconnected() {
    let server = TestServer::native().await;
    let (mut alice, _, mut bob, bob_id) = pair(&server).await;
    let call = in_call(&mut alice, &mut bob, &bob_id).await;
    bob.send(&json!({"type": "bye"})).await;
    assert_eq!(bob.recv_close().await, (1000, "bye".to_string()));
    let (skipped, ended) = until(&mut alice, "ended").await;
    assert_eq!(ended, json!({"type": "ended", "call": call, "reason": "disconnected"}));
    assert!(!skipped.contains(&"away".to_string()), "a goodbye is not an absence: {skipped:?}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn partner_closing_cleanly_ends_the_call_as_disconnected() {
    let server = TestServer::native().await;
    let (mut alice, _, mut bob, bob_id) = pair(&server).await;
    let call = in_call(&mut alice, &mut bob, &bob_id).await;
    bob.close().await;
    let (skipped, ended) = until(&mut alice, "ended").await;
    assert_eq!(ended, json!({"type": "ended", "call": call, "reason": "disconnected"}));
    assert_eq!(skipped, ["offline"]);
    server.running.shutdown().await;
}

#[tokio::test]
async fn partner_dropping_is_away_then_gone_after_grace() {
    let server = TestServer::with(|c| c.grace = Duration::from_secs(30)).await;
    let (mut alice, _, mut bob, bob_id) = pair(&server).await;
    let call = in_call(&mut alice, &mut bob, &bob_id).await;
    bob.drop_abruptly().await;
    assert_eq!(alice.recv_type("away").await, json!({"type": "away", "call": call, "peer": bob_id}));
    assert_eq!(server.metric("switchboard_peers_away").await, 1.0);
    common::fast_forward(Duration::from_secs(29)).await;
    assert_eq!(server.metric("switchboard_peers_away").await, 1.0, "still within its grace");
    common::fast_forward(Duration::from_secs(1)).await;
    let (skipped, ended) = until(&mut alice, "ended").await;
    assert_eq!(ended, json!({"type": "ended", "call": call, "reason": "disconnected"}));
    assert_eq!(skipped, ["offline"]);
    assert_eq!(server.metric("switchboard_peers").await, 1.0);
    server.running.shutdown().await;
}
