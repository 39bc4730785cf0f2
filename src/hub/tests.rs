//! Hub unit tests: plain `#[test]`s, no runtime, no sockets.

use std::time::{Duration, Instant};

use super::*;

const S: SpaceId = SpaceId(0);

fn opts(grace: u64) -> PeerOpts {
    PeerOpts { grace: Duration::from_secs(grace), grant: None }
}

fn payload(s: &str) -> Payload {
    Payload::parse(s).expect("valid JSON")
}

struct World {
    hub: Hub,
    now: Instant,
    out: Vec<Delivery>,
}

impl World {
    fn new() -> World {
        World { hub: Hub::new(Limits::default()), now: Instant::now(), out: Vec::new() }
    }

    fn peer(&mut self, name: &str, grace: u64) -> PeerId {
        let id = self.hub.connect(S, opts(grace), Some(Name::from(format!("tok-{name}"))));
        self.cmd(id, Command::Claim { name: name.into(), exclusive: true }).expect("claim");
        id
    }

    fn cmd(&mut self, from: PeerId, cmd: Command) -> Result<Reply, HubError> {
        self.hub.handle(from, cmd, self.now, &mut self.out)
    }

    fn take(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.out)
    }

    fn ring(&mut self, from: PeerId, to: PeerId) -> CallId {
        match self.cmd(from, Command::Ring { to: Target::Id(to), meta: None }) {
            Ok(Reply::Ringing { call }) => call,
            other => panic!("expected ringing, got {other:?}"),
        }
    }

    fn signal(&mut self, from: PeerId, to: PeerId, body: &str) -> Result<Reply, HubError> {
        let cmd = Command::Signal {
            to: Target::Id(to),
            kind: "signal".into(),
            payload: payload(body),
            missing: Missing::Report,
            mark: Some(payload(&format!("\"{body}\""))),
        };
        self.cmd(from, cmd)
    }
}

#[test]
fn taken_name_is_refused() {
    let mut w = World::new();
    w.peer("alice", 0);
    let other = w.hub.connect(S, opts(0), None);
    assert_eq!(
        w.cmd(other, Command::Claim { name: "alice".into(), exclusive: true }),
        Err(HubError::NameTaken("alice".into()))
    );
}

#[test]
fn ring_then_accept_tells_caller() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let call = w.ring(a, b);
    assert!(matches!(&w.take()[..], [Delivery { to, event: Event::Ring { .. } }] if *to == b));
    assert_eq!(w.cmd(b, Command::Accept { call }), Ok(Reply::Done));
    assert!(matches!(&w.take()[..], [Delivery { to, event: Event::Accepted { .. } }] if *to == a));
}

#[test]
fn reject_frees_both_sides() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let call = w.ring(a, b);
    w.take();
    w.cmd(b, Command::Reject { call, reason: Some("not now".into()) }).unwrap();
    assert!(
        matches!(&w.take()[..], [Delivery { to, event: Event::Rejected { reason: Some(r), .. } }] if *to == a && &**r == "not now")
    );
    assert_eq!(w.hub.call_of(a), None);
    assert_eq!(w.hub.call_of(b), None);
}

#[test]
fn busy_callee_is_refused() {
    let mut w = World::new();
    let (a, b, c) = (w.peer("a", 0), w.peer("b", 0), w.peer("c", 0));
    w.ring(a, b);
    assert_eq!(w.cmd(c, Command::Ring { to: Target::Id(b), meta: None }), Err(HubError::Busy(Target::Id(b))));
}

#[test]
fn caller_may_cancel_but_callee_may_not() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let call = w.ring(a, b);
    w.take();
    assert_eq!(w.cmd(b, Command::Cancel { call }), Err(HubError::UnknownCall(call)));
    w.cmd(a, Command::Cancel { call }).unwrap();
    assert!(
        matches!(&w.take()[..], [Delivery { to, event: Event::Ended { reason: EndReason::Cancelled, .. } }] if *to == b)
    );
}

