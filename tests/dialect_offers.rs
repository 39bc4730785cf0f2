//! Wire transcripts of the `offers` dialect (protocols.md section 2) over
//! real sockets, with raw Engine.IO v4 packets: long-polling (batched
//! bodies), a polling session upgraded to websocket, and websocket only.

mod common;
mod eio;

use std::net::SocketAddr;

use common::TestServer;
use eio::{Polling, Sock, Ws, http, mask_sid};
use switchboard::Config;
use switchboard::dialect::DialectKind;

const OFFER: &str = r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
const ANSWER: &str = r#"{"type":"answer","sdp":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}"#;
const CAND1: &str = r#"{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab12"}"#;
const CAND2: &str = r#"{"candidate":"candidate:2 1 udp 2122260223 127.0.0.1 50002 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab12"}"#;
const CAND3: &str = r#"{"candidate":"candidate:3 1 udp 2122260223 127.0.0.1 50004 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"cd34"}"#;

async fn server() -> TestServer {
    TestServer::start(Config::single(DialectKind::Offers, "127.0.0.1:0".parse().unwrap())).await
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

#[derive(Clone, Copy, Debug)]
enum Mode {
    Polling,
    Upgraded,
    Websocket,
}

/// Connects `user` over `mode`. When the board has offers, `greeting` is
/// the `availableOffers` packet expected right after the CONNECT ack.
async fn join(addr: SocketAddr, mode: Mode, user: &str, greeting: Option<&str>) -> Sock {
    let mut sock = match mode {
        Mode::Polling | Mode::Upgraded => {
            let (mut p, _) = Polling::open(addr).await;
            // As observed with the original client: the auth rides in a POST.
            p.connect(&auth(user)).await;
            Sock::Polling(p)
        }
        Mode::Websocket => {
            let (mut w, _) = Ws::open(addr).await;
            w.connect(&auth(user)).await;
            Sock::Ws(Box::new(w))
        }
    };
    if let Some(g) = greeting {
        assert_eq!(sock.next().await, g, "{user} is greeted with the board");
    }
    match (mode, sock) {
        (Mode::Upgraded, Sock::Polling(p)) => Sock::Ws(Box::new(p.upgrade().await)),
        (_, sock) => sock,
    }
}

/// Waits until the server has handled everything `sock` sent before. A
/// websocket send returns before the server reads the frame; events of one
/// socket are handled in order, so the reply to a `newAnswer` that matches
/// no offer (an empty ack) marks the point.
async fn barrier(sock: &mut Sock) {
    sock.send(r#"429["newAnswer",{"offererUserName":"(barrier)"}]"#).await;
    assert_eq!(sock.next().await, "439[[]]");
}

/// Waits until the hub has `n` peers (disconnects are processed by the
/// connection's task after the transport is gone).
async fn peers_settle(srv: &TestServer, n: usize) {
    let wait = async {
        while srv.running.hub.read(|h| h.census().peers) != n {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(eio::WAIT, wait).await.expect("peers settle");
}

#[tokio::test]
async fn open_packet_advertises_the_originals_timings() {
    let srv = server().await;
    let (_p, open) = Polling::open(srv.addr(0)).await;
    assert_eq!(
        mask_sid(&open),
        r#"0{"sid":"SID","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
    );
    let (_w, open) = Ws::open(srv.addr(0)).await;
    assert_eq!(
        mask_sid(&open),
        r#"0{"sid":"SID","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
    );
}

/// The section 2.4 example, packet by packet, over the given transports.
async fn offer_answer_exchange(offerer: Mode, answerer: Mode) {
    let srv = server().await;
    let addr = srv.addr(0);
    let mut rob1 = join(addr, offerer, "Rob-1", None).await;
    let mut rob2 = join(addr, answerer, "Rob-2", None).await;

    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    let awaiting = format!(r#"42["newOfferAwaiting",[{}]]"#, stored("Rob-1", OFFER, &[], None, None));
    assert_eq!(rob2.next().await, awaiting);

    // The offerer trickles candidates before any answer exists: held.
    rob1.send(&ice(CAND1, "Rob-1", true)).await;
    barrier(&mut rob1).await;

    // Answer with ack: the ack carries the candidates stored so far...
    // (The client sends the offer object as it received it, `answer` set.)
    let with_answer = stored("Rob-1", OFFER, &[], None, Some(ANSWER));
    rob2.send(&format!(r#"420["newAnswer",{with_answer}]"#)).await;
    assert_eq!(rob2.next().await, format!("430[[{CAND1}]]"));

    // ...and the offerer gets the stored offer, updated (and not its own
    // newOfferAwaiting: this is the first packet after its CONNECT).
    let answered = stored("Rob-1", OFFER, &[CAND1], Some("Rob-2"), Some(ANSWER));
    assert_eq!(rob1.next().await, format!(r#"42["answerResponse",{answered}]"#));

    // Answerer candidates go to the offerer as bare candidate objects.
    rob2.send(&ice(CAND2, "Rob-2", false)).await;
    assert_eq!(rob1.next().await, format!(r#"42["receivedIceCandidateFromServer",{CAND2}]"#));

    // Offerer candidates after the answer are stored and relayed.
    rob1.send(&ice(CAND3, "Rob-1", true)).await;
    assert_eq!(rob2.next().await, format!(r#"42["receivedIceCandidateFromServer",{CAND3}]"#));

    // A newcomer sees the whole board, answered offer included.
    let board = stored("Rob-1", OFFER, &[CAND1, CAND3], Some("Rob-2"), Some(ANSWER));
    join(addr, Mode::Polling, "Rob-3", Some(&format!(r#"42["availableOffers",[{board}]]"#))).await;
}

#[tokio::test]
async fn exchange_over_long_polling() {
    offer_answer_exchange(Mode::Polling, Mode::Polling).await;
}

#[tokio::test]
async fn exchange_over_upgraded_websocket() {
    offer_answer_exchange(Mode::Upgraded, Mode::Upgraded).await;
}

#[tokio::test]
async fn exchange_over_websocket_only_and_mixed() {
    offer_answer_exchange(Mode::Websocket, Mode::Polling).await;
    offer_answer_exchange(Mode::Polling, Mode::Websocket).await;
}

#[tokio::test]
async fn polling_batches_packets_both_ways() {
    let srv = server().await;
    let addr = srv.addr(0);
    let (mut rob1, _) = Polling::open(addr).await;
    rob1.connect(&auth("Rob-1")).await;
    let (mut rob2, _) = Polling::open(addr).await;
    rob2.connect(&auth("Rob-2")).await;
    // Two offers in one POST body...
    let offer = format!(r#"42["newOffer",{OFFER}]"#);
    rob1.send(&[&offer, &offer]).await;
    // ...are both handled before the POST is answered, so both
    // broadcasts wait in one GET body, separated by \x1e.
    let batch: Vec<String> = rob2.poll().await.into_iter().filter(|p| p != "2").collect();
    let awaiting = format!(r#"42["newOfferAwaiting",[{}]]"#, stored("Rob-1", OFFER, &[], None, None));
    assert_eq!(batch, vec![awaiting.clone(), awaiting]);
}

#[tokio::test]
async fn available_offers_comes_right_after_the_connect_ack() {
    let srv = server().await;
    let addr = srv.addr(0);
    let mut rob1 = join(addr, Mode::Websocket, "Rob-1", None).await;
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    barrier(&mut rob1).await;
    let (mut p, _) = Polling::open(addr).await;
    p.send(&[&format!("40{}", auth("Rob-3"))]).await;
    let mut got = vec![mask_sid(&p.next().await)];
    got.push(p.next().await);
    let board = stored("Rob-1", OFFER, &[], None, None);
    assert_eq!(got, vec![r#"40{"sid":"SID"}"#.to_string(), format!(r#"42["availableOffers",[{board}]]"#)]);
}

#[tokio::test]
async fn wrong_password_connects_then_disconnects() {
    let srv = server().await;
    let addr = srv.addr(0);
    for bad in [r#"{"userName":"Rob-9","password":"y"}"#, r#"{"userName":"Rob-9"}"#, ""] {
        let (mut p, _) = Polling::open(addr).await;
        p.send(&[&format!("40{bad}")]).await;
        // Not a connect_error (44): a CONNECT ack, then a DISCONNECT (41).
        assert_eq!(mask_sid(&p.next().await), r#"40{"sid":"SID"}"#, "auth {bad:?}");
        assert_eq!(p.next().await, "41", "auth {bad:?}");
    }
    // Rejected sockets never reach the board or the broadcast list.
    let mut rob1 = join(addr, Mode::Websocket, "Rob-1", None).await;
    let mut rob2 = join(addr, Mode::Websocket, "Rob-2", None).await;
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    assert!(rob2.next().await.starts_with(r#"42["newOfferAwaiting""#));
}

#[tokio::test]
async fn crash_cases_are_dropped_and_the_connection_lives_on() {
    let srv = server().await;
    let addr = srv.addr(0);
    let mut rob1 = join(addr, Mode::Websocket, "Rob-1", None).await;
    let mut rob2 = join(addr, Mode::Websocket, "Rob-2", None).await;
    // Answerer candidate with no offer answered by that user: the original
    // throws a TypeError and dies. We drop it.
    rob2.send(&ice(CAND2, "Rob-2", false)).await;
    // Offerer candidate with no offer, garbage payloads, unknown events.
    rob2.send(&ice(CAND2, "Rob-2", true)).await;
    rob2.send(r#"42["sendIceCandidateToSignalingServer","nonsense"]"#).await;
    rob2.send(r#"42["sendIceCandidateToSignalingServer"]"#).await;
    rob2.send(r#"42["newAnswer",42]"#).await;
    rob2.send(r#"42["noSuchEvent",{}]"#).await;
    // newAnswer for an offerer with no offer: the original never acks; we
    // ack with an empty array (see offers::NO_OFFER_ACK).
    rob2.send(&format!(r#"421["newAnswer",{{"offererUserName":"Nobody","answer":{ANSWER}}}]"#)).await;
    assert_eq!(rob2.next().await, "431[[]]");
    // Both connections still work.
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    let awaiting = format!(r#"42["newOfferAwaiting",[{}]]"#, stored("Rob-1", OFFER, &[], None, None));
    assert_eq!(rob2.next().await, awaiting);
}

#[tokio::test]
async fn lookups_take_the_first_offer_of_a_name() {
    let srv = server().await;
    let addr = srv.addr(0);
    let mut rob1 = join(addr, Mode::Websocket, "Rob-1", None).await;
    let mut rob2 = join(addr, Mode::Websocket, "Rob-2", None).await;
    let second = r#"{"type":"offer","sdp":"second"}"#;
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    rob1.send(&format!(r#"42["newOffer",{second}]"#)).await;
    rob2.next().await;
    rob2.next().await;
    // Candidates and the answer all land on the first offer.
    rob1.send(&ice(CAND1, "Rob-1", true)).await;
    barrier(&mut rob1).await;
    rob2.send(&format!(r#"420["newAnswer",{{"offererUserName":"Rob-1","offer":{second},"answer":{ANSWER}}}]"#)).await;
    assert_eq!(rob2.next().await, format!("430[[{CAND1}]]"));
    let answered = stored("Rob-1", OFFER, &[CAND1], Some("Rob-2"), Some(ANSWER));
    assert_eq!(rob1.next().await, format!(r#"42["answerResponse",{answered}]"#));
    let rob3 = join(
        addr,
        Mode::Websocket,
        "Rob-3",
        Some(&format!(r#"42["availableOffers",[{answered},{}]]"#, stored("Rob-1", second, &[], None, None))),
    )
    .await;
    drop(rob3);
}

#[tokio::test]
async fn stale_offers_are_shown_to_new_clients() {
    let srv = server().await;
    let addr = srv.addr(0);
    let Sock::Ws(mut rob1) = join(addr, Mode::Websocket, "Rob-1", None).await else { unreachable!() };
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    rob1.send(&ice(CAND1, "Rob-1", true)).await;
    rob1.close().await;
    // Quirk of `offers`: the offer outlives its offerer (for a while).
    let board = stored("Rob-1", OFFER, &[CAND1], None, None);
    let mut rob2 = join(addr, Mode::Websocket, "Rob-2", Some(&format!(r#"42["availableOffers",[{board}]]"#))).await;
    // Answering it acks, and the answerResponse goes nowhere, as in the
    // original (which emits to the dead socket's id).
    rob2.send(&format!(r#"420["newAnswer",{{"offererUserName":"Rob-1","answer":{ANSWER}}}]"#)).await;
    assert_eq!(rob2.next().await, format!("430[[{CAND1}]]"));
}

#[tokio::test]
async fn a_reconnected_offerer_gets_its_answer() {
    let srv = server().await;
    let addr = srv.addr(0);
    let Sock::Ws(mut old) = join(addr, Mode::Websocket, "Rob-1", None).await else { unreachable!() };
    old.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    old.close().await;
    peers_settle(&srv, 0).await;
    // socket.io clients reconnect with the same auth, so the same userName.
    let board = stored("Rob-1", OFFER, &[], None, None);
    let greeting = format!(r#"42["availableOffers",[{board}]]"#);
    let mut rob1 = join(addr, Mode::Polling, "Rob-1", Some(&greeting)).await;
    let mut rob2 = join(addr, Mode::Polling, "Rob-2", Some(&greeting)).await;
    rob2.send(&format!(r#"420["newAnswer",{{"offererUserName":"Rob-1","answer":{ANSWER}}}]"#)).await;
    assert_eq!(rob2.next().await, "430[[]]");
    let answered = stored("Rob-1", OFFER, &[], Some("Rob-2"), Some(ANSWER));
    assert_eq!(rob1.next().await, format!(r#"42["answerResponse",{answered}]"#));
}

#[tokio::test]
async fn client_bundle_is_served_or_explained() {
    let bundle = std::path::Path::new("tests/browser/node_modules/socket.io-client/dist/socket.io.js");
    let mut config = Config::single(DialectKind::Offers, "127.0.0.1:0".parse().unwrap());
    config.socketio_client = Some(bundle.to_path_buf());
    let srv = TestServer::start(config).await;
    let (status, body) = http(srv.addr(0), "GET", "/socket.io/socket.io.js", "").await;
    assert_eq!(status, 200);
    assert_eq!(body.len(), std::fs::read(bundle).unwrap().len());
    assert!(body.contains("emitWithAck"), "a socket.io client >= 4.6");

    let srv = server().await;
    let (status, body) = http(srv.addr(0), "GET", "/socket.io/socket.io.js", "").await;
    assert_eq!(status, 404);
    assert!(body.contains("npm install socket.io-client"), "{body}");
    assert!(body.contains("--socketio-client"), "{body}");
}

#[tokio::test]
async fn app_files_are_served_at_the_root_like_express_static() {
    let dir = std::env::temp_dir().join(format!("switchboard-offers-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("node_modules/socket.io-client/dist")).unwrap();
    std::fs::write(dir.join("index.html"), "<p>offers app</p>").unwrap();
    std::fs::write(dir.join("scripts.js"), "// app").unwrap();
    std::fs::write(dir.join("node_modules/socket.io-client/dist/socket.io.js"), "// the app's own client").unwrap();
    let mut config = Config::single(DialectKind::Offers, "127.0.0.1:0".parse().unwrap());
    config.listeners[0].static_dir = Some(dir.clone());
    let srv = TestServer::start(config).await;
    let addr = srv.addr(0);
    assert_eq!(http(addr, "GET", "/", "").await, (200, "<p>offers app</p>".to_string()));
    assert_eq!(http(addr, "GET", "/scripts.js", "").await, (200, "// app".to_string()));
    // The app's own node_modules client is found under --static.
    assert_eq!(http(addr, "GET", "/socket.io/socket.io.js", "").await, (200, "// the app's own client".to_string()));
    // And socket.io still answers under /socket.io/.
    Polling::open(addr).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn shutdown_closes_socketio_transports_so_clients_reconnect() {
    // A deadline far longer than the test waits: the close must be ours.
    let mut config = Config::single(DialectKind::Offers, "127.0.0.1:0".parse().unwrap());
    config.shutdown_deadline = std::time::Duration::from_secs(60);
    let srv = TestServer::start(config).await;
    let addr = srv.addr(0);
    let Sock::Ws(mut ws) = join(addr, Mode::Websocket, "Rob-1", None).await else { unreachable!() };
    let (mut poll, _) = Polling::open(addr).await;
    poll.connect(&auth("Rob-2")).await;
    tokio::time::timeout(eio::WAIT, srv.running.shutdown()).await.expect("shutdown within the deadline");
    // The transport closes (not a socket.io DISCONNECT `41`, which would
    // tell the client not to reconnect).
    ws.expect_closed().await;
}

#[tokio::test]
async fn a_client_over_the_message_rate_is_disconnected() {
    let mut config = Config::single(DialectKind::Offers, "127.0.0.1:0".parse().unwrap());
    config.conn.rate = 1;
    config.conn.burst = 3;
    let srv = TestServer::start(config).await;
    let (mut p, _) = Polling::open(srv.addr(0)).await;
    p.connect(&auth("Rob-1")).await;
    let flood = format!(r#"42["newOffer",{OFFER}]"#);
    p.send(&[&flood, &flood, &flood, &flood, &flood, &flood]).await;
    assert_eq!(p.next().await, "41", "a socket.io DISCONNECT");
    // Only the events within the burst were handled.
    let board = (0..3).map(|_| stored("Rob-1", OFFER, &[], None, None)).collect::<Vec<_>>().join(",");
    let (mut p3, _) = Polling::open(srv.addr(0)).await;
    p3.connect(&auth("Rob-3")).await;
    assert_eq!(p3.next().await, format!(r#"42["availableOffers",[{board}]]"#));
}

/// The advertised `maxPayload` (1,000,000 bytes) holds on the websocket
/// transport too: a larger message is refused from its header (the socket
/// closed), not read and parsed whole; other sockets carry on.
#[tokio::test]
async fn a_websocket_message_over_max_payload_closes_that_socket_only() {
    let srv = server().await;
    let addr = srv.addr(0);
    let mut rob1 = join(addr, Mode::Websocket, "Rob-1", None).await;
    let (mut big, _) = Ws::open(addr).await;
    big.connect(&auth("Big")).await;
    let huge = format!(r#"42["newOffer",{{"sdp":"{}"}}]"#, "x".repeat(1_100_000));
    big.send(&huge).await;
    big.expect_closed().await;
    // The board never saw it, and Rob-1 goes on: its offer reaches a newcomer.
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    barrier(&mut rob1).await;
    let board = stored("Rob-1", OFFER, &[], None, None);
    let _rob2 = join(addr, Mode::Websocket, "Rob-2", Some(&format!(r#"42["availableOffers",[{board}]]"#))).await;
}

/// A burst of 260 candidates to the answerer (one write over the
/// websocket) reaches it whole: the receiver is not closed as slow.
#[tokio::test]
async fn a_burst_of_candidates_to_the_answerer_is_delivered_whole() {
    let srv = server().await;
    let addr = srv.addr(0);
    let mut rob1 = join(addr, Mode::Websocket, "Rob-1", None).await;
    let mut rob2 = join(addr, Mode::Websocket, "Rob-2", None).await;
    rob1.send(&format!(r#"42["newOffer",{OFFER}]"#)).await;
    rob2.next().await; // newOfferAwaiting
    let with_answer = stored("Rob-1", OFFER, &[], None, Some(ANSWER));
    rob2.send(&format!(r#"420["newAnswer",{with_answer}]"#)).await;
    assert_eq!(rob2.next().await, "430[[]]");
    rob1.next().await; // answerResponse
    let Sock::Ws(ws) = &mut rob1 else { panic!("a websocket") };
    let burst: Vec<String> = (0..260).map(|i| ice(&format!(r#"{{"candidate":"c{i}"}}"#), "Rob-1", true)).collect();
    ws.send_burst(&burst).await;
    for i in 0..260 {
        assert_eq!(rob2.next().await, format!(r#"42["receivedIceCandidateFromServer",{{"candidate":"c{i}"}}]"#));
    }
}
