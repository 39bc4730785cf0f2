//! The `matchbox` dialect (matchbox_server's protocol, protocols.md §6) over
//! real sockets: each exchange with the exact JSON each side gets.

mod common;

use std::time::Duration;

use common::{Client, Ending, TestServer, expect_exact};
use switchboard::Config;
use switchboard::dialect::DialectKind;
use tokio_tungstenite::tungstenite::Message;

const QUIET: Duration = Duration::from_millis(300);

/// What matchbox_socket sends for an offer, an answer and a candidate.
const OFFER: &str = r#"{"Offer":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
const ANSWER: &str = r#"{"Answer":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}"#;
const CANDIDATE: &str = r#"{"IceCandidate":"{\"candidate\":\"candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"usernameFragment\":null}"}"#;

async fn server() -> TestServer {
    TestServer::start(Config::single(DialectKind::Matchbox, "127.0.0.1:0".parse().unwrap())).await
}

/// Connects to `path` and reads the `IdAssigned` that must come first;
/// returns the client and its id.
async fn join(server: &TestServer, path: &str) -> (Client, String) {
    let mut c = Client::connect(&server.ws_url(path)).await;
    let first = c.recv_text().await;
    let id = first
        .strip_prefix(r#"{"IdAssigned":""#)
        .and_then(|rest| rest.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("first frame is IdAssigned: {first}"))
        .to_string();
    assert_uuid(&id);
    (c, id)
}

/// What the `uuid` crate's parser needs: 8-4-4-4-12 hex digits. Ours are
/// version 8 with the RFC variant.
fn assert_uuid(id: &str) {
    let groups: Vec<&str> = id.split('-').collect();
    assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
    assert!(groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())), "{id}");
    assert!(groups[2].starts_with('8') && groups[3].starts_with(['8', '9', 'a', 'b']), "{id}");
}

