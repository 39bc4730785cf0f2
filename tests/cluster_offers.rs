//! The `offers` dialect on several nodes over one real Redis: the board of
//! offers is the same whichever node a socket is on (issue 10, point 3).

mod common;
mod eio;

use std::net::SocketAddr;
use std::time::Duration;

use common::TestServer;
use common::redis::Redis;
use eio::Ws;
use switchboard::Config;
use switchboard::config::ClusterConfig;
use switchboard::dialect::DialectKind;

const OFFER: &str = r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
const OFFER9: &str = r#"{"type":"offer","sdp":"v=0\r\no=- 9 9 IN IP4 127.0.0.1\r\n"}"#;
const ANSWER: &str = r#"{"type":"answer","sdp":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}"#;
const CAND1: &str = r#"{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab12"}"#;
const CAND2: &str = r#"{"candidate":"candidate:2 1 udp 2122260223 127.0.0.1 50002 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab12"}"#;
const CAND3: &str = r#"{"candidate":"candidate:3 1 udp 2122260223 127.0.0.1 50004 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"cd34"}"#;

/// A node of cluster `name` on `redis` with one `offers` listener.
async fn node(redis: &Redis, name: &str) -> TestServer {
    let mut config = Config::single(DialectKind::Offers, "127.0.0.1:0".parse().unwrap());
    config.cluster =
        Some(ClusterConfig { redis: redis.url(), name: name.into(), node_timeout: Duration::from_secs(2) });
    TestServer::start(config).await
}

/// Waits until every node counts `n` peers cluster-wide (each node's board
/// peer counts as one).
async fn settle(nodes: &[&TestServer], n: f64) {
    for s in nodes {
        s.wait_metric("switchboard_peers", |v| v == n).await;
    }
}

