//! Dialects driven against the local hub through its port: plain `#[test]`s,
//! no socket and no runtime. Each peer is an attachment of a `LocalHub`; a
//! frame goes into one dialect's `received`, the hub routes it, and the
//! other dialect's `deliver` turns what reached its outbox into frames.

use std::time::{Duration, Instant};

use super::basic::Basic;
use super::flutter::Flutter;
use super::peerjs::{PeerJs, RegistrationQuery};
use super::{Ctx, Protocol};
use crate::hub::{HubError, Limits, Name, PeerOpts, SpaceId};
use crate::local_hub::{Attachment, Flow, LocalHub};

const SPACE: SpaceId = SpaceId(0);

/// One connection: its attachment and its dialect state.
struct Peer<P> {
    att: Attachment,
    proto: P,
}

impl<P: Protocol> Peer<P> {
    fn attach(hub: &LocalHub, proto: P, now: Instant) -> Peer<P> {
        let mut peer = Peer { att: hub.attach(SPACE, PeerOpts::default(), false, now), proto };
        let mut out = Vec::new();
        peer.proto.opened(&mut Ctx::new(hub, peer.att.peer, SPACE, now, &mut out));
        peer
    }

    /// A frame from the client; what it is answered with directly.
    fn receive(&mut self, hub: &LocalHub, text: &str, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        self.proto.received(text, &mut Ctx::new(hub, self.att.peer, SPACE, now, &mut out));
        out
    }

    /// What the hub left in the outbox, as frames to the client.
    fn delivered(&mut self, hub: &LocalHub, now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(event) = self.att.rx.try_recv() {
            self.proto.deliver(event, &mut Ctx::new(hub, self.att.peer, SPACE, now, &mut out));
        }
        out
    }
}

fn hub() -> LocalHub {
    LocalHub::new(Limits::default(), Flow::default())
}

#[test]
fn basic_offer_reaches_the_named_peer_with_the_sender_name() {
    let (hub, now) = (hub(), Instant::now());
    let mut alice = Peer::attach(&hub, Basic::new(), now);
    let mut bob = Peer::attach(&hub, Basic::new(), now);
    assert_eq!(alice.receive(&hub, r#"{"type":"login","name":"alice"}"#, now), [r#"{"type":"login","success":true}"#]);
    assert_eq!(bob.receive(&hub, r#"{"type":"login","name":"bob"}"#, now), [r#"{"type":"login","success":true}"#]);
    assert_eq!(bob.receive(&hub, r#"{"type":"login","name":"alice"}"#, now), [r#"{"type":"login","success":false}"#]);
    assert!(alice.receive(&hub, r#"{"type":"offer","offer":{"sdp":"x"},"name":"bob"}"#, now).is_empty());
    assert_eq!(bob.delivered(&hub, now), [r#"{"type":"offer","offer":{"sdp":"x"},"name":"alice"}"#]);
    // An unknown target is dropped without a word, as the original does.
    assert!(alice.receive(&hub, r#"{"type":"candidate","candidate":{},"name":"nobody"}"#, now).is_empty());
    assert!(bob.delivered(&hub, now).is_empty());
}

#[test]
fn flutter_new_lists_everyone_and_forwards_by_id() {
    let (hub, now) = (hub(), Instant::now());
    let mut a = Peer::attach(&hub, Flutter::new(), now);
    let mut b = Peer::attach(&hub, Flutter::new(), now);
    assert_eq!(
        a.receive(&hub, r#"{"type":"new","data":{"id":"1","name":"a"}}"#, now),
        [r#"{"type":"peers","data":[{"id":"1"}]}"#]
    );
    let both = r#"{"type":"peers","data":[{"id":"1"},{"id":"2"}]}"#;
    assert_eq!(b.receive(&hub, r#"{"type":"new","data":{"id":"2"}}"#, now), [both]);
    assert_eq!(a.delivered(&hub, now), [both]);
    let offer = r#"{"type":"offer","data":{"to":"1","from":"2","description":{}}}"#;
    assert!(b.receive(&hub, offer, now).is_empty());
    assert_eq!(a.delivered(&hub, now), [offer]);
}

#[test]
fn peerjs_registration_is_checked_and_relays_are_held_for_absent_ids() {
    let query = |q: &str| serde_json::from_value::<RegistrationQuery>(serde_json::from_str(q).expect("json"));
    let refused = query(r#"{"key":"peerjs","id":"a"}"#).expect("query").check(|k| k == "peerjs");
    assert!(refused.expect_err("no token").contains("No id, token, or key supplied"));
    let wrong = query(r#"{"key":"nope","id":"a","token":"t"}"#).expect("query").check(|k| k == "peerjs");
    assert!(wrong.expect_err("wrong key").contains("Invalid key provided"));
    let reg =
        query(r#"{"key":"peerjs","id":"alice","token":"t"}"#).expect("query").check(|k| k == "peerjs").expect("valid");
    assert_eq!((&*reg.id, &*reg.token), ("alice", "t"));
    assert_eq!(super::peerjs::claim_refused(&HubError::NameTaken(Name::from("alice"))), super::peerjs::ID_TAKEN);

    let (hub, now) = (hub(), Instant::now());
    let mut alice = Peer::attach(&hub, PeerJs::new("alice", Duration::from_secs(5)), now);
    assert!(alice.receive(&hub, r#"{"type":"OFFER","dst":"ghost","payload":{"sdp":1}}"#, now).is_empty());
    assert_eq!(hub.read(|h| h.census().held), 1);
    // Held past its expiry: the sender hears EXPIRE once.
    hub.tick(now + Duration::from_secs(6));
    assert_eq!(alice.delivered(&hub, now), [r#"{"type":"EXPIRE","src":"ghost","dst":"alice"}"#]);
}
