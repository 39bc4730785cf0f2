//! Fuzzing the dialect decoders against the local hub, no socket: three
//! connections of one dialect take random frames (arbitrary text, random
//! JSON, and corpus frames mutated: fields replaced by random types, huge
//! numbers, odd escapes, deep nesting; text cut and spliced), time passes,
//! connections close and come back. After each step: no panic, every frame
//! sent is valid JSON (each of these protocols speaks JSON), the bytes sent
//! are bounded by a multiple of the bytes received plus a constant, a close
//! reason fits a close frame, and the hub keeps its invariants with no
//! peer left behind. `offers` is driven through [`Offers::event`] and the
//! handshake's `auth` checks, and its board stays within its bounds.
//!
//! The seed corpus is `tests/fuzz_corpus/<dialect>/*.txt`: replayed as it
//! is on every run, and mutated by the generators. `PROPTEST_CASES` sets
//! the number of cases for a long run (docs/security.md); failures are
//! kept in `proptest-regressions/dialect/fuzz_tests.txt`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::basic::Basic;
use super::flutter::Flutter;
use super::fuzz_input::{cases, chars, corpus, frame, json, junk, lines, mutate, mutation};
use super::matchbox::{Matchbox, Room};
use super::native::{Native, NativeSettings};
use super::offers::{self, Answer, BoardLimits, Offers};
use super::one2one::{Links, One2one};
use super::peerjs::{self, PeerJs};
use super::{Ctx, Protocol};
use crate::hub::{Census, Limits, Name, PeerOpts, SpaceId};
use crate::local_hub::{Attachment, Flow, KeyedClaim, LocalHub};
use crate::outbox::Budget;

const SPACE: SpaceId = SpaceId(0);
/// Connections per harness.
const SLOTS: usize = 3;
/// Who each connection is, where the dialect names its peers outside its
/// frames (PeerJS ids); the corpus frames use the same names.
const NAMES: [&str; SLOTS] = ["alice", "bob", "carol"];
/// Bytes one step may send per connection beyond 8 times all that came
/// in so far (the frame, and what came before that a reply may list).
const SLACK: usize = 4096;

// ---- Driving a dialect ----

/// One input to a harness of connections.
#[derive(Clone, Debug)]
enum Step {
    /// A text frame from connection `from`.
    Frame { from: usize, text: String },
    /// Time passes (ring timeouts, held signals, resume grace).
    Tick { ms: u64 },
    /// The connection ends (`goodbye`: cleanly) and a new one takes its
    /// place (a resumable peer resumes).
    Reconnect { slot: usize, goodbye: bool },
}

fn steps(seeds: Vec<String>) -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        12 => (0..SLOTS, frame(seeds)).prop_map(|(from, text)| Step::Frame { from, text }),
        1 => prop_oneof![0..1_000u64, 1_000..40_000u64].prop_map(|ms| Step::Tick { ms }),
        1 => (0..SLOTS, any::<bool>()).prop_map(|(slot, goodbye)| Step::Reconnect { slot, goodbye }),
    ];
    proptest::collection::vec(step, 1..40)
}

/// Makes connection `slot`'s dialect state and attaches it; `token`: resume.
type Open = Box<dyn Fn(&LocalHub, usize, Option<Name>, Instant) -> (Attachment, Box<dyn Protocol>)>;

struct Conn {
    att: Attachment,
    proto: Box<dyn Protocol>,
}

/// Small limits, so queues and holds fill.
fn hub() -> LocalHub {
    let limits = Limits {
        away_queue: 8,
        hold_per_name: 4,
        hold_total: 8,
        ring_timeout: Duration::from_secs(10),
        ..Limits::default()
    };
    LocalHub::new(limits, Flow { budget: Budget::per_queue(32 << 10), slow_after: Duration::from_secs(3600) })
}

struct Bench {
    hub: LocalHub,
    conns: Vec<Conn>,
    open: Open,
    now: Instant,
    /// Bytes received so far (state a reply may list).
    seen: usize,
}

