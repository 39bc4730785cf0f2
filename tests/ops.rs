//! Operational routes over plain HTTP: `/healthz`, `/metrics` whose series
//! follow what clients do, and the connection limit's 503.

mod common;

use common::{TestServer, metric_in};
use serde_json::json;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Error as WsError;

#[tokio::test]
async fn healthz_says_ok() {
    let server = TestServer::native().await;
    assert_eq!(server.get("/healthz").await, (200, "ok\n".to_string()));
    server.running.shutdown().await;
}

#[tokio::test]
async fn metrics_series_follow_connections_rooms_calls_relays_errors_and_resumes() {
    let server = TestServer::native().await;
    let (status, body) = server.get("/metrics").await;
    assert_eq!(status, 200);
    for series in [
        "switchboard_connections",
        "switchboard_peers",
        "switchboard_rooms",
        "switchboard_calls",
        "switchboard_messages_relayed_total",
        "switchboard_queue_drops_total",
        "switchboard_resumes_total",
    ] {
        assert!(body.lines().any(|l| l == format!("{series} 0")), "{series} starts at 0:\n{body}");
        assert!(body.contains(&format!("# TYPE {series} ")), "{series} has a TYPE line");
    }
    assert!(body.contains("# TYPE switchboard_errors_total counter"), "{body}");

    let (mut a, _) = server.named("a").await;
    let (mut b, welcome_b) = server.client().await;
    b.send(&json!({"type": "name", "name": "b", "ref": 1})).await;
    b.recv_type("ok").await;
    a.recv_type("online").await;
    let body = server.get("/metrics").await.1;
    assert_eq!(metric_in(&body, "switchboard_connections"), 2.0);
    assert_eq!(metric_in(&body, "switchboard_peers"), 2.0);
    let rooms = metric_in(&body, "switchboard_rooms");
    assert_eq!(rooms, 0.0, "the lobby that lists who is online is not a room");

    for c in [&mut a, &mut b] {
        c.send(&json!({"type": "join", "room": "den", "ref": 2})).await;
        c.recv_type("ok").await;
    }
    a.recv_type("joined").await;
    assert_eq!(server.metric("switchboard_rooms").await, rooms + 1.0);

    a.send(&json!({"type": "signal", "to": "b", "data": {}})).await;
    b.recv_type("signal").await;
    a.send(&json!({"type": "signal", "room": "den", "data": {}})).await;
    b.recv_type("signal").await;
    assert_eq!(server.metric("switchboard_messages_relayed_total").await, 2.0);

    a.send(&json!({"type": "call", "to": "b", "ref": 3})).await;
    a.recv_type("ok").await;
    b.recv_type("ring").await;
    assert_eq!(server.metric("switchboard_calls").await, 1.0);

    a.send(&json!({"type": "signal", "to": "zed", "data": {}, "ref": 4})).await;
    a.recv_type("error").await;
    a.send_text("nope").await;
    a.recv_type("error").await;
    let body = server.get("/metrics").await.1;
    assert_eq!(metric_in(&body, r#"switchboard_errors_total{code="unknown_peer"}"#), 1.0);
    assert_eq!(metric_in(&body, r#"switchboard_errors_total{code="bad_json"}"#), 1.0);

    b.drop_abruptly().await;
    server.wait_metric("switchboard_connections", |v| v == 1.0).await;
    assert_eq!(server.metric("switchboard_peers").await, 2.0, "b is away, not gone");
    let (_b, frames) = server.resume(welcome_b["resume"].as_str().unwrap()).await;
    assert_eq!(frames[0]["resumed"], true);
    let body = server.get("/metrics").await.1;
    assert_eq!(metric_in(&body, "switchboard_resumes_total"), 1.0);
    assert_eq!(metric_in(&body, "switchboard_connections"), 2.0);

    a.close().await;
    server.wait_metric("switchboard_connections", |v| v == 1.0).await;
    let body = server.get("/metrics").await.1;
    assert_eq!(metric_in(&body, "switchboard_peers"), 1.0);
    assert_eq!(metric_in(&body, "switchboard_calls"), 0.0);
    assert_eq!(metric_in(&body, "switchboard_rooms"), rooms + 1.0, "b is still in its rooms");
    server.running.shutdown().await;
}

#[tokio::test]
async fn over_the_connection_limit_upgrades_get_503_with_a_reason() {
    let server = TestServer::with(|c| c.max_connections = 2).await;
    let (first, _) = server.client().await;
    let (_second, _) = server.client().await;
    match connect_async(server.ws_url("/ws")).await {
        Err(WsError::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).to_string();
            assert!(body.contains("server full") && body.contains("limit 2"), "{body}");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| "a connection")),
    }
    assert_eq!(server.metric(r#"switchboard_errors_total{code="too_many_connections"}"#).await, 1.0);
    // Plain HTTP still works at the limit, and a freed slot can be taken.
    assert_eq!(server.get("/healthz").await.0, 200);
    first.close().await;
    server.wait_metric("switchboard_connections", |v| v == 1.0).await;
    let (_third, welcome) = server.client().await;
    assert_eq!(welcome["type"], "welcome");
    server.running.shutdown().await;
}