#[test]
fn hangup_tells_partner() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let call = w.ring(a, b);
    w.cmd(b, Command::Accept { call }).unwrap();
    w.take();
    w.cmd(b, Command::Hangup { call }).unwrap();
    assert!(
        matches!(&w.take()[..], [Delivery { to, event: Event::Ended { reason: EndReason::Hangup, .. } }] if *to == a)
    );
    assert_eq!(w.hub.census().calls, 0);
}

#[test]
fn unanswered_call_times_out_for_both() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    w.ring(a, b);
    w.take();
    let later = w.now + Limits::default().ring_timeout;
    w.hub.tick(later, &mut w.out);
    let to: Vec<PeerId> = w
        .take()
        .into_iter()
        .filter(|d| matches!(d.event, Event::Ended { reason: EndReason::Timeout, .. }))
        .map(|d| d.to)
        .collect();
    assert_eq!(to, vec![a, b]);
}

#[test]
fn partner_disconnect_ends_call_with_reason() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let call = w.ring(a, b);
    w.cmd(b, Command::Accept { call }).unwrap();
    w.take();
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    assert!(
        matches!(&w.take()[..], [Delivery { to, event: Event::Ended { reason: EndReason::PeerGone, .. } }] if *to == a)
    );
}

#[test]
fn away_peer_gets_queued_signals_in_order_on_resume() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 30), w.peer("b", 30));
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    for i in 0..5 {
        assert_eq!(w.signal(a, b, &i.to_string()), Ok(Reply::Queued));
    }
    assert!(w.take().is_empty());
    let (id, waiting) = w.hub.resume(S, "tok-b", None, &mut w.out).expect("resume");
    assert_eq!(id, b);
    let bodies: Vec<String> = waiting
        .into_iter()
        .map(|e| match e {
            Event::Signal { payload, .. } => payload.get().to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(bodies, ["0", "1", "2", "3", "4"]);
}

#[test]
fn grace_expiry_tells_each_sender() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 30), w.peer("b", 30));
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    w.signal(a, b, "1").unwrap();
    w.signal(a, b, "2").unwrap();
    w.hub.tick(w.now + Duration::from_secs(30), &mut w.out);
    let marks: Vec<String> = w
        .take()
        .into_iter()
        .filter(|d| d.to == a)
        .filter_map(|d| match d.event {
            Event::Undeliverable { mark: Some(m), reason: Undelivered::PeerGone, .. } => Some(m.get().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(marks, ["\"1\"", "\"2\""]);
    assert!(!w.hub.contains(b));
    assert_eq!(w.hub.resume(S, "tok-b", None, &mut w.out).map(|r| r.0), Err(HubError::BadToken));
}

#[test]
fn a_token_is_unknown_in_another_space() {
    let mut w = World::new();
    let b = w.peer("b", 30);
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    assert_eq!(w.hub.resume(SpaceId(1), "tok-b", None, &mut w.out).map(|r| r.0), Err(HubError::BadToken));
    assert!(w.hub.is_away(b));
    assert_eq!(w.hub.resume(S, "tok-b", None, &mut w.out).map(|r| r.0), Ok(b));
}

#[test]
fn held_signal_is_delivered_when_name_is_claimed() {
    let mut w = World::new();
    let a = w.peer("a", 0);
    let cmd = Command::Signal {
        to: Target::Name("later".into()),
        kind: "OFFER".into(),
        payload: payload("{}"),
        missing: Missing::Hold(Duration::from_secs(5)),
        mark: None,
    };
    assert_eq!(w.cmd(a, cmd), Ok(Reply::Queued));
    let b = w.peer("later", 0);
    assert!(matches!(&w.take()[..], [Delivery { to, event: Event::Signal { .. } }] if *to == b));
    assert_eq!(w.hub.census().held, 0);
}

#[test]
fn held_signal_expires_and_sender_is_told() {
    let mut w = World::new();
    let a = w.peer("a", 0);
    let cmd = Command::Signal {
        to: Target::Name("never".into()),
        kind: "OFFER".into(),
        payload: payload("{}"),
        missing: Missing::Hold(Duration::from_secs(5)),
        mark: None,
    };
    w.cmd(a, cmd).unwrap();
    w.hub.tick(w.now + Duration::from_secs(5), &mut w.out);
    assert!(matches!(
        &w.take()[..],
        [Delivery { to, event: Event::Undeliverable { reason: Undelivered::Expired, .. } }] if *to == a
    ));
}

#[test]
fn room_presence_and_capacity() {
    let mut w = World::new();
    let (a, b, c) = (w.peer("a", 0), w.peer("b", 0), w.peer("c", 0));
    let join = |max| Command::Join { room: "r".into(), info: None, max: Some(max) };
    w.cmd(a, join(2)).unwrap();
    match w.cmd(b, join(2)) {
        Ok(Reply::Joined { members }) => assert_eq!(members.iter().map(|m| m.id).collect::<Vec<_>>(), vec![a]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(&w.take()[..], [Delivery { to, event: Event::Joined { .. } }] if *to == a));
    assert_eq!(w.cmd(c, join(2)), Err(HubError::RoomFull("r".into(), 2)));
    w.hub.disconnect(b, true, Vec::new(), w.now, &mut w.out);
    assert!(matches!(&w.take()[..], [Delivery { to, event: Event::Left { .. } }] if *to == a));
}

#[test]
fn joining_again_with_a_profile_replaces_it_and_tells_the_others() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let join = |info: Option<&str>| Command::Join { room: "r".into(), info: info.map(payload), max: None };
    w.cmd(a, join(None)).unwrap();
    w.cmd(b, join(Some(r#"{"v":1}"#))).unwrap();
    w.take();
    // Without a profile, joining again changes nothing and tells nobody.
    w.cmd(b, join(None)).unwrap();
    assert!(w.take().is_empty());
    w.cmd(b, join(Some(r#"{"v":2}"#))).unwrap();
    match &w.take()[..] {
        [Delivery { to, event: Event::Joined { peer, .. } }] if *to == a => {
            assert_eq!(peer.info, Some(payload(r#"{"v":2}"#)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.hub.members(S, "r").iter().map(|m| m.id).collect::<Vec<_>>(), vec![a, b]);
}

#[test]
fn names_in_lists_every_name_of_a_space_in_connect_then_claim_order() {
    let mut w = World::new();
    let a = w.peer("alice", 0);
    let b = w.peer("bob", 0);
    w.cmd(a, Command::Claim { name: "alice2".into(), exclusive: true }).expect("second name");
    let other = w.hub.connect(SpaceId(1), opts(0), None);
    w.cmd(other, Command::Claim { name: "carol".into(), exclusive: true }).expect("other space");
    let names: Vec<String> = w.hub.names_in(S).iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["alice", "alice2", "bob"]);
    w.hub.disconnect(b, true, Vec::new(), w.now, &mut w.out);
    let names: Vec<String> = w.hub.names_in(S).iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["alice", "alice2"]);
}

/// Events delivered, as (recipient, event), for compact assertions.
fn ended(out: &[Delivery]) -> Vec<(PeerId, EndReason)> {
    out.iter()
        .filter_map(|d| match d.event {
            Event::Ended { reason, .. } => Some((d.to, reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn only_the_callee_may_accept_and_only_once() {
    let mut w = World::new();
    let (a, b, c) = (w.peer("a", 0), w.peer("b", 0), w.peer("c", 0));
    let call = w.ring(a, b);
    w.take();
    assert_eq!(w.cmd(a, Command::Accept { call }), Err(HubError::UnknownCall(call)));
    assert_eq!(w.cmd(c, Command::Accept { call }), Err(HubError::UnknownCall(call)));
    assert_eq!(w.cmd(b, Command::Accept { call }), Ok(Reply::Done));
    assert_eq!(w.cmd(b, Command::Accept { call }), Err(HubError::UnknownCall(call)));
    assert!(matches!(&w.take()[..], [Delivery { to, event: Event::Accepted { .. } }] if *to == a));
}

#[test]
fn only_the_callee_may_reject_and_only_while_ringing() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let call = w.ring(a, b);
    assert_eq!(w.cmd(a, Command::Reject { call, reason: None }), Err(HubError::UnknownCall(call)));
    w.cmd(b, Command::Accept { call }).unwrap();
    assert_eq!(w.cmd(b, Command::Reject { call, reason: None }), Err(HubError::UnknownCall(call)));
    assert_eq!(w.cmd(a, Command::Cancel { call }), Err(HubError::UnknownCall(call)), "no cancel once answered");
    assert_eq!(w.hub.census().calls, 1);
}

#[test]
fn either_side_may_hang_up_a_ringing_call() {
    for callee_hangs_up in [false, true] {
        let mut w = World::new();
        let (a, b) = (w.peer("a", 0), w.peer("b", 0));
        let call = w.ring(a, b);
        w.take();
        let (who, partner) = if callee_hangs_up { (b, a) } else { (a, b) };
        w.cmd(who, Command::Hangup { call }).unwrap();
        assert_eq!(ended(&w.take()), [(partner, EndReason::Hangup)]);
        assert_eq!((w.hub.call_of(a), w.hub.call_of(b)), (None, None));
    }
}

#[test]
fn strangers_cannot_touch_a_call() {
    let mut w = World::new();
    let (a, b, c) = (w.peer("a", 0), w.peer("b", 0), w.peer("c", 0));
    let call = w.ring(a, b);
    for cmd in [Command::Hangup { call }, Command::Cancel { call }, Command::Reject { call, reason: None }] {
        assert_eq!(w.cmd(c, cmd), Err(HubError::UnknownCall(call)));
    }
    let nowhere = CallId(999);
    assert_eq!(w.cmd(a, Command::Hangup { call: nowhere }), Err(HubError::UnknownCall(nowhere)));
    assert_eq!(w.hub.call_of(a), Some(call));
}

#[test]
fn calling_oneself_or_nobody_is_refused() {
    let mut w = World::new();
    let a = w.peer("a", 0);
    assert_eq!(w.cmd(a, Command::Ring { to: Target::Id(a), meta: None }), Err(HubError::SelfCall));
    assert_eq!(w.cmd(a, Command::Ring { to: Target::Name("a".into()), meta: None }), Err(HubError::SelfCall));
    let ghost = Target::Name("ghost".into());
    assert_eq!(w.cmd(a, Command::Ring { to: ghost.clone(), meta: None }), Err(HubError::UnknownPeer(ghost)));
    assert_eq!(w.hub.census().calls, 0);
}

#[test]
fn a_caller_in_a_call_cannot_ring_another() {
    let mut w = World::new();
    let (a, b, c) = (w.peer("a", 0), w.peer("b", 0), w.peer("c", 0));
    let call = w.ring(a, b);
    assert_eq!(w.cmd(a, Command::Ring { to: Target::Id(c), meta: None }), Err(HubError::AlreadyInCall));
    assert_eq!(w.cmd(b, Command::Ring { to: Target::Id(c), meta: None }), Err(HubError::AlreadyInCall));
    w.cmd(b, Command::Accept { call }).unwrap();
    assert_eq!(
        w.cmd(c, Command::Ring { to: Target::Name("a".into()), meta: None }),
        Err(HubError::Busy(Target::Name("a".into())))
    );
    assert_eq!(w.hub.call_of(c), None);
}

#[test]
fn an_answered_call_never_times_out() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let call = w.ring(a, b);
    w.cmd(b, Command::Accept { call }).unwrap();
    w.take();
    w.hub.tick(w.now + Limits::default().ring_timeout * 2, &mut w.out);
    assert!(w.take().is_empty());
    assert_eq!(w.hub.call_of(a), Some(call));
}

#[test]
fn a_partner_away_is_announced_then_back_then_gone_after_grace() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 10), w.peer("b", 10));
    let call = w.ring(a, b);
    w.cmd(b, Command::Accept { call }).unwrap();
    w.take();
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    assert!(
        matches!(&w.take()[..], [Delivery { to, event: Event::PartnerAway { peer, .. } }] if *to == a && *peer == b)
    );
    assert_eq!(w.hub.census().away, 1);
    w.hub.resume(S, "tok-b", None, &mut w.out).unwrap();
    assert!(
        matches!(&w.take()[..], [Delivery { to, event: Event::PartnerBack { peer, .. } }] if *to == a && *peer == b)
    );
    assert_eq!(w.hub.call_of(b), Some(call), "the call survives a resume");

    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    w.take();
    w.hub.tick(w.now + Duration::from_secs(9), &mut w.out);
    assert!(w.take().is_empty(), "still within grace");
    w.hub.tick(w.now + Duration::from_secs(10), &mut w.out);
    assert_eq!(ended(&w.take()), [(a, EndReason::PeerGone)]);
    assert_eq!(w.hub.call_of(a), None);
}

#[test]
fn the_away_queue_is_bounded() {
    let mut w = World::new();
    w.hub = Hub::new(Limits { away_queue: 3, ..Limits::default() });
    let (a, b) = (w.peer("a", 30), w.peer("b", 30));
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    for i in 0..3 {
        assert_eq!(w.signal(a, b, &i.to_string()), Ok(Reply::Queued));
    }
    assert_eq!(w.signal(a, b, "3"), Err(HubError::QueueFull(Target::Id(b))));
    let (_, waiting) = w.hub.resume(S, "tok-b", None, &mut w.out).unwrap();
    assert_eq!(waiting.len(), 3);
}

#[test]
fn leftovers_of_a_dropped_connection_keep_the_away_queue_bounded_and_are_reported() {
    let mut w = World::new();
    w.hub = Hub::new(Limits { away_queue: 2, ..Limits::default() });
    let (a, b) = (w.peer("a", 30), w.peer("b", 30));
    for i in 0..5 {
        w.signal(a, b, &i.to_string()).unwrap();
    }
    let unsent: Vec<Event> = w.take().into_iter().map(|d| d.event).collect();
    w.hub.disconnect(b, false, unsent, w.now, &mut w.out);
    let told: Vec<String> = w
        .take()
        .into_iter()
        .map(|d| match d.event {
            Event::Undeliverable { mark: Some(m), reason: Undelivered::PeerGone, .. } if d.to == a => m.get().into(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(told, ["\"4\""], "the newest beyond twice the bound");
    let (_, waiting) = w.hub.resume(S, "tok-b", None, &mut w.out).unwrap();
    assert_eq!(waiting.len(), 4, "the oldest are kept, in order");
}

#[test]
fn held_signals_are_bounded_per_name_and_in_total() {
    let mut w = World::new();
    w.hub = Hub::new(Limits { hold_per_name: 2, hold_total: 3, ..Limits::default() });
    let a = w.peer("a", 0);
    let hold = |to: &str| hold_for(to, payload("{}"));
    assert_eq!(w.cmd(a, hold("x")), Ok(Reply::Queued));
    assert_eq!(w.cmd(a, hold("x")), Ok(Reply::Queued));
    assert_eq!(w.cmd(a, hold("x")), Err(HubError::QueueFull(Target::Name("x".into()))));
    assert_eq!(w.cmd(a, hold("y")), Ok(Reply::Queued));
    assert_eq!(w.cmd(a, hold("z")), Err(HubError::QueueFull(Target::Name("z".into()))));
    assert_eq!(w.hub.census().held, 3);
}

#[test]
fn a_refused_hold_leaves_no_entry_behind() {
    // Found by the hub fuzzer: with the total reached, each refused hold for
    // a new name left an empty queue keyed by that name until the next tick.
    let mut w = World::new();
    w.hub = Hub::new(Limits { hold_total: 1, ..Limits::default() });
    let a = w.peer("a", 0);
    let hold = |to: &str| hold_for(to, payload("{}"));
    assert_eq!(w.cmd(a, hold("x")), Ok(Reply::Queued));
    for name in ["y", "z"] {
        assert_eq!(w.cmd(a, hold(name)), Err(HubError::QueueFull(Target::Name(name.into()))));
    }
    assert_eq!(w.hub.held.len(), 1, "only the queue of x");
}

#[test]
fn a_clean_goodbye_reports_unsent_signals_to_their_senders() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 30), w.peer("b", 30));
    w.signal(a, b, "7").unwrap();
    let unsent: Vec<Event> = w.take().into_iter().map(|d| d.event).collect();
    w.hub.disconnect(b, true, unsent, w.now, &mut w.out);
    assert!(matches!(
        &w.take()[..],
        [Delivery { to, event: Event::Undeliverable { mark: Some(m), reason: Undelivered::PeerGone, .. } }]
            if *to == a && m.get() == "\"7\""
    ));
    assert!(!w.hub.contains(b), "a goodbye is final even with a grace period");
}

#[test]
fn unknown_targets_follow_the_missing_policy() {
    let mut w = World::new();
    let a = w.peer("a", 0);
    let to = Target::Name("ghost".into());
    let sig =
        |missing| Command::Signal { to: to.clone(), kind: "k".into(), payload: payload("1"), missing, mark: None };
    assert_eq!(w.cmd(a, sig(Missing::Drop)), Ok(Reply::Dropped));
    assert_eq!(w.cmd(a, sig(Missing::Report)), Err(HubError::UnknownPeer(to.clone())));
    assert!(w.take().is_empty());
}

#[test]
fn leaving_a_room_tells_the_rest_and_empty_rooms_vanish() {
    let mut w = World::new();
    let (a, b) = (w.peer("a", 0), w.peer("b", 0));
    let join = Command::Join { room: "r".into(), info: None, max: None };
    w.cmd(a, join.clone()).unwrap();
    w.cmd(b, join.clone()).unwrap();
    // Joining again changes nothing and tells nobody.
    w.take();
    assert!(matches!(w.cmd(b, join), Ok(Reply::Joined { members }) if members.len() == 1));
    assert!(w.take().is_empty());
    assert_eq!(w.cmd(b, Command::Leave { room: "r".into() }), Ok(Reply::Done));
    assert!(matches!(&w.take()[..], [Delivery { to, event: Event::Left { peer, .. } }] if *to == a && peer.id == b));
    assert_eq!(w.cmd(b, Command::Leave { room: "r".into() }), Err(HubError::NotInRoom("r".into())));
    w.cmd(a, Command::Leave { room: "r".into() }).unwrap();
    assert_eq!(w.hub.census().rooms, 0);
    assert!(w.hub.members(S, "r").is_empty());
}

#[test]
fn broadcast_reaches_every_other_member_only() {
    let mut w = World::new();
    let (a, b, c, d) = (w.peer("a", 0), w.peer("b", 0), w.peer("c", 0), w.peer("d", 0));
    for p in [a, b, c] {
        w.cmd(p, Command::Join { room: "r".into(), info: None, max: None }).unwrap();
    }
    w.take();
    let cast = |room: &str| Command::Broadcast { room: room.into(), kind: "k".into(), payload: payload("{\"x\":1}") };
    assert_eq!(w.cmd(a, cast("r")), Ok(Reply::Sent));
    let mut to: Vec<PeerId> = w
        .take()
        .into_iter()
        .map(|d| match d.event {
            Event::Signal { from, room: Some(room), .. } if from.id == a && &*room == "r" => d.to,
            other => panic!("{other:?}"),
        })
        .collect();
    to.sort();
    assert_eq!(to, [b, c]);
    assert_eq!(w.cmd(d, cast("r")), Err(HubError::NotInRoom("r".into())));
}

#[test]
fn a_shared_name_finds_its_earliest_holder() {
    let mut w = World::new();
    let (a, b) = (w.hub.connect(S, opts(0), None), w.hub.connect(S, opts(0), None));
    for p in [a, b] {
        w.cmd(p, Command::Claim { name: "desk".into(), exclusive: false }).unwrap();
    }
    assert_eq!(w.hub.lookup(S, "desk"), Some(a));
    w.hub.disconnect(a, true, Vec::new(), w.now, &mut w.out);
    assert_eq!(w.hub.lookup(S, "desk"), Some(b));
    assert_eq!(w.cmd(b, Command::Claim { name: "desk".into(), exclusive: true }), Ok(Reply::Done), "already held");
}

#[test]
fn the_away_queue_is_bounded_by_bytes_per_peer_and_in_total() {
    let mut w = World::new();
    let big = format!("[{}]", vec!["1"; 4096].join(","));
    let weight = |w: &mut World, a, b| {
        w.signal(a, b, &big).unwrap();
        w.take()[0].event.weight()
    };
    let (a, b, c) = (w.peer("a", 30), w.peer("b", 30), w.peer("c", 30));
    let one = weight(&mut w, a, b);
    w.hub = Hub::new(Limits { away_bytes: 3 * one, away_total_bytes: 5 * one, ..Limits::default() });
    let (a, b, c2) = (w.peer("a", 30), w.peer("b", 30), w.peer("c", 30));
    let _ = c;
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    w.hub.disconnect(c2, false, Vec::new(), w.now, &mut w.out);
    for _ in 0..3 {
        assert_eq!(w.signal(a, b, &big), Ok(Reply::Queued));
    }
    assert_eq!(w.signal(a, b, &big), Err(HubError::QueueFull(Target::Id(b))), "per peer");
    assert_eq!(w.signal(a, c2, &big), Ok(Reply::Queued));
    assert_eq!(w.signal(a, c2, &big), Ok(Reply::Queued));
    assert_eq!(w.signal(a, c2, &big), Err(HubError::QueueFull(Target::Id(c2))), "in total");
    // A resume gives the bytes back.
    let (_, waiting) = w.hub.resume(S, "tok-b", None, &mut w.out).unwrap();
    assert_eq!(waiting.len(), 3);
    assert_eq!(w.signal(a, c2, &big), Ok(Reply::Queued));
}

#[test]
fn held_signals_are_bounded_by_bytes_per_name_and_in_total() {
    let mut w = World::new();
    let a0 = w.peer("a", 0);
    let big = payload(&format!("\"{}\"", "x".repeat(60_000)));
    let hold = |to: &str| hold_for(to, big.clone());
    assert_eq!(w.cmd(a0, hold("x")), Ok(Reply::Queued));
    let one = w.hub.held.values().flatten().map(|h| h.weight).sum::<usize>();
    w.hub = Hub::new(Limits { hold_bytes_per_name: 2 * one, hold_total_bytes: 3 * one, ..Limits::default() });
    let a = w.peer("a", 0);
    assert_eq!(w.cmd(a, hold("x")), Ok(Reply::Queued));
    assert_eq!(w.cmd(a, hold("x")), Ok(Reply::Queued));
    assert_eq!(w.cmd(a, hold("x")), Err(HubError::QueueFull(Target::Name("x".into()))), "per name");
    assert_eq!(w.cmd(a, hold("y")), Ok(Reply::Queued));
    assert_eq!(w.cmd(a, hold("z")), Err(HubError::QueueFull(Target::Name("z".into()))), "in total");
    // Expiry gives the bytes back.
    w.now += Duration::from_secs(6);
    w.hub.tick(w.now, &mut w.out);
    assert_eq!((w.hub.census().held, w.hub.held_bytes), (0, 0));
    assert_eq!(w.cmd(a, hold("z")), Ok(Reply::Queued));
}

#[test]
fn rooms_per_peer_and_members_per_room_are_bounded() {
    let mut w = World::new();
    w.hub = Hub::new(Limits { rooms_per_peer: 2, room_members: 2, ..Limits::default() });
    let (a, b, c) = (w.peer("a", 0), w.peer("b", 0), w.peer("c", 0));
    let join = |room: &str| Command::Join { room: room.into(), info: None, max: None };
    assert!(w.cmd(a, join("r1")).is_ok());
    assert!(w.cmd(a, join("r2")).is_ok());
    assert_eq!(w.cmd(a, join("r3")), Err(HubError::TooManyRooms(2)));
    // Dialects' own rooms (presence lists) do not count.
    assert!(w.cmd(a, join("\u{0}presence")).is_ok());
    assert!(w.cmd(b, join("r1")).is_ok());
    assert_eq!(w.cmd(c, join("r1")), Err(HubError::RoomFull("r1".into(), 2)));
    // A room's own smaller bound still applies.
    assert!(w.cmd(b, Command::Join { room: "r2".into(), info: None, max: Some(1) }).is_err());
}

fn granted(name: &str, rooms: Rooms) -> PeerOpts {
    PeerOpts { grace: Duration::from_secs(30), grant: Some(Grant { name: name.into(), rooms }) }
}

#[test]
fn a_grant_allows_its_name_only_exclusive_or_shared() {
    let mut w = World::new();
    let a = w.hub.connect(S, granted("alice", Rooms::Any), None);
    let bob = Command::Claim { name: "bob".into(), exclusive: true };
    assert_eq!(w.cmd(a, bob), Err(HubError::NotAllowed(Denied::Name("bob".into()))));
    let shared = Command::Claim { name: "bob".into(), exclusive: false };
    assert_eq!(w.cmd(a, shared).map_err(|e| e.code()), Err("forbidden"));
    assert_eq!(w.hub.lookup(S, "bob"), None, "a refused claim holds nothing");
    assert_eq!(w.cmd(a, Command::Claim { name: "alice".into(), exclusive: true }), Ok(Reply::Done));
    assert_eq!(w.hub.lookup(S, "alice"), Some(a));
    let open = w.hub.connect(S, opts(0), None);
    assert_eq!(
        w.cmd(open, Command::Claim { name: "carol".into(), exclusive: true }),
        Ok(Reply::Done),
        "no grant: any name"
    );
}

#[test]
fn a_grant_allows_its_rooms_and_internal_ones() {
    let mut w = World::new();
    let a = w.hub.connect(S, granted("alice", Rooms::Only(vec!["r1".into()])), None);
    let join = |room: &str| Command::Join { room: room.into(), info: None, max: None };
    assert_eq!(w.cmd(a, join("r2")), Err(HubError::NotAllowed(Denied::Room("r2".into()))));
    assert!(w.hub.members(S, "r2").is_empty());
    assert_eq!(w.cmd(a, join("r1")), Ok(Reply::Joined { members: vec![] }));
    assert!(matches!(w.cmd(a, join("\u{0}lobby")), Ok(Reply::Joined { .. })), "dialect bookkeeping is no claim");
    let none = w.hub.connect(S, granted("bob", Rooms::Only(vec![])), None);
    assert_eq!(w.cmd(none, join("r1")).map_err(|e| e.code()), Err("forbidden"));
    let any = w.hub.connect(S, granted("carol", Rooms::Any), None);
    assert!(matches!(w.cmd(any, join("r9")), Ok(Reply::Joined { .. })));
}

#[test]
fn a_resume_token_works_only_for_the_same_identity_and_takes_the_new_grant() {
    let mut w = World::new();
    let b = w.hub.connect(S, granted("bob", Rooms::Only(vec![])), Some("tok-b".into()));
    w.hub.disconnect(b, false, Vec::new(), w.now, &mut w.out);
    let mallory = Some(Grant { name: "mallory".into(), rooms: Rooms::Any });
    assert_eq!(w.hub.resume(S, "tok-b", mallory, &mut w.out).map(|r| r.0), Err(HubError::NotAllowed(Denied::Resume)));
    assert_eq!(w.hub.resume(S, "tok-b", None, &mut w.out).map(|r| r.0).map_err(|e| e.code()), Err("forbidden"));
    assert!(w.hub.is_away(b), "a refused resume leaves the peer away");
    let fresh = Some(Grant { name: "bob".into(), rooms: Rooms::Any });
    assert_eq!(w.hub.resume(S, "tok-b", fresh, &mut w.out).map(|r| r.0), Ok(b));
    let join = Command::Join { room: "r1".into(), info: None, max: None };
    assert!(matches!(w.cmd(b, join), Ok(Reply::Joined { .. })), "the new token's rooms apply");
}

/// A PeerJS-style signal to the name `to`, held 5 s while nobody claims it.
fn hold_for(to: &str, body: Payload) -> Command {
    Command::Signal {
        to: Target::Name(to.into()),
        kind: "OFFER".into(),
        payload: body,
        missing: Missing::Hold(Duration::from_secs(5)),
        mark: None,
    }
}