impl Bench {
    fn new(open: Open) -> Bench {
        let (hub, now) = (hub(), Instant::now());
        let mut bench = Bench { hub, conns: Vec::new(), open, now, seen: 0 };
        for slot in 0..SLOTS {
            let mut sent = Vec::new();
            let conn = bench.connect(slot, None, &mut sent);
            bench.conns.push(conn);
            check_frames(&sent, SLACK).expect("greeting");
        }
        bench
    }

    fn ctx<'a>(hub: &'a LocalHub, conn: &Conn, now: Instant, out: &'a mut Vec<String>) -> Ctx<'a> {
        Ctx::new(hub, conn.att.peer, conn.att.space, now, out)
    }

    fn connect(&self, slot: usize, token: Option<Name>, sent: &mut Vec<String>) -> Conn {
        let (att, proto) = (self.open)(&self.hub, slot, token, self.now);
        let mut conn = Conn { att, proto };
        conn.proto.opened(&mut Self::ctx(&self.hub, &conn, self.now, sent));
        conn
    }

    /// Ends connection `slot` as the transport does; its resume token if
    /// it may resume.
    fn end(&mut self, slot: usize, goodbye: bool, sent: &mut Vec<String>) -> Option<Name> {
        let conn = &mut self.conns[slot];
        let mut ctx = Self::ctx(&self.hub, conn, self.now, sent);
        conn.proto.closing(&mut ctx);
        let clean = goodbye || ctx.goodbye;
        conn.att.rx.close();
        let mut unsent = Vec::new();
        while let Ok(event) = conn.att.rx.try_recv() {
            unsent.push(event);
        }
        self.hub.detach(conn.att.peer, conn.att.conn, clean, unsent, self.now);
        conn.att.token.clone().filter(|_| !clean)
    }

    /// Ends connection `slot` and opens a new one in its place.
    fn reconnect(&mut self, slot: usize, goodbye: bool, sent: &mut Vec<String>) {
        let token = self.end(slot, goodbye, sent);
        self.conns[slot] = self.connect(slot, token, sent);
    }

    /// Hands every connection what reached its outbox.
    fn drain(&mut self, sent: &mut Vec<String>) {
        for _ in 0..8 {
            let mut any = false;
            for conn in &mut self.conns {
                while let Ok(event) = conn.att.rx.try_recv() {
                    any = true;
                    let mut ctx = Ctx::new(&self.hub, conn.att.peer, conn.att.space, self.now, sent);
                    conn.proto.deliver(event, &mut ctx);
                }
            }
            if !any {
                return;
            }
        }
    }

    /// Applies one step; fails if what it sent or left breaks a rule.
    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let mut sent = Vec::new();
        let mut input = 0;
        match step {
            Step::Frame { from, text } => {
                input = text.len();
                let conn = &mut self.conns[*from];
                let mut ctx = Self::ctx(&self.hub, conn, self.now, &mut sent);
                conn.proto.received(text, &mut ctx);
                let (close, goodbye) = (ctx.close.take(), ctx.goodbye);
                if let Some(close) = close {
                    prop_assert!(close.reason.len() <= 123, "close reason of {} bytes", close.reason.len());
                    self.reconnect(*from, goodbye, &mut sent);
                }
            }
            Step::Tick { ms } => {
                self.now += Duration::from_millis(*ms);
                self.hub.tick(self.now);
            }
            Step::Reconnect { slot, goodbye } => self.reconnect(*slot, *goodbye, &mut sent),
        }
        self.drain(&mut sent);
        self.seen += input;
        let bound = SLOTS * (8 * self.seen + SLACK);
        check_frames(&sent, bound).map_err(|e| TestCaseError::fail(format!("after {step:?}: {e}")))?;
        self.check_hub()
    }

    fn check_hub(&self) -> Result<(), TestCaseError> {
        self.hub.read(|h| h.check_invariants()).map_err(TestCaseError::fail)?;
        let census = self.hub.read(|h| h.census());
        prop_assert!(census.peers <= SLOTS, "{} peers for {SLOTS} connections: {census:?}", census.peers);
        Ok(())
    }

    fn run(&mut self, steps: &[Step]) -> Result<(), TestCaseError> {
        for step in steps {
            self.step(step)?;
        }
        // Everyone leaves, time passes: nothing stays behind.
        for slot in 0..SLOTS {
            self.end(slot, true, &mut Vec::new());
        }
        self.hub.tick(self.now + Duration::from_secs(60));
        self.check_hub()?;
        prop_assert_eq!(self.hub.read(|h| h.census()), Census::default());
        Ok(())
    }
}