fn signal_to(receiver: &str, data: &str) -> String {
    format!(r#"{{"Signal":{{"receiver":"{receiver}","data":{data}}}}}"#)
}

fn signal_from(sender: &str, data: &str) -> String {
    format!(r#"{{"Signal":{{"sender":"{sender}","data":{data}}}}}"#)
}

fn new_peer(id: &str) -> String {
    format!(r#"{{"NewPeer":"{id}"}}"#)
}

fn peer_left(id: &str) -> String {
    format!(r#"{{"PeerLeft":"{id}"}}"#)
}

/// A joins, then B: A hears of B; B hears of nobody.
async fn pair(server: &TestServer, path: &str) -> ((Client, String), (Client, String)) {
    let (mut a, a_id) = join(server, path).await;
    let (b, b_id) = join(server, path).await;
    expect_exact(&mut a, &new_peer(&b_id)).await;
    ((a, a_id), (b, b_id))
}

#[tokio::test]
async fn id_assigned_comes_first_once_and_new_peer_only_to_those_already_in_the_room() {
    let server = server().await;
    let ((mut a, a_id), (mut b, b_id)) = pair(&server, "/room").await;
    let (c, c_id) = join(&server, "/room").await;
    expect_exact(&mut a, &new_peer(&c_id)).await;
    expect_exact(&mut b, &new_peer(&c_id)).await;
    assert!([&a_id, &b_id].iter().all(|id| **id != c_id) && a_id != b_id);
    // Exactly one side of each pair offers: the newcomers hear nothing.
    let mut c = c;
    for client in [&mut a, &mut b, &mut c] {
        client.expect_silence(QUIET).await;
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn the_root_path_is_the_room_with_an_empty_name() {
    let server = server().await;
    let ((mut a, _), (mut b, _)) = pair(&server, "/").await;
    // `/x` is another room.
    let (mut x, _) = join(&server, "/x").await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
    x.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn signals_are_relayed_with_the_sender_and_the_data_unchanged_both_ways() {
    let server = server().await;
    let ((mut a, a_id), (mut b, b_id)) = pair(&server, "/room").await;
    a.send_text(&signal_to(&b_id, OFFER)).await;
    expect_exact(&mut b, &signal_from(&a_id, OFFER)).await;
    b.send_text(&signal_to(&a_id, ANSWER)).await;
    expect_exact(&mut a, &signal_from(&b_id, ANSWER)).await;
    b.send_text(&signal_to(&a_id, CANDIDATE)).await;
    expect_exact(&mut a, &signal_from(&b_id, CANDIDATE)).await;
    a.send_text(&signal_to(&b_id, CANDIDATE)).await;
    expect_exact(&mut b, &signal_from(&a_id, CANDIDATE)).await;
    // Any JSON passes as data, spelled as sent; unknown fields are ignored.
    let odd = r#"{ "x" : [1, 2.50, "\u00e9"] }"#;
    a.send_text(&format!(r#"{{"Signal":{{"data":{odd},"extra":true,"receiver":"{b_id}"}}}}"#)).await;
    expect_exact(&mut b, &signal_from(&a_id, odd)).await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn keep_alive_is_accepted_and_answers_nothing() {
    let server = server().await;
    let ((mut a, a_id), (mut b, b_id)) = pair(&server, "/room").await;
    a.send_text(r#""KeepAlive""#).await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
    // Still connected and relaying.
    a.send_text(&signal_to(&b_id, OFFER)).await;
    expect_exact(&mut b, &signal_from(&a_id, OFFER)).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn peer_left_goes_to_the_others_on_a_close_frame() {
    let server = server().await;
    let ((a, a_id), (mut b, _)) = pair(&server, "/room").await;
    a.close().await;
    expect_exact(&mut b, &peer_left(&a_id)).await;
    b.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn peer_left_goes_to_the_others_when_the_tcp_connection_just_ends() {
    let server = server().await;
    let ((mut a, _), (b, b_id)) = pair(&server, "/room").await;
    // Native clients never send a close frame.
    b.drop_abruptly().await;
    expect_exact(&mut a, &peer_left(&b_id)).await;
    a.expect_silence(QUIET).await;
    // No resume: the same room takes a newcomer as a new peer.
    let (_c, c_id) = join(&server, "/room").await;
    assert_ne!(c_id, b_id);
    expect_exact(&mut a, &new_peer(&c_id)).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn next_2_forms_pairs_that_never_meet_later_ones() {
    let server = server().await;
    let ((mut a, _), (mut b, b_id)) = pair(&server, "/game?next=2").await;
    let (mut c, c_id) = join(&server, "/game?next=2").await;
    let (mut d, d_id) = join(&server, "/game?next=2").await;
    expect_exact(&mut c, &new_peer(&d_id)).await;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.expect_silence(QUIET).await;
    }
    // A leaver is reported to its own group only, and its group stays sealed.
    b.drop_abruptly().await;
    expect_exact(&mut a, &peer_left(&b_id)).await;
    let (mut e, _) = join(&server, "/game?next=2").await;
    for client in [&mut a, &mut c, &mut d, &mut e] {
        client.expect_silence(QUIET).await;
    }
    // Within a pair, signals flow.
    c.send_text(&signal_to(&d_id, OFFER)).await;
    expect_exact(&mut d, &signal_from(&c_id, OFFER)).await;
    // Across pairs, they do not (the id is known, the peer is not reachable).
    a.send_text(&signal_to(&d_id, OFFER)).await;
    d.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn next_3_introduces_each_joiner_to_the_filling_group_at_once() {
    let server = server().await;
    let ((mut a, _), (mut b, _)) = pair(&server, "/game?next=3").await;
    let (mut c, c_id) = join(&server, "/game?next=3").await;
    expect_exact(&mut a, &new_peer(&c_id)).await;
    expect_exact(&mut b, &new_peer(&c_id)).await;
    // Full: the fourth starts a group of its own.
    let (mut d, _) = join(&server, "/game?next=3").await;
    for client in [&mut a, &mut b, &mut c, &mut d] {
        client.expect_silence(QUIET).await;
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_room_is_keyed_by_its_path_and_next_and_a_non_numeric_next_is_ignored() {
    let server = server().await;
    let (mut plain, _) = join(&server, "/r").await;
    let (mut two, _) = join(&server, "/r?next=2").await;
    let (mut three, _) = join(&server, "/r?next=3").await;
    let (mut other, _) = join(&server, "/s?next=2").await;
    for client in [&mut plain, &mut two, &mut three, &mut other] {
        client.expect_silence(QUIET).await;
    }
    // `next=abc` is the room without `next`.
    let (_abc, abc_id) = join(&server, "/r?next=abc").await;
    expect_exact(&mut plain, &new_peer(&abc_id)).await;
    for client in [&mut two, &mut three, &mut other] {
        client.expect_silence(QUIET).await;
    }
    server.running.shutdown().await;
}

#[tokio::test]
async fn what_is_not_a_request_is_logged_and_ignored() {
    let server = server().await;
    let ((mut a, a_id), (mut b, b_id)) = pair(&server, "/room").await;
    for junk in
        ["{not json", "[1,2]", r#"{"Unknown":1}"#, r#"{"Signal":{"receiver":1,"data":{}}}"#, r#""keepalive""#, ""]
    {
        a.send_text(junk).await;
    }
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
    assert!(server.metric(r#"switchboard_errors_total{code="bad_json"}"#).await >= 6.0);
    // The connection is still there.
    a.send_text(&signal_to(&b_id, OFFER)).await;
    expect_exact(&mut b, &signal_from(&a_id, OFFER)).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_signal_to_an_unknown_receiver_is_dropped_without_a_word() {
    let server = server().await;
    let ((mut a, _), (mut b, b_id)) = pair(&server, "/room").await;
    let (mut elsewhere, elsewhere_id) = join(&server, "/elsewhere").await;
    for receiver in ["1b4e28ba-2fa1-41d2-883f-0016d3cca427", "00000000-0000-8000-8000-0000000fffff", "nobody"] {
        a.send_text(&signal_to(receiver, OFFER)).await;
    }
    // A peer of another room is unknown to this client, even by its id.
    a.send_text(&signal_to(&elsewhere_id, OFFER)).await;
    for client in [&mut a, &mut b, &mut elsewhere] {
        client.expect_silence(QUIET).await;
    }
    assert!(server.metric(r#"switchboard_errors_total{code="unknown_peer"}"#).await >= 4.0);
    // A peer that has left is unknown again.
    b.close().await;
    expect_exact(&mut a, &peer_left(&b_id)).await;
    a.send_text(&signal_to(&b_id, OFFER)).await;
    a.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn an_oversize_frame_closes_with_1009_and_the_others_hear_peer_left() {
    let server = server().await;
    let ((mut a, a_id), (mut b, b_id)) = pair(&server, "/room").await;
    let big = signal_to(&b_id, &format!(r#"{{"Offer":"{}"}}"#, "x".repeat(70_000)));
    a.send_text(&big).await;
    let (frames, ending) = a.read_to_end().await;
    assert!(frames.is_empty(), "{frames:?}");
    assert!(matches!(&ending, Ending::Close(1009, reason) if reason.contains("65536")), "{ending:?}");
    expect_exact(&mut b, &peer_left(&a_id)).await;
    b.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn a_nested_path_is_404_and_plain_http_gets_a_hint() {
    let server = server().await;
    let body = common::auth::refused(&server.ws_url("/a/b"), &[], 404).await;
    assert!(body.contains("one path segment"), "{body}");
    let (status, body) = server.get("/room").await;
    assert_eq!(status, 426, "{body}");
    assert!(body.contains("matchbox_socket"), "{body}");
    server.running.shutdown().await;
}

#[tokio::test]
async fn ice_servers_are_at_get_ice_and_a_room_may_be_called_ice() {
    let server = server().await;
    let (status, body) = server.get("/ice").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(v["iceServers"].is_array(), "{body}");
    let ((mut a, _), (mut b, _)) = pair(&server, "/ice").await;
    a.expect_silence(QUIET).await;
    b.expect_silence(QUIET).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn binary_frames_of_json_text_are_read_as_text() {
    let server = server().await;
    let ((mut a, a_id), (mut b, b_id)) = pair(&server, "/room").await;
    a.send_msg(Message::Binary(signal_to(&b_id, OFFER).into_bytes().into())).await;
    expect_exact(&mut b, &signal_from(&a_id, OFFER)).await;
    server.running.shutdown().await;
}

#[tokio::test]
async fn with_authentication_the_token_in_the_url_admits_to_the_rooms_it_lists() {
    let mut config = Config::single(DialectKind::Matchbox, "127.0.0.1:0".parse().unwrap());
    common::auth::on(&mut config);
    let server = TestServer::start(config).await;
    // No token: refused before the upgrade.
    common::auth::refused(&server.ws_url("/lobby"), &[], 401).await;
    let token = common::auth::token("player", &["lobby"]);
    // matchbox_socket connects to the URL it is given: the token rides in it.
    for path in ["/lobby", "/lobby?next=2"] {
        let (mut a, _) = join(&server, &format!("{path}{}access_token={token}", sep(path))).await;
        let (_b, b_id) = join(&server, &format!("{path}{}access_token={token}", sep(path))).await;
        expect_exact(&mut a, &new_peer(&b_id)).await;
    }
    // A room the token does not list: closed before any id, with the reason.
    for path in ["/other", "/other?next=2"] {
        let mut c = Client::connect(&server.ws_url(&format!("{path}{}access_token={token}", sep(path)))).await;
        let (frames, ending) = c.read_to_end().await;
        assert!(frames.is_empty(), "{path}: {frames:?}");
        assert!(matches!(&ending, Ending::Close(1008, r) if r.contains("'other'")), "{path}: {ending:?}");
    }
    server.running.shutdown().await;
}

fn sep(path: &str) -> char {
    if path.contains('?') { '&' } else { '?' }
}
