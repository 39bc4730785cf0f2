//! A peer that stops reading: it is dropped once its outbox stays over its
//! byte budget with nothing read for `slow_after` (its senders wait
//! meanwhile, then carry on), and every signal sent to it is accounted for:
//! read before the drop, read after its resume, or reported to its sender.

mod common;

use std::collections::BTreeSet;

use common::{Ending, TestServer};
use serde_json::{Value, json};

/// Padding that makes each signal big enough to fill socket buffers fast.
fn pad() -> String {
    "x".repeat(32 * 1024)
}

/// The index of a signal frame; `None` for presence notices.
fn index_of(frame: &Value) -> Option<u64> {
    if frame["type"] == "online" {
        return None;
    }
    assert_eq!(frame["type"], "signal", "only signals were sent to the slow peer: {frame}");
    Some(frame["data"]["i"].as_u64().expect("signal carries its index"))
}

#[tokio::test]
async fn slow_reader_is_dropped_and_nothing_sent_to_it_is_lost_silently() {
    let server = TestServer::with(|c| {
        c.queue_bytes = 16 * pad().len();
        c.slow_after = std::time::Duration::from_millis(500);
    })
    .await;
    let (mut slow, welcome) = server.client().await;
    let token = welcome["resume"].as_str().unwrap().to_string();
    slow.send(&json!({"type": "name", "name": "slow", "ref": 0})).await;
    slow.recv_type("ok").await;
    let (mut sender, _) = server.named("sender").await;
    let (mut other, _) = server.named("other").await;
    sender.recv_type("online").await;

    // Send until the hub refuses: the slow peer's outbox and then its
    // resume queue are full. The sender reads every reply meanwhile.
    let pad = pad();
    let mut accepted = Vec::new();
    let mut refused = BTreeSet::new();
    // Signals the hub gave up on later (beyond its bound on kept leftovers).
    let mut reported = BTreeSet::new();
    for i in 0..2000u64 {
        sender.send(&json!({"type": "signal", "to": "slow", "ref": i, "data": {"i": i, "pad": pad}})).await;
        let mut reply = sender.recv().await;
        while reply["type"] == "undeliverable" {
            reported.insert(reply["ref"].as_u64().expect("its ref"));
            reply = sender.recv().await;
        }
        assert_eq!(reply["ref"], i, "{reply}");
        match reply["type"].as_str() {
            Some("ok") => accepted.push(i),
            Some("error") => {
                assert_eq!(reply["code"], "queue_full", "{reply}");
                refused.insert(i);
                break;
            }
            _ => panic!("unexpected reply {reply}"),
        }
    }
    assert!(!refused.is_empty(), "the hub never pushed back on a peer that does not read");
    assert_eq!(server.metric("switchboard_queue_drops_total").await, 1.0);
    // The slow connection is closed and counted out, although it never reads.
    server.wait_metric("switchboard_connections", |v| v == 2.0).await;
    assert_eq!(server.metric("switchboard_peers_away").await, 1.0);

    // The sender and others are unaffected.
    sender.send(&json!({"type": "signal", "to": "other", "data": {"hi": 1}})).await;
    assert_eq!(other.recv_type("signal").await["data"], json!({"hi": 1}));
    sender.send(&json!({"type": "ping", "ref": "sync"})).await;
    loop {
        let f = sender.recv().await;
        match f["type"].as_str() {
            Some("pong") => break,
            Some("undeliverable") => assert!(reported.insert(f["ref"].as_u64().expect("its ref"))),
            _ => panic!("unexpected {f}"),
        }
    }

    // What the slow peer had in its socket buffers is still readable, then
    // the connection ends (with a 1008 close if there was room for it).
    let (before, ending) = slow.read_to_end().await;
    if let Ending::Close(code, reason) = &ending {
        assert_eq!(*code, 1008, "{reason}");
        assert!(reason.contains("too slowly"), "{reason}");
    }
    let mut seen: Vec<u64> = before.iter().filter_map(index_of).collect();

    // It resumes and gets the queued tail.
    let (mut slow, frames) = server.resume(&token).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["resumed"], true);
    let accepted_set: BTreeSet<u64> = accepted.iter().copied().collect();
    let delivered: BTreeSet<u64> = accepted_set.difference(&reported).copied().collect();
    loop {
        let got: BTreeSet<u64> = seen.iter().copied().collect();
        if got.is_superset(&delivered) {
            break;
        }
        seen.extend(index_of(&slow.recv().await));
    }
    slow.expect_silence(std::time::Duration::from_millis(200)).await;
    // In order; a batch cut off by the drop may be sent again after resume.
    let mut last = None;
    for w in seen.windows(2) {
        assert!(w[1] == w[0] + 1 || w[1] <= w[0], "out of order: {seen:?}");
        if w[1] <= w[0] {
            assert!(last.is_none(), "only one restart point: {seen:?}");
            last = Some(w[1]);
        }
    }
    assert!(seen.iter().all(|i| accepted_set.contains(i)), "refused signals never arrive");
    assert!(reported.is_subset(&accepted_set), "only accepted signals are reported later");
    server.running.shutdown().await;
}