/// Every frame is JSON and together they are at most `bound` bytes.
fn check_frames(frames: &[String], bound: usize) -> Result<(), String> {
    for f in frames {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(f) {
            return Err(format!("sent a frame that is not JSON ({e}): {f:?}"));
        }
    }
    let total: usize = frames.iter().map(String::len).sum();
    if total > bound {
        return Err(format!("sent {total} bytes in {} frames, over {bound}", frames.len()));
    }
    Ok(())
}

/// Feeds every corpus frame as it is: all from each connection in turn,
/// then each from every connection in turn (so all join, all call...).
fn replay(mut bench: Bench, seeds: &[String]) {
    let mut steps = Vec::new();
    for from in 0..SLOTS {
        steps.extend(seeds.iter().map(|text| Step::Frame { from, text: text.clone() }));
        steps.push(Step::Tick { ms: 11_000 });
    }
    for text in seeds {
        steps.extend((0..SLOTS).map(|from| Step::Frame { from, text: text.clone() }));
    }
    steps.push(Step::Tick { ms: 11_000 });
    if let Err(e) = bench.run(&steps) {
        panic!("corpus replay: {e}");
    }
}

// ---- The dialects ----

fn plain(hub: &LocalHub, now: Instant) -> Attachment {
    hub.attach(SPACE, PeerOpts { grace: Duration::ZERO, grant: None }, false, now)
}

fn native() -> Bench {
    let settings = NativeSettings {
        ice_servers: Arc::new(serde_json::json!([{"urls": "stun:127.0.0.1:3478"}])),
        limits: Arc::new(serde_json::json!({"max_frame": 65536})),
        room_max: 2,
        grace: Duration::from_secs(5),
    };
    Bench::new(Box::new(move |hub, _, token, now| {
        let resumed = token.and_then(|t| hub.resume(SPACE, &t, None, now).ok());
        let att = resumed
            .unwrap_or_else(|| hub.attach(SPACE, PeerOpts { grace: Duration::from_secs(5), grant: None }, true, now));
        let proto = Native::new(settings.clone(), att.token.clone(), att.resumed, None);
        (att, Box::new(proto))
    }))
}

fn basic() -> Bench {
    Bench::new(Box::new(|hub, _, _, now| (plain(hub, now), Box::new(Basic::new()))))
}

fn one2one(links: Links) -> Bench {
    Bench::new(Box::new(move |hub, _, _, now| (plain(hub, now), Box::new(One2one::new(links.clone())))))
}

fn flutter() -> Bench {
    Bench::new(Box::new(|hub, _, _, now| (plain(hub, now), Box::new(Flutter::new()))))
}

fn peerjs() -> Bench {
    Bench::new(Box::new(|hub, slot, _, now| {
        let claim = KeyedClaim {
            opts: PeerOpts { grace: Duration::from_secs(5), grant: None },
            name: Name::from(NAMES[slot]),
            key: Name::from(format!("token-{slot}")),
            limit: Some(SLOTS),
            dead_after: peerjs::DEAD_AFTER,
        };
        let att = hub.attach_keyed(SPACE, claim, now).expect("the slot's id is free or its own");
        (att, Box::new(PeerJs::new(NAMES[slot], Duration::from_secs(5))))
    }))
}

/// Slot 0 in the plain room, the others in its `?next=2` groups.
fn matchbox() -> Bench {
    Bench::new(Box::new(|hub, slot, _, now| {
        let next = (slot > 0).then_some("2");
        let room = Room::parse("/r", next).expect("a room");
        (plain(hub, now), Box::new(Matchbox::new(room, true)))
    }))
}

#[test]
fn fuzz_corpus_replays_native() {
    replay(native(), &corpus("native"));
}

