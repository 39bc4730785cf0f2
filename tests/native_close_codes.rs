//! How a client's close frame ends a native session: 1001 "going away" (a
//! page reload) keeps the peer for its resume grace; other closes are a goodbye.

mod common;

use common::{Client, TestServer};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn close_with(c: &mut Client, code: CloseCode) {
    c.ws.close(Some(CloseFrame { code, reason: "test".into() })).await.expect("close");
}

#[tokio::test]
async fn going_away_keeps_the_peer_for_resume() {
    let server = TestServer::native().await;
    let (mut alice, welcome) = server.client().await;
    let token = welcome["resume"].as_str().expect("a resume token").to_string();
    let alice_id = welcome["id"].clone();
    alice.send(&json!({"type": "name", "name": "alice", "ref": 1})).await;
    alice.recv_type("ok").await;
    let (mut bob, _) = server.named("bob").await;
    alice.recv_type("online").await;

    close_with(&mut alice, CloseCode::Away).await;
    bob.expect_silence(Duration::from_millis(300)).await;

    let mut again = Client::connect(&server.ws_url(&format!("/ws?resume={token}"))).await;
    let w = again.recv_type("welcome").await;
    assert_eq!(w["resumed"], true);
    assert_eq!(w["id"], alice_id);
    again.send(&json!({"type": "peers", "ref": 2})).await;
    let peers = again.recv_type("ok").await;
    assert_eq!(peers["peers"][0]["name"], "bob");
}

#[tokio::test]
async fn normal_close_is_a_goodbye() {
    let server = TestServer::native().await;
    let (mut alice, welcome) = server.client().await;
    let token = welcome["resume"].as_str().expect("a resume token").to_string();
    alice.send(&json!({"type": "name", "name": "alice", "ref": 1})).await;
    alice.recv_type("ok").await;
    let (mut bob, _) = server.named("bob").await;
    alice.recv_type("online").await;

    close_with(&mut alice, CloseCode::Normal).await;
    let off = bob.recv_type("offline").await;
    assert_eq!(off["peer"]["name"], "alice");

    let mut again = Client::connect(&server.ws_url(&format!("/ws?resume={token}"))).await;
    assert_eq!(again.recv_type("error").await["code"], "bad_token");
    assert_eq!(again.recv_type("welcome").await["resumed"], false);
}
