//! Unit tests of keyed claims ([`Hub::connect_keyed`]) and of the per-space
//! population and held-signal expiry notices they rely on.

use std::time::{Duration, Instant};

use super::*;

const S: SpaceId = SpaceId(7);

fn opts(grace: u64) -> PeerOpts {
    PeerOpts { grace: Duration::from_secs(grace), grant: None }
}

fn keyed(hub: &mut Hub, name: &str, key: &str, dead: bool, out: &mut Vec<Delivery>) -> Result<Keyed, HubError> {
    hub.connect_keyed(S, opts(30), name.into(), key.into(), Some(3), |_| dead, out)
}

fn new_peer(k: Result<Keyed, HubError>) -> PeerId {
    match k {
        Ok(Keyed::New(p)) => p,
        other => panic!("expected a new peer, got {other:?}"),
    }
}

fn signal(hub: &mut Hub, from: PeerId, to: &str, body: &str, now: Instant, out: &mut Vec<Delivery>) -> Reply {
    let cmd = Command::Signal {
        to: Target::Name(to.into()),
        kind: "OFFER".into(),
        payload: Payload::parse(body).expect("json"),
        missing: Missing::Hold(Duration::from_secs(5)),
        mark: None,
    };
    hub.handle(from, cmd, now, out).expect("signal accepted")
}

#[test]
fn same_key_resumes_and_other_key_is_refused_while_alive() {
    let mut hub = Hub::new(Limits::default());
    let mut out = Vec::new();
    let a = new_peer(keyed(&mut hub, "alice", "k1", false, &mut out));
    assert_eq!(hub.lookup(S, "alice"), Some(a));
    assert_eq!(keyed(&mut hub, "alice", "k2", false, &mut out), Err(HubError::NameTaken("alice".into())));
    assert_eq!(keyed(&mut hub, "alice", "k1", false, &mut out), Ok(Keyed::Resumed(a, Vec::new())));
    assert_eq!(hub.population(S), 1);
}

#[test]
fn other_key_replaces_a_dead_or_away_holder_and_inherits_its_queue() {
    let mut hub = Hub::new(Limits::default());
    let mut out = Vec::new();
    let now = Instant::now();
    let a = new_peer(keyed(&mut hub, "alice", "k1", false, &mut out));
    let b = new_peer(keyed(&mut hub, "bob", "kb", false, &mut out));
    // Judged dead by the caller: replaced at once.
    let a2 = match keyed(&mut hub, "alice", "k2", true, &mut out) {
        Ok(Keyed::Replaced { peer, old, waiting }) => {
            assert_eq!(old, a);
            assert!(waiting.is_empty());
            peer
        }
        other => panic!("expected a replacement, got {other:?}"),
    };
    assert!(!hub.contains(a));
    assert_eq!(hub.lookup(S, "alice"), Some(a2));
    // Away (dropped without goodbye): messages wait, and a new key takes them.
    hub.disconnect(a2, false, Vec::new(), now, &mut out);
    assert_eq!(signal(&mut hub, b, "alice", "1", now, &mut out), Reply::Queued);
    match keyed(&mut hub, "alice", "k3", false, &mut out) {
        Ok(Keyed::Replaced { old, waiting, .. }) => {
            assert_eq!(old, a2);
            assert_eq!(waiting.len(), 1);
        }
        other => panic!("expected a replacement, got {other:?}"),
    }
    assert_eq!(hub.population(S), 2);
}

#[test]
fn limit_counts_the_space_and_frees_on_removal() {
    let mut hub = Hub::new(Limits::default());
    let mut out = Vec::new();
    let now = Instant::now();
    let ids: Vec<PeerId> = ["a", "b", "c"].iter().map(|n| new_peer(keyed(&mut hub, n, "k", false, &mut out))).collect();
    assert_eq!(keyed(&mut hub, "d", "k", false, &mut out), Err(HubError::SpaceFull(3)));
    // Another space is not counted.
    assert_eq!(hub.population(SpaceId(8)), 0);
    hub.disconnect(ids[0], true, Vec::new(), now, &mut out);
    assert_eq!(hub.population(S), 2);
    new_peer(keyed(&mut hub, "d", "k", false, &mut out));
}

#[test]
fn held_signals_reach_a_keyed_claim_and_expire_with_one_notice() {
    let mut hub = Hub::new(Limits::default());
    let mut out = Vec::new();
    let now = Instant::now();
    let a = new_peer(keyed(&mut hub, "alice", "k", false, &mut out));
    for i in 0..3 {
        assert_eq!(signal(&mut hub, a, "bob", &i.to_string(), now, &mut out), Reply::Queued);
    }
    assert_eq!(signal(&mut hub, a, "carol", "9", now, &mut out), Reply::Queued);
    // bob connects: gets the three in order.
    let b = new_peer(keyed(&mut hub, "bob", "k", false, &mut out));
    let got: Vec<String> = out
        .drain(..)
        .filter(|d| d.to == b)
        .map(|d| match d.event {
            Event::Signal { payload, .. } => payload.get().to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(got, ["0", "1", "2"]);
    // carol never comes: alice is told once.
    for i in 0..2 {
        signal(&mut hub, a, "carol", &i.to_string(), now, &mut out);
    }
    hub.tick(now + Duration::from_secs(6), &mut out);
    let notices: Vec<&Delivery> = out.iter().filter(|d| matches!(d.event, Event::Undeliverable { .. })).collect();
    assert_eq!(notices.len(), 1, "{out:?}");
    assert_eq!(notices[0].to, a);
    assert_eq!(hub.census().held, 0);
}

#[test]
fn a_keyed_claim_outside_the_grant_is_refused_before_the_holder_is_touched() {
    let mut hub = Hub::new(Limits::default());
    let mut out = Vec::new();
    let a = new_peer(keyed(&mut hub, "alice", "k1", true, &mut out));
    let grant = Some(Grant { name: "mallory".into(), rooms: Rooms::Any });
    let opts = PeerOpts { grant, ..opts(30) };
    let got = hub.connect_keyed(S, opts.clone(), "alice".into(), "k2".into(), None, |_| true, &mut out);
    assert_eq!(got, Err(HubError::NotAllowed(Denied::Name("alice".into()))));
    assert_eq!(hub.lookup(S, "alice"), Some(a), "the (dead) holder keeps its name");
    assert!(matches!(
        hub.connect_keyed(S, opts, "mallory".into(), "k3".into(), None, |_| true, &mut out),
        Ok(Keyed::New(_))
    ));
}

#[test]
fn keyed_claim_of_a_shared_name_is_refused_and_leaves_no_peer_behind() {
    // Found by the hub fuzzer: the first holder was removed, then the
    // exclusive claim failed on the second, and the new peer stayed behind
    // with no name (an orphan counted in the population).
    let mut hub = Hub::new(Limits::default());
    let mut out = Vec::new();
    let (a, b) = (hub.connect(S, opts(30), None), hub.connect(S, opts(30), None));
    for p in [a, b] {
        hub.handle(p, Command::Claim { name: "x".into(), exclusive: false }, Instant::now(), &mut out).expect("claim");
    }
    assert_eq!(keyed(&mut hub, "x", "k", true, &mut out), Err(HubError::NameTaken("x".into())));
    assert_eq!((hub.population(S), hub.lookup(S, "x")), (2, Some(a)));
}