#[test]
fn fuzz_corpus_replays_basic() {
    replay(basic(), &corpus("basic"));
}

#[test]
fn fuzz_corpus_replays_one2one() {
    let links = Links::default();
    replay(one2one(links.clone()), &corpus("one2one"));
    assert!(links.is_empty(), "sessions left behind");
}

#[test]
fn fuzz_corpus_replays_flutter() {
    replay(flutter(), &corpus("flutter"));
}

#[test]
fn fuzz_corpus_replays_peerjs() {
    replay(peerjs(), &corpus("peerjs"));
}

#[test]
fn fuzz_corpus_replays_matchbox() {
    replay(matchbox(), &corpus("matchbox"));
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn fuzz_native(steps in steps(corpus("native"))) {
        native().run(&steps)?;
    }

    #[test]
    fn fuzz_basic(steps in steps(corpus("basic"))) {
        basic().run(&steps)?;
    }

    #[test]
    fn fuzz_one2one(steps in steps(corpus("one2one"))) {
        let links = Links::default();
        one2one(links.clone()).run(&steps)?;
        prop_assert!(links.is_empty(), "{} sessions left behind", links.len());
    }

    #[test]
    fn fuzz_flutter(steps in steps(corpus("flutter"))) {
        flutter().run(&steps)?;
    }

    #[test]
    fn fuzz_peerjs(steps in steps(corpus("peerjs"))) {
        peerjs().run(&steps)?;
    }

    #[test]
    fn fuzz_matchbox(steps in steps(corpus("matchbox"))) {
        matchbox().run(&steps)?;
    }
}

// ---- offers: socket.io events on a shared board ----

/// One input to the `offers` harness.
#[derive(Clone, Debug)]
enum OffersStep {
    /// Event `name` with first argument `data` (not JSON: no argument)
    /// from socket `from`.
    Event { from: usize, name: String, data: String },
    /// Time passes (departed users' offers age out).
    Tick { ms: u64 },
    /// Socket `slot` goes away; a new one connects with this `auth`.
    Reconnect { slot: usize, auth: String },
}

const EVENTS: &[&str] = &[
    offers::event::NEW_OFFER,
    offers::event::NEW_ANSWER,
    offers::event::SEND_ICE,
    offers::event::AVAILABLE_OFFERS,
    offers::event::RECEIVED_ICE,
    "",
];

/// Small bounds, so the fuzzer reaches them.
fn board_limits() -> BoardLimits {
    BoardLimits {
        max_offers: 3,
        keep_after_leave: Duration::from_secs(10),
        max_candidates: 2,
        max_bytes: 2048,
        max_item: 512,
        max_greeting: 1024,
    }
}

/// `offers/events.txt` as (event, data) pairs.
fn offers_events() -> Vec<(String, String)> {
    let pairs: Vec<(String, String)> = lines("offers/events.txt")
        .iter()
        .filter_map(|l| l.split_once(' ').map(|(e, d)| (e.to_string(), d.to_string())))
        .collect();
    assert!(!pairs.is_empty(), "no events in offers/events.txt");
    pairs
}

fn offers_steps() -> impl Strategy<Value = Vec<OffersStep>> {
    let name = prop_oneof![select(EVENTS).prop_map(str::to_string), chars(12)];
    let event = prop_oneof![
        6 => (select(offers_events()), proptest::option::of(name.clone()), proptest::collection::vec(mutation(), 0..4), any::<bool>())
            .prop_map(|((seed_name, seed), name, mutations, spaced)| (name.unwrap_or(seed_name), mutate(&seed, &mutations, spaced))),
        2 => (name.clone(), json().prop_map(|j| j.text(false))),
        1 => (name, junk()),
    ];
    let auth = prop_oneof![
        3 => (select(lines("offers/auth.txt")), proptest::collection::vec(mutation(), 0..3))
            .prop_map(|(seed, mutations)| mutate(&seed, &mutations, false)),
        1 => json().prop_map(|j| j.text(false)),
        1 => junk(),
    ];
    let step = prop_oneof![
        12 => (0..SLOTS, event).prop_map(|(from, (name, data))| OffersStep::Event { from, name, data }),
        1 => prop_oneof![0..1_000u64, 1_000..40_000u64].prop_map(|ms| OffersStep::Tick { ms }),
        2 => (0..SLOTS, auth).prop_map(|(slot, auth)| OffersStep::Reconnect { slot, auth }),
    ];
    proptest::collection::vec(step, 1..24)
}

