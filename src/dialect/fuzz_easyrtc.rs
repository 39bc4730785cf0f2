//! Fuzzing the `easyrtc` dialect against the local hub, no socket: three
//! sockets take random events (corpus events mutated, random JSON, junk;
//! with and without an ack id; `@0`..`@2` in a corpus event name the
//! sockets' ids), and sockets go away and come back. After each step: no
//! panic, every ack and emit is valid JSON, every pushed event is one of
//! the dialect's, and the hub keeps its invariants with at most one peer
//! per socket. Corpus: `tests/fuzz_corpus/easyrtc/events.txt`.

use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::value::RawValue;

use super::Ctx;
use super::easyrtc::{Env, Session, event};
use super::fuzz_input::{cases, chars, json, junk, lines, mutate, mutation};
use crate::hub::{Limits, PeerOpts, SpaceId};
use crate::ice::IceConfig;
use crate::local_hub::{Attachment, Flow, LocalHub};
use crate::outbox::Budget;

const SPACE: SpaceId = SpaceId(0);
const SLOTS: usize = 3;

#[derive(Clone, Debug)]
enum Step {
    Event { from: usize, name: String, data: String, acked: bool },
    Reconnect { slot: usize },
}

fn seeds() -> Vec<(String, String)> {
    lines("easyrtc/events.txt")
        .iter()
        .filter_map(|l| l.split_once(' ').map(|(e, d)| (e.to_string(), d.to_string())))
        .collect()
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    const NAMES: &[&str] = &[event::AUTH, event::CMD, event::MSG, ""];
    let name = prop_oneof![select(NAMES).prop_map(str::to_string), chars(12)];
    let event = prop_oneof![
        6 => (select(seeds()), proptest::collection::vec(mutation(), 0..4), any::<bool>())
            .prop_map(|((name, seed), mutations, spaced)| (name, mutate(&seed, &mutations, spaced))),
        2 => (name.clone(), json().prop_map(|j| j.text(false))),
        1 => (name, junk()),
    ];
    let step = prop_oneof![
        12 => (0..SLOTS, event, prop::bool::weighted(0.9))
            .prop_map(|(from, (name, data), acked)| Step::Event { from, name, data, acked }),
        2 => (0..SLOTS).prop_map(|slot| Step::Reconnect { slot }),
    ];
    proptest::collection::vec(step, 1..32)
}

struct Socket {
    att: Attachment,
    session: Session,
}

struct Bench {
    hub: LocalHub,
    sockets: Vec<Socket>,
    ice: IceConfig,
    now: Instant,
}

impl Bench {
    fn new() -> Bench {
        let limits = Limits { rooms_per_peer: 3, room_members: 3, ..Limits::default() };
        let hub =
            LocalHub::new(limits, Flow { budget: Budget::per_queue(32 << 10), slow_after: Duration::from_secs(3600) });
        let now = Instant::now();
        let sockets = (0..SLOTS).map(|_| Bench::socket(&hub, now)).collect();
        Bench { hub, sockets, ice: IceConfig::default(), now }
    }

    fn socket(hub: &LocalHub, now: Instant) -> Socket {
        let att = hub.attach(SPACE, PeerOpts::default(), false, now);
        Socket { att, session: Session::new() }
    }

    fn step(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let mut sent = Vec::new();
        match step {
            Step::Event { from, name, data, acked } => {
                let mut data = data.clone();
                for (i, s) in self.sockets.iter().enumerate() {
                    data = data.replace(&format!("@{i}"), s.session.easyrtcid().unwrap_or("nobody"));
                }
                let raw = RawValue::from_string(data).ok();
                let env = Env { ice: &self.ice, wall: SystemTime::now() };
                let socket = &mut self.sockets[*from];
                let mut out = Vec::new();
                let mut ctx = Ctx::new(&self.hub, socket.att.peer, SPACE, self.now, &mut out);
                let answer = socket.session.event(name, raw.as_deref(), *acked, &mut ctx, &env);
                prop_assert!(*acked || answer.ack.is_none(), "an ack without an ack id");
                sent.extend(answer.ack);
                if answer.disconnect {
                    self.reconnect(*from);
                }
            }
            Step::Reconnect { slot } => self.reconnect(*slot),
        }
        for socket in &mut self.sockets {
            while let Ok(ev) = socket.att.rx.try_recv() {
                if let Some((name, text)) = socket.session.emit_of(ev, SystemTime::now()) {
                    prop_assert!(name == event::CMD || name == event::MSG, "pushed {name}");
                    sent.push(text);
                }
            }
        }
        for frame in &sent {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(frame) {
                return Err(TestCaseError::fail(format!("after {step:?}: not JSON ({e}): {frame}")));
            }
        }
        self.hub.read(|h| h.check_invariants()).map_err(TestCaseError::fail)?;
        let census = self.hub.read(|h| h.census());
        prop_assert!(census.peers <= SLOTS, "{census:?}");
        Ok(())
    }

    fn reconnect(&mut self, slot: usize) {
        let fresh = Bench::socket(&self.hub, self.now);
        let mut old = std::mem::replace(&mut self.sockets[slot], fresh);
        old.att.rx.close();
        self.hub.detach(old.att.peer, old.att.conn, true, Vec::new(), self.now);
    }
}

#[test]
fn fuzz_corpus_replays_easyrtc() {
    let mut bench = Bench::new();
    for from in 0..SLOTS {
        for (name, data) in seeds() {
            let step = Step::Event { from, name, data, acked: true };
            if let Err(e) = bench.step(&step) {
                panic!("{e}");
            }
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn fuzz_easyrtc(steps in steps()) {
        let mut bench = Bench::new();
        for step in &steps {
            bench.step(step)?;
        }
    }
}
