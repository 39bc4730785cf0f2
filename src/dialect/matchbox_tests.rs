//! The `matchbox` dialect alone: ids, room paths, and groups driven through
//! the local hub's port (plain `#[test]`s, no socket, no runtime).

use std::time::Instant;

use super::matchbox::{BadRoom, MAX_ROOM, Matchbox, Room, peer_of, uuid_of};
use super::{Close, Ctx, Protocol};
use crate::hub::{Limits, PeerId, PeerOpts, SpaceId};
use crate::local_hub::{Attachment, Flow, LocalHub};

const SPACE: SpaceId = SpaceId(0);

#[test]
fn ids_are_uuids_and_read_back_whatever_their_bits() {
    for v in [0, 1, 42, 0xffff, 0x1_0000, u64::from(u32::MAX) + 7, 0xab00_0000_0000_0001, u64::MAX] {
        let uuid = uuid_of(PeerId(v));
        assert_eq!(uuid.len(), 36, "{uuid}");
        // Version 8, RFC 9562 variant: what UUID parsers check.
        assert_eq!(&uuid[14..15], "8", "{uuid}");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{uuid}");
        assert_eq!(peer_of(&uuid), Some(PeerId(v)), "{uuid}");
        assert_eq!(peer_of(&uuid.to_uppercase()), Some(PeerId(v)), "upper case {uuid}");
        assert_eq!(peer_of(&uuid.replace('-', "")), Some(PeerId(v)), "simple form {uuid}");
    }
    assert_eq!(uuid_of(PeerId(1)), "00000000-0000-8000-8000-000000000001");
    assert_eq!(uuid_of(PeerId(0x0123_4567_89ab_cdef)), "01234567-89ab-8000-8000-00000000cdef");
}

#[test]
fn other_uuids_and_text_are_no_peer() {
    for s in [
        "",
        "p1",
        "1b4e28ba-2fa1-41d2-883f-0016d3cca427",  // a random (v4) UUID
        "00000000-0000-8000-8000-10000000000a",  // a bit outside the layout
        "00000000-0000-8000-8000-00000000000g",  // not hex
        "00000000_0000_8000_8000_000000000001",  // wrong separators
        "00000000-0000-8000-8000-0000000000001", // too long
        "{00000000-0000-8000-8000-000000000001}",
        "ééééééé-0000-8000-8000-000000000001",
    ] {
        assert_eq!(peer_of(s), None, "{s:?}");
    }
}

#[test]
fn a_room_is_one_decoded_path_segment_and_next_a_number() {
    let room = |path, next| Room::parse(path, next);
    assert_eq!(room("/", None), Ok(Room { path: String::new(), next: None }));
    assert_eq!(room("/lobby", Some("2")), Ok(Room { path: "lobby".into(), next: Some(2) }));
    assert_eq!(room("/a%20b", None), Ok(Room { path: "a b".into(), next: None }));
    assert_eq!(room("/lobby", Some("abc")), Ok(Room { path: "lobby".into(), next: None }));
    assert_eq!(room("/lobby", Some("0")), Ok(Room { path: "lobby".into(), next: None }));
    assert_eq!(room("/lobby", Some("-2")), Ok(Room { path: "lobby".into(), next: None }));
    assert_eq!(room("/a/b", None), Err(BadRoom::Nested));
    assert_eq!(room("/a/", None), Err(BadRoom::Nested));
    assert_eq!(room("/%ff", None), Err(BadRoom::Encoding));
    assert_eq!(room("/%00x", None), Err(BadRoom::Encoding));
}

/// One connection: its attachment and its dialect state.
struct Peer {
    att: Attachment,
    proto: Matchbox,
    /// What its `opened` sent.
    hello: Vec<String>,
    /// The close its `opened` asked for.
    close: Option<Close>,
}

impl Peer {
    fn join(hub: &LocalHub, path: &str, next: Option<&str>) -> Peer {
        let now = Instant::now();
        let att = hub.attach(SPACE, PeerOpts::default(), false, now);
        let mut proto = Matchbox::new(Room::parse(path, next).expect("a room"), true);
        let mut hello = Vec::new();
        let mut ctx = Ctx::new(hub, att.peer, SPACE, now, &mut hello);
        proto.opened(&mut ctx);
        let close = ctx.close.take();
        Peer { att, proto, hello, close }
    }

    fn uuid(&self) -> String {
        uuid_of(self.att.peer)
    }

    /// What the hub left in the outbox, as frames to the client.
    fn delivered(&mut self, hub: &LocalHub) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(event) = self.att.rx.try_recv() {
            self.proto.deliver(event, &mut Ctx::new(hub, self.att.peer, SPACE, Instant::now(), &mut out));
        }
        out
    }

    fn receive(&mut self, hub: &LocalHub, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.proto.received(text, &mut Ctx::new(hub, self.att.peer, SPACE, Instant::now(), &mut out));
        out
    }

    fn leave(self, hub: &LocalHub) {
        hub.detach(self.att.peer, self.att.conn, true, Vec::new(), Instant::now());
    }
}