/// What an event did to its socket: acks and broadcasts.
#[derive(Default)]
struct Recorder {
    acks: Vec<String>,
    broadcasts: Vec<String>,
}

impl Answer for Recorder {
    fn ack(&mut self, data: &RawValue) {
        self.acks.push(data.get().to_string());
    }

    fn broadcast(&mut self, _event: &'static str, data: &RawValue) {
        self.broadcasts.push(data.get().to_string());
    }
}

/// A connected socket (a refused handshake leaves its slot empty).
struct Socket {
    att: Attachment,
    user: Option<Name>,
}

/// One offer as the board lists it, raw.
#[derive(Deserialize)]
struct Listed<'a> {
    #[serde(borrow)]
    offer: &'a RawValue,
    #[serde(rename = "offerIceCandidates", borrow)]
    candidates: Vec<&'a RawValue>,
    #[serde(borrow)]
    answer: Option<&'a RawValue>,
}

struct OffersBench {
    hub: LocalHub,
    offers: Offers,
    sockets: Vec<Option<Socket>>,
    now: Instant,
    seen: usize,
}

impl OffersBench {
    fn new() -> OffersBench {
        let mut bench = OffersBench {
            hub: hub(),
            offers: Offers::new(board_limits()),
            sockets: Vec::new(),
            now: Instant::now(),
            seen: 0,
        };
        for slot in 0..SLOTS {
            let mut sent = Vec::new();
            let auth = format!(r#"{{"userName":"Rob-{}","password":"x"}}"#, slot + 1);
            let socket = bench.connect(&auth, &mut sent);
            bench.sockets.push(socket);
        }
        bench
    }

    /// The handshake with `auth` (checked as the transport does), then the
    /// greeting with the board.
    fn connect(&self, auth: &str, sent: &mut Vec<String>) -> Option<Socket> {
        let auth: serde_json::Value = serde_json::from_str(auth).unwrap_or_default();
        let user = offers::user_name(&auth);
        if !offers::password_ok(&auth) {
            return None;
        }
        let att = plain(&self.hub, self.now);
        let mut out = Vec::new();
        let greeting =
            self.offers.connected(user.as_ref(), &mut Ctx::new(&self.hub, att.peer, SPACE, self.now, &mut out));
        sent.extend(out);
        sent.extend(greeting.ok().flatten().map(|g| g.get().to_string()));
        Some(Socket { att, user })
    }

    fn disconnect(&mut self, slot: usize) {
        let Some(mut socket) = self.sockets[slot].take() else { return };
        socket.att.rx.close();
        let mut unsent = Vec::new();
        while let Ok(event) = socket.att.rx.try_recv() {
            unsent.push(event);
        }
        let (hub, now, att) = (&self.hub, self.now, &socket.att);
        let mut out = Vec::new();
        let mut ctx = Ctx::new(hub, att.peer, SPACE, now, &mut out);
        self.offers.disconnected(socket.user.as_ref(), &mut ctx, || hub.detach(att.peer, att.conn, true, unsent, now));
    }

    fn step(&mut self, step: &OffersStep) -> Result<(), TestCaseError> {
        let mut sent = Vec::new();
        let mut input = 0;
        match step {
            OffersStep::Event { from, name, data } => {
                input = name.len() + data.len();
                if let Some(socket) = &self.sockets[*from] {
                    let data = RawValue::from_string(data.clone()).ok();
                    let mut rec = Recorder::default();
                    let mut ctx = Ctx::new(&self.hub, socket.att.peer, SPACE, self.now, &mut sent);
                    self.offers.event(socket.user.clone(), name, data.as_deref(), &mut ctx, &mut rec);
                    prop_assert!(rec.acks.len() <= 1, "{name}: acked {} times", rec.acks.len());
                    if name == offers::event::NEW_ANSWER {
                        prop_assert_eq!(rec.acks.len(), 1, "a newAnswer is always acked");
                    }
                    sent.extend(rec.acks);
                    // A broadcast reaches every other socket.
                    for b in rec.broadcasts {
                        sent.extend(std::iter::repeat_n(b, SLOTS - 1));
                    }
                }
            }
            OffersStep::Tick { ms } => {
                self.now += Duration::from_millis(*ms);
                self.hub.tick(self.now);
            }
            OffersStep::Reconnect { slot, auth } => {
                input = auth.len();
                self.disconnect(*slot);
                self.sockets[*slot] = self.connect(auth, &mut sent);
            }
        }
        for socket in self.sockets.iter_mut().flatten() {
            while let Ok(event) = socket.att.rx.try_recv() {
                if let Some((kind, payload)) = offers::emit_of(event) {
                    sent.push(payload.get().to_string());
                    prop_assert!(kind.len() <= 64, "an emit named with {} bytes", kind.len());
                }
            }
        }
        self.seen += input;
        let bound = SLOTS * (8 * self.seen + SLACK);
        check_frames(&sent, bound).map_err(|e| TestCaseError::fail(format!("after {step:?}: {e}")))?;
        self.check()
    }

    /// The hub's invariants, and the board within its documented bounds.
    fn check(&self) -> Result<(), TestCaseError> {
        self.hub.read(|h| h.check_invariants()).map_err(TestCaseError::fail)?;
        let census = self.hub.read(|h| h.census());
        prop_assert!(census.peers <= SLOTS, "{census:?}");
        let mut out = Vec::new();
        let probe = plain(&self.hub, self.now);
        let listed = self.offers.connected(None, &mut Ctx::new(&self.hub, probe.peer, SPACE, self.now, &mut out));
        self.hub.detach(probe.peer, probe.conn, true, Vec::new(), self.now);
        let Ok(Some(listed)) = listed else { return Ok(()) };
        let board: Vec<Listed<'_>> =
            serde_json::from_str(listed.get()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let limits = board_limits();
        prop_assert!(board.len() <= limits.max_offers, "{} offers", board.len());
        let mut bytes = 0;
        for o in &board {
            prop_assert!(o.candidates.len() <= limits.max_candidates, "{} candidates", o.candidates.len());
            prop_assert!(o.offer.get().len() <= limits.max_item);
            prop_assert!(o.answer.is_none_or(|a| a.get().len() <= limits.max_item));
            bytes += o.offer.get().len() + o.candidates.iter().map(|c| c.get().len()).sum::<usize>();
        }
        prop_assert!(bytes <= limits.max_bytes, "offers and candidates hold {bytes} bytes");
        Ok(())
    }

    fn run(&mut self, steps: &[OffersStep]) -> Result<(), TestCaseError> {
        for step in steps {
            self.step(step)?;
        }
        for slot in 0..SLOTS {
            self.disconnect(slot);
        }
        self.check()?;
        self.hub.tick(self.now + Duration::from_secs(60));
        prop_assert_eq!(self.hub.read(|h| h.census()), Census::default());
        Ok(())
    }
}

#[test]
fn fuzz_corpus_replays_offers() {
    let mut bench = OffersBench::new();
    let mut steps: Vec<OffersStep> = lines("offers/auth.txt")
        .into_iter()
        .enumerate()
        .map(|(i, auth)| OffersStep::Reconnect { slot: i % SLOTS, auth })
        .collect();
    for slot in 0..SLOTS {
        let auth = format!(r#"{{"userName":"Rob-{}","password":"x"}}"#, slot + 1);
        steps.push(OffersStep::Reconnect { slot, auth });
    }
    for from in 0..SLOTS {
        steps.extend(offers_events().into_iter().map(|(name, data)| OffersStep::Event { from, name, data }));
    }
    steps.push(OffersStep::Tick { ms: 11_000 });
    if let Err(e) = bench.run(&steps) {
        panic!("corpus replay: {e}");
    }
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn fuzz_offers(steps in offers_steps()) {
        OffersBench::new().run(&steps)?;
    }
}