fn auth(user: &str) -> String {
    format!(r#"{{"userName":"{user}","password":"x"}}"#)
}

/// The stored offer object, serialized as the original does.
fn stored(offerer: &str, offer: &str, cands: &[&str], answerer: Option<&str>, answer: Option<&str>) -> String {
    let answerer = answerer.map(|a| format!("\"{a}\"")).unwrap_or_else(|| "null".into());
    format!(
        r#"{{"offererUserName":"{offerer}","offer":{offer},"offerIceCandidates":[{}],"answererUserName":{answerer},"answer":{},"answererIceCandidates":[]}}"#,
        cands.join(","),
        answer.unwrap_or("null"),
    )
}

fn ice(cand: &str, user: &str, did_i_offer: bool) -> String {
    format!(
        r#"42["sendIceCandidateToSignalingServer",{{"iceCandidate":{cand},"iceUserName":"{user}","didIOffer":{did_i_offer}}}]"#
    )
}

/// Connects `user` over websocket; with `greeting`, the `availableOffers`
/// packet expected right after the CONNECT ack.
async fn join(addr: SocketAddr, user: &str, greeting: Option<&str>) -> Ws {
    let (mut w, _) = Ws::open(addr).await;
    w.connect(&auth(user)).await;
    if let Some(g) = greeting {
        assert_eq!(w.next().await, g, "{user} is greeted with the board");
    }
    w
}

/// The reply to a `newAnswer` that matches no offer: everything the socket
/// was sent before it has arrived.
const BARRIER_ACK: &str = "439[[]]";

async fn barrier(w: &mut Ws) {
    w.send(r#"429["newAnswer",{"offererUserName":"(barrier)"}]"#).await;
    assert_eq!(w.next().await, BARRIER_ACK);
}

/// Connects newcomers to `addr` until one is greeted with `expected` (the
/// node applies what other nodes send in a task of its own), then returns
/// it. Fails after `eio::WAIT`.
async fn greeted_eventually(addr: SocketAddr, user: &str, expected: &str) -> Ws {
    let give_up = tokio::time::Instant::now() + eio::WAIT;
    loop {
        let mut w = join(addr, user, None).await;
        w.send(r#"429["newAnswer",{"offererUserName":"(barrier)"}]"#).await;
        let first = w.next().await;
        if first == expected {
            assert_eq!(w.next().await, BARRIER_ACK);
            return w;
        }
        assert!(tokio::time::Instant::now() < give_up, "{user} was greeted with {first}, not {expected}");
        w.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_of_offers_is_the_same_on_every_node() {
    let redis = Redis::start();
    let (n1, n2) = (node(&redis, "offers").await, node(&redis, "offers").await);
    for n in [&n1, &n2] {
        n.wait_metric("switchboard_cluster_nodes", |v| v == 2.0).await;
    }
    // Each node's board peer, seen from both nodes.
    settle(&[&n1, &n2], 2.0).await;
    let (a1, a2) = (n1.addr(0), n2.addr(0));

    let mut rob1 = join(a1, "Rob-1", None).await;
    let mut watcher = join(a2, "Watcher", None).await;
    settle(&[&n1, &n2], 4.0).await;

    // An offer on node 1 is announced to a socket on node 2.
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    let awaiting = format!(r#"42["newOfferAwaiting",[{}]]"#, stored("Rob-1", OFFER, &[], None, None));
    assert_eq!(watcher.next().await, awaiting);

    // The offerer trickles a candidate before any answer: stored on both
    // boards. Another offer from node 1 marks the point where node 2 has
    // applied it (node 2 applies node 1's changes in order).
    rob1.send(&ice(CAND1, "Rob-1", true)).await;
    let mut rob9 = join(a1, "Rob-9", None).await;
    rob9.send(&format!(r#"42["newOffer",{OFFER9}]"#)).await;
    let awaiting9 = format!(r#"42["newOfferAwaiting",[{}]]"#, stored("Rob-9", OFFER9, &[], None, None));
    assert_eq!(watcher.next().await, awaiting9);
    assert_eq!(rob1.next().await, awaiting9, "node 1's own broadcast");

    // A newcomer on node 2 is greeted with the offers made on node 1.
    let first = stored("Rob-1", OFFER, &[CAND1], None, None);
    let board = format!(r#"42["availableOffers",[{first},{}]]"#, stored("Rob-9", OFFER9, &[], None, None));
    let mut rob2 = join(a2, "Rob-2", Some(&board)).await;

    // It answers on node 2: its ack has the candidate stored on node 1, and
    // the offerer on node 1 gets the answered offer.
    let with_answer = stored("Rob-1", OFFER, &[], None, Some(ANSWER));
    rob2.send(&format!(r#"420["newAnswer",{with_answer}]"#)).await;
    assert_eq!(rob2.next().await, format!("430[[{CAND1}]]"));
    let answered = stored("Rob-1", OFFER, &[CAND1], Some("Rob-2"), Some(ANSWER));
    assert_eq!(rob1.next().await, format!(r#"42["answerResponse",{answered}]"#));

    // Candidates both ways, across the nodes, each delivered once.
    rob2.send(&ice(CAND2, "Rob-2", false)).await;
    assert_eq!(rob1.next().await, format!(r#"42["receivedIceCandidateFromServer",{CAND2}]"#));
    rob1.send(&ice(CAND3, "Rob-1", true)).await;
    assert_eq!(rob2.next().await, format!(r#"42["receivedIceCandidateFromServer",{CAND3}]"#));
    barrier(&mut rob2).await;
    barrier(&mut rob1).await;

    // Node 1's board has the answer made on node 2: a newcomer there sees
    // the answered offer, with every offerer candidate.
    let answered = stored("Rob-1", OFFER, &[CAND1, CAND3], Some("Rob-2"), Some(ANSWER));
    let board = format!(r#"42["availableOffers",[{answered},{}]]"#, stored("Rob-9", OFFER9, &[], None, None));
    greeted_eventually(a1, "Rob-4", &board).await;
    // And node 2's newcomers see the same.
    greeted_eventually(a2, "Rob-5", &board).await;
    // No socket heard anything more (a second copy of a relayed candidate
    // would come before the barrier's ack).
    barrier(&mut rob2).await;
    barrier(&mut watcher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_joins_later_gets_the_board() {
    let redis = Redis::start();
    let n1 = node(&redis, "late").await;
    n1.wait_metric("switchboard_peers", |v| v == 1.0).await;
    let mut rob1 = join(n1.addr(0), "Rob-1", None).await;
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    rob1.send(&ice(CAND1, "Rob-1", true)).await;
    barrier(&mut rob1).await;

    let n2 = node(&redis, "late").await;
    settle(&[&n1, &n2], 3.0).await;
    let board = format!(r#"42["availableOffers",[{}]]"#, stored("Rob-1", OFFER, &[CAND1], None, None));
    let mut rob2 = greeted_eventually(n2.addr(0), "Rob-2", &board).await;

    // And it answers there as on node 1.
    let with_answer = stored("Rob-1", OFFER, &[], None, Some(ANSWER));
    rob2.send(&format!(r#"420["newAnswer",{with_answer}]"#)).await;
    assert_eq!(rob2.next().await, format!("430[[{CAND1}]]"));
    let answered = stored("Rob-1", OFFER, &[CAND1], Some("Rob-2"), Some(ANSWER));
    assert_eq!(rob1.next().await, format!(r#"42["answerResponse",{answered}]"#));
}