fn hub() -> LocalHub {
    LocalHub::new(Limits::default(), Flow::default())
}

fn new_peer(p: &Peer) -> String {
    format!(r#"{{"NewPeer":"{}"}}"#, p.uuid())
}

#[test]
fn the_id_comes_first_and_new_peer_only_to_those_already_there() {
    let hub = hub();
    let mut a = Peer::join(&hub, "/r", None);
    assert_eq!(a.hello, [format!(r#"{{"IdAssigned":"{}"}}"#, a.uuid())]);
    let mut b = Peer::join(&hub, "/r", None);
    assert_eq!(b.hello, [format!(r#"{{"IdAssigned":"{}"}}"#, b.uuid())]);
    assert_eq!(a.delivered(&hub), [new_peer(&b)]);
    assert!(b.delivered(&hub).is_empty());
}

#[test]
fn next_groups_are_sealed_when_full_and_never_meet_later_ones() {
    let hub = hub();
    let mut a = Peer::join(&hub, "/g", Some("2"));
    let b = Peer::join(&hub, "/g", Some("2"));
    assert_eq!(a.delivered(&hub), [new_peer(&b)]);
    let mut c = Peer::join(&hub, "/g", Some("2"));
    // A group member leaving does not reopen the group.
    let b_uuid = b.uuid();
    b.leave(&hub);
    assert_eq!(a.delivered(&hub), [format!(r#"{{"PeerLeft":"{b_uuid}"}}"#)]);
    let mut d = Peer::join(&hub, "/g", Some("2"));
    assert_eq!(c.delivered(&hub), [new_peer(&d)]);
    assert!(a.delivered(&hub).is_empty());
    assert!(d.delivered(&hub).is_empty());
    // And the third group starts fresh.
    let e = Peer::join(&hub, "/g", Some("2"));
    assert!(a.delivered(&hub).is_empty() && c.delivered(&hub).is_empty());
    let _ = e;
}

#[test]
fn a_group_member_leaving_before_it_fills_leaves_room_for_the_next_joiner() {
    let hub = hub();
    let mut a = Peer::join(&hub, "/g", Some("3"));
    let b = Peer::join(&hub, "/g", Some("3"));
    assert_eq!(a.delivered(&hub), [new_peer(&b)]);
    let b_uuid = b.uuid();
    b.leave(&hub);
    assert_eq!(a.delivered(&hub), [format!(r#"{{"PeerLeft":"{b_uuid}"}}"#)]);
    let c = Peer::join(&hub, "/g", Some("3"));
    let d = Peer::join(&hub, "/g", Some("3"));
    assert_eq!(a.delivered(&hub), [new_peer(&c), new_peer(&d)]);
    // Full at a, c, d: the next one is alone.
    let e = Peer::join(&hub, "/g", Some("3"));
    assert!(a.delivered(&hub).is_empty());
    let _ = e;
}

#[test]
fn signals_go_only_to_peers_the_client_heard_of() {
    let hub = hub();
    let mut a = Peer::join(&hub, "/r", None);
    let mut b = Peer::join(&hub, "/r", None);
    let mut other = Peer::join(&hub, "/elsewhere", None);
    a.delivered(&hub);
    // `other` is in another room: it may not reach `a`, even knowing the id.
    let to_a = format!(r#"{{"Signal":{{"receiver":"{}","data":{{"Offer":"x"}}}}}}"#, a.uuid());
    assert!(other.receive(&hub, &to_a).is_empty());
    assert!(a.delivered(&hub).is_empty());
    // `b` joined `a`'s room: it may.
    assert!(b.receive(&hub, &to_a).is_empty());
    assert_eq!(a.delivered(&hub), [format!(r#"{{"Signal":{{"sender":"{}","data":{{"Offer":"x"}}}}}}"#, b.uuid())]);
    assert!(other.delivered(&hub).is_empty());
}

#[test]
fn a_full_room_closes_the_newcomer_before_any_id() {
    let hub = hub();
    let peers: Vec<Peer> = (0..MAX_ROOM).map(|_| Peer::join(&hub, "/big", None)).collect();
    assert!(peers.iter().all(|p| p.hello.len() == 1 && p.close.is_none()));
    let late = Peer::join(&hub, "/big", None);
    assert!(late.hello.is_empty(), "{:?}", late.hello);
    let close = late.close.expect("closed");
    assert_eq!(close.code, 1008);
    assert!(close.reason.contains("full"), "{}", close.reason);
    // A group larger than a room is closed at the cap: the next one starts anew.
    let big: Vec<Peer> = (0..=MAX_ROOM).map(|_| Peer::join(&hub, "/big", Some("1000"))).collect();
    assert!(big.iter().all(|p| p.hello.len() == 1 && p.close.is_none()));
}
