//! Native protocol call control over real sockets.

mod common;

use common::TestServer;
use serde_json::json;

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
