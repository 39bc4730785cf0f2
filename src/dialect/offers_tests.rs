//! Unit tests of the offer board: payload shapes, lookups, and the bounds
//! that replace the original's never-pruned list.

use std::time::{Duration, Instant};

use super::*;

const OFFER: &str = r#"{"type":"offer","sdp":"o"}"#;
const ANSWER: &str = r#"{"type":"answer","sdp":"a"}"#;

fn name(s: &str) -> Option<Name> {
    Some(Name::from(s))
}

fn board() -> Board {
    Board::new(BoardLimits {
        max_offers: 3,
        keep_after_leave: Duration::from_secs(60),
        max_candidates: 2,
        max_bytes: 1 << 20,
        max_item: 1 << 10,
        max_greeting: 64 << 10,
    })
}

fn ice(user: &str, n: u32, did_i_offer: bool) -> String {
    format!(r#"{{"iceCandidate":{{"candidate":"c{n}"}},"iceUserName":"{user}","didIOffer":{did_i_offer}}}"#)
}

#[test]
fn new_offer_payload_is_a_one_element_array_in_the_originals_field_order() {
    let mut b = board();
    let now = Instant::now();
    let awaiting = b.new_offer(name("Rob-1"), OFFER, now).unwrap();
    assert_eq!(
        awaiting,
        r#"[{"offererUserName":"Rob-1","offer":{"type":"offer","sdp":"o"},"offerIceCandidates":[],"answererUserName":null,"answer":null,"answererIceCandidates":[]}]"#
    );
    // A user without a name is JS `undefined`: the key is left out.
    let awaiting = b.new_offer(None, OFFER, now).unwrap();
    assert!(awaiting.starts_with(r#"[{"offer":"#), "{awaiting}");
}

#[test]
fn answer_acks_stored_candidates_before_recording_the_answer() {
    let mut b = board();
    let now = Instant::now();
    b.new_offer(name("Rob-1"), OFFER, now).unwrap();
    assert_eq!(b.ice(&ice("Rob-1", 1, true)).unwrap(), None, "held: nobody answered yet");
    let mut acked = None;
    let body = format!(r#"{{"offererUserName":"Rob-1","answer":{ANSWER}}}"#);
    let answered = b.answer(name("Rob-2"), &body, |c| acked = Some(c)).unwrap();
    assert_eq!(acked.as_deref(), Some(r#"[{"candidate":"c1"}]"#));
    assert_eq!(answered.offerer, name("Rob-1"));
    assert!(answered.response.contains(r#""answererUserName":"Rob-2","answer":{"type":"answer","sdp":"a"}"#));
    // Now offerer candidates go to the answerer, answerer's to the offerer.
    let relay = b.ice(&ice("Rob-1", 2, true)).unwrap().unwrap();
    assert_eq!((relay.to.as_ref(), relay.candidate.get()), ("Rob-2", r#"{"candidate":"c2"}"#));
    let relay = b.ice(&ice("Rob-2", 3, false)).unwrap().unwrap();
    assert_eq!((relay.to.as_ref(), relay.candidate.get()), ("Rob-1", r#"{"candidate":"c3"}"#));
}

#[test]
fn crash_cases_are_reported_not_thrown() {
    let mut b = board();
    let mut acked = false;
    let err = b.answer(name("Rob-2"), r#"{"offererUserName":"Nobody"}"#, |_| acked = true).unwrap_err();
    assert_eq!(err, Dropped::NoSuchOffer(Some("Nobody".into())));
    assert!(!acked, "no ack from the board when nothing matches");
    assert!(matches!(b.ice(&ice("Rob-2", 1, false)), Err(Dropped::NoSuchOffer(_))));
    assert!(matches!(b.ice("[1,2]"), Err(Dropped::BadPayload { .. })));
    assert!(matches!(b.ice(r#"{"iceUserName":"x"}"#), Err(Dropped::BadPayload { .. })));
    assert!(matches!(b.answer(None, "7", |_| {}), Err(Dropped::BadPayload { .. })));
    assert!(matches!(b.new_offer(None, "{not json", Instant::now()), Err(Dropped::BadPayload { .. })));
}

#[test]
fn stored_candidates_are_capped_but_still_relayed() {
    let mut b = board();
    b.new_offer(name("Rob-1"), OFFER, Instant::now()).unwrap();
    for n in 0..5 {
        b.ice(&ice("Rob-1", n, true)).unwrap();
    }
    assert_eq!(b.offers().next().unwrap().offer_ice_candidates.len(), 2);
    b.answer(name("Rob-2"), r#"{"offererUserName":"Rob-1"}"#, |_| {}).unwrap();
    assert!(b.ice(&ice("Rob-1", 9, true)).unwrap().is_some());
}

// Quirk of `offers`: stale offers are shown to new clients, but not forever.
#[test]
fn offers_of_departed_users_are_listed_for_a_while_then_pruned() {
    let mut b = board();
    let t0 = Instant::now();
    b.new_offer(name("Rob-1"), OFFER, t0).unwrap();
    b.new_offer(name("Rob-2"), OFFER, t0).unwrap();
    b.left(&Name::from("Rob-1"), t0);
    // Still listed to newcomers within the grace.
    let list = b.connected(name("Rob-3").as_ref(), t0 + Duration::from_secs(59)).unwrap().get().to_string();
    assert!(list.contains("Rob-1") && list.contains("Rob-2"));
    // Gone after it; the connected user's offer stays.
    let list = b.connected(name("Rob-3").as_ref(), t0 + Duration::from_secs(60)).unwrap().get().to_string();
    assert!(!list.contains("Rob-1") && list.contains("Rob-2"), "{list}");
    // A user who comes back (socket.io reconnects with the same auth)
    // revives its offers.
    b.left(&Name::from("Rob-2"), t0 + Duration::from_secs(60));
    b.connected(name("Rob-2").as_ref(), t0 + Duration::from_secs(100));
    assert_eq!(b.connected(None, t0 + Duration::from_secs(1000)).map(|l| l.get().contains("Rob-2")), Some(true));
    assert_eq!(b.len(), 1);
}

// Quirk of `offers`: the board never shrinks in the original; ours is capped.
#[test]
fn the_board_is_capped_evicting_departed_users_first() {
    let mut b = board();
    let t0 = Instant::now();
    for user in ["A", "B", "C"] {
        b.new_offer(name(user), OFFER, t0).unwrap();
    }
    b.left(&Name::from("B"), t0);
    b.new_offer(name("D"), OFFER, t0).unwrap();
    let users: Vec<_> = b.offers().map(|o| o.offerer_user_name.clone().unwrap()).collect();
    assert_eq!(users, ["A", "C", "D"].map(Name::from));
    // With nobody departed, the oldest goes.
    b.new_offer(name("E"), OFFER, t0).unwrap();
    let users: Vec<_> = b.offers().map(|o| o.offerer_user_name.clone().unwrap()).collect();
    assert_eq!(users, ["C", "D", "E"].map(Name::from));
}

#[test]
fn auth_checks() {
    assert!(password_ok(&serde_json::json!({"userName": "Rob-1", "password": "x"})));
    assert!(!password_ok(&serde_json::json!({"password": "X"})));
    assert!(!password_ok(&serde_json::Value::Null));
    assert_eq!(user_name(&serde_json::json!({"userName": "Rob-1"})), name("Rob-1"));
    assert_eq!(user_name(&serde_json::json!({"userName": 5})), None);
}

// Quirk of `offers`: the original stores payloads of any size (up to its
// 1 MB packet limit) forever; ours bounds each item and the whole board.
#[test]
fn payload_sizes_are_bounded_per_item_and_in_total() {
    let mut b = Board::new(BoardLimits {
        max_offers: 100,
        keep_after_leave: Duration::from_secs(60),
        max_candidates: 10,
        max_bytes: 200,
        max_item: 90,
        max_greeting: 64 << 10,
    });
    let t0 = Instant::now();
    let big = format!(r#"{{"sdp":"{}"}}"#, "x".repeat(100));
    assert!(matches!(b.new_offer(name("A"), &big, t0), Err(Dropped::TooLarge { .. })));
    let offer = format!(r#"{{"sdp":"{}"}}"#, "o".repeat(70)); // 81 bytes
    for user in ["A", "B", "C"] {
        b.new_offer(name(user), &offer, t0).unwrap();
    }
    // Three do not fit in 200 bytes: the oldest went.
    let users: Vec<_> = b.offers().map(|o| o.offerer_user_name.clone().unwrap()).collect();
    assert_eq!(users, ["B", "C"].map(Name::from));
    // A candidate past the budget is relayed but not stored.
    let cand = format!(r#"{{"iceCandidate":{{"candidate":"{}"}},"iceUserName":"B","didIOffer":true}}"#, "c".repeat(40));
    b.ice(&cand).unwrap();
    assert_eq!(b.offers().next().unwrap().offer_ice_candidates.len(), 0);
    let huge = format!(r#"{{"offererUserName":"B","answer":{big}}}"#);
    assert!(matches!(b.answer(name("Z"), &huge, |_| {}), Err(Dropped::TooLarge { .. })));
}

#[test]
fn a_newcomer_gets_the_newest_offers_that_fit_and_one_shared_copy() {
    let mut b = Board::new(BoardLimits { max_greeting: 3 * 1024, max_item: 2048, ..BoardLimits::default() });
    let sdp = |i: usize| format!(r#"{{"type":"offer","sdp":"{}{i}"}}"#, "v".repeat(900));
    let t0 = Instant::now();
    for i in 0..10 {
        b.new_offer(name(&format!("u{i}")), &sdp(i), t0).unwrap();
    }
    let first = b.connected(None, t0).expect("a greeting");
    let text = first.get();
    assert!(text.len() <= 3 * 1024, "bounded: {} bytes", text.len());
    assert!(text.contains("u9") && !text.contains("\"u0\""), "the newest: {text}");
    let again = b.connected(None, t0).expect("a greeting");
    assert!(std::sync::Arc::ptr_eq(&first, &again), "built once, shared by newcomers");
    b.new_offer(name("u10"), &sdp(10), t0).unwrap();
    let changed = b.connected(None, t0).expect("a greeting");
    assert!(changed.get().contains("u10"), "rebuilt after a change");
}

/// A change as another node's board peer sends it.
fn change_of(user: &str, body: &str, relayed: bool) -> String {
    let body: &RawValue = serde_json::from_str(body).unwrap();
    to_json(&ChangeOut { user: Some(user), body: Some(body), relayed })
}

fn greeting_of(b: &mut Board) -> String {
    b.connected(None, Instant::now()).map(|g| g.get().to_string()).unwrap_or_default()
}

#[test]
fn changes_made_on_another_node_make_the_same_board() {
    let (mut here, mut there) = (board(), board());
    let now = Instant::now();
    let live = |_: &str| true;
    let awaiting = here.new_offer(name("Rob-1"), OFFER, now).unwrap();
    let applied = there.apply(change::OFFER, &change_of("Rob-1", OFFER, false), now, live).unwrap();
    assert_eq!(applied.awaiting.as_deref(), Some(awaiting.as_str()), "announced to the other node's sockets");
    let cand = ice("Rob-1", 1, true);
    here.ice(&cand).unwrap();
    there.apply(change::ICE, &change_of("Rob-1", &cand, false), now, live).unwrap();
    let body = format!(r#"{{"offererUserName":"Rob-1","answer":{ANSWER}}}"#);
    let mut acked = None;
    there.answer(name("Rob-2"), &body, |c| acked = Some(c)).unwrap();
    assert_eq!(acked.as_deref(), Some(r#"[{"candidate":"c1"}]"#));
    let applied = here.apply(change::ANSWER, &change_of("Rob-2", &body, false), now, live).unwrap();
    assert_eq!(applied, Applied::default(), "an answer is announced to nobody");
    assert_eq!(greeting_of(&mut here), greeting_of(&mut there));
    assert!(greeting_of(&mut here).contains(r#""answererUserName":"Rob-2""#));
}

#[test]
fn an_offerer_candidate_nobody_relayed_is_relayed_by_the_answers_node() {
    let (mut offerers, mut answerers) = (board(), board());
    let now = Instant::now();
    let live = |_: &str| true;
    offerers.new_offer(name("Rob-1"), OFFER, now).unwrap();
    answerers.apply(change::OFFER, &change_of("Rob-1", OFFER, false), now, live).unwrap();
    answerers.answer(name("Rob-2"), r#"{"offererUserName":"Rob-1"}"#, |_| {}).unwrap();
    // The offerer's node has not heard of the answer yet: it stores the
    // candidate and relays it to nobody; the answer's node does.
    let cand = ice("Rob-1", 2, true);
    assert_eq!(offerers.ice(&cand).unwrap(), None);
    let applied = answerers.apply(change::ICE, &change_of("Rob-1", &cand, false), now, live).unwrap();
    let relay = applied.relay.expect("relayed by the answer's node");
    assert_eq!((relay.to.as_ref(), relay.candidate.get()), ("Rob-2", r#"{"candidate":"c2"}"#));
    // Once the offerer's node relays, the other does not again.
    offerers.apply(change::ANSWER, &change_of("Rob-2", r#"{"offererUserName":"Rob-1"}"#, false), now, live).unwrap();
    let cand = ice("Rob-1", 3, true);
    assert!(offerers.ice(&cand).unwrap().is_some());
    let applied = answerers.apply(change::ICE, &change_of("Rob-1", &cand, true), now, live).unwrap();
    assert_eq!(applied.relay, None);
    // A third node, where nobody answered, never relays.
    let mut third = board();
    third.apply(change::OFFER, &change_of("Rob-1", OFFER, false), now, live).unwrap();
    third.apply(change::ANSWER, &change_of("Rob-2", r#"{"offererUserName":"Rob-1"}"#, false), now, live).unwrap();
    let applied = third.apply(change::ICE, &change_of("Rob-1", &ice("Rob-1", 4, true), false), now, live).unwrap();
    assert_eq!(applied.relay, None);
}

#[test]
fn a_user_gone_everywhere_ages_out_on_every_node() {
    let mut b = board();
    let t0 = Instant::now();
    b.apply(change::OFFER, &change_of("Rob-1", OFFER, false), t0, |_| true).unwrap();
    b.apply(change::OFFER, &change_of("Rob-2", OFFER, false), t0, |_| true).unwrap();
    // Rob-1 left its node but has a socket on another: still live.
    b.apply(change::LEFT, &change_of("Rob-1", "null", false), t0, |_| true).unwrap();
    assert_eq!(b.connected(None, t0 + Duration::from_secs(61)).map(|_| b.len()), Some(2));
    b.apply(change::LEFT, &change_of("Rob-1", "null", false), t0, |_| false).unwrap();
    b.apply(change::BACK, &change_of("Rob-1", "null", false), t0, |_| true).unwrap();
    assert_eq!(b.connected(None, t0 + Duration::from_secs(61)).map(|_| b.len()), Some(2), "back: live again");
    // A node died: users with no socket left start to age; a user seen
    // connected again by a later sweep stops aging.
    b.sweep(t0, |n| n == "Rob-2");
    b.sweep(t0, |_| true);
    assert_eq!(b.connected(None, t0 + Duration::from_secs(61)).map(|_| b.len()), Some(2), "swept back");
    b.sweep(t0 + Duration::from_secs(61), |n| n == "Rob-2");
    b.connected(None, t0 + Duration::from_secs(121));
    let users: Vec<_> = b.offers().map(|o| o.offerer_user_name.clone().unwrap()).collect();
    assert_eq!(users, [Name::from("Rob-2")]);
}

#[test]
fn a_snapshot_merges_in_order_and_twice_is_once() {
    let (mut old, mut new) = (board(), board());
    let now = Instant::now();
    old.new_offer(name("A"), OFFER, now).unwrap();
    old.ice(&ice("A", 1, true)).unwrap();
    old.new_offer(name("B"), OFFER, now).unwrap();
    // The new node already has a newer offer of its own.
    new.new_offer(name("C"), OFFER, now).unwrap();
    let snap = old.snapshot();
    new.apply(change::SNAPSHOT, &snap, now, |_| true).unwrap();
    new.apply(change::SNAPSHOT, &snap, now, |_| true).unwrap();
    let users: Vec<_> = new.offers().map(|o| o.offerer_user_name.clone().unwrap()).collect();
    assert_eq!(users, ["A", "B", "C"].map(Name::from));
    assert_eq!(new.offers().next().unwrap().offer_ice_candidates.len(), 1);
    // A later snapshot brings an answer made meanwhile.
    old.answer(name("Z"), r#"{"offererUserName":"A","answer":{"sdp":"z"}}"#, |_| {}).unwrap();
    new.apply(change::SNAPSHOT, &old.snapshot(), now, |_| true).unwrap();
    assert_eq!(new.offers().next().unwrap().answerer_user_name, name("Z"));
    assert_eq!(new.len(), 3, "bounded by max_offers (3)");
    assert!(matches!(new.apply(change::SNAPSHOT, "{}", now, |_| true), Err(Dropped::BadPayload { .. })));
}
