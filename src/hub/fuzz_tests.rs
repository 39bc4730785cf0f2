//! Fuzzing the hub: random sequences of every input (connect, keyed
//! connect, each command, clean and unclean disconnects with leftovers,
//! resume, time passing) over a few spaces, names, rooms and peers, with
//! small bounds so queues fill. After each step: no panic, the hub's own
//! rules hold ([`Hub::check_invariants`]: no orphan, indexes agree, queues
//! within bounds), and nothing is sent now to a peer that is away.
//!
//! `cargo test fuzz` runs a bounded number of cases; `PROPTEST_CASES`
//! raises it for a long run (docs/security.md). Failures are kept in
//! `proptest-regressions/hub/fuzz_tests.txt` and replayed first.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::Config;

use super::*;

/// Names and rooms the operations pick from: few, so they collide. The
/// empty name and a dialect's internal room are as valid to the hub as any.
const NAMES: [&str; 4] = ["a", "b", "c", ""];
const ROOMS: [&str; 3] = ["r1", "r2", "\u{0}lobby"];
/// Keys of keyed claims: two, so the same key comes back.
const KEYS: [&str; 2] = ["k1", "k2"];

/// Small bounds, so the fuzzer reaches them.
fn limits() -> Limits {
    Limits {
        away_queue: 3,
        hold_per_name: 2,
        hold_total: 3,
        ring_timeout: Duration::from_secs(10),
        ..Limits::default()
    }
}

/// Cases per run: `PROPTEST_CASES` if set, else `default`.
fn cases(default: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default;
    }
    config
}

/// Who a signal or ring is for: a recent peer by id, or a name.
#[derive(Clone, Debug)]
enum To {
    Peer(usize),
    Name(usize),
}

/// A command, with peers, names, rooms and calls as small indexes.
#[derive(Clone, Debug)]
enum Cmd {
    Claim { name: usize, exclusive: bool },
    Release { name: usize },
    Join { room: usize, info: bool, max: Option<usize> },
    Leave { room: usize },
    Signal { to: To, missing: Option<Option<u64>>, mark: bool },
    Broadcast { room: usize },
    Ring { to: To, meta: bool },
    Accept { call: usize },
    Reject { call: usize, reason: bool },
    Cancel { call: usize },
    Hangup { call: usize },
}

/// One input to the hub. `peer`, `token` and `call` count back from the
/// most recent one (past the oldest: an id nobody has).
#[derive(Clone, Debug)]
enum Op {
    Connect {
        space: u32,
        grace: bool,
        token: bool,
    },
    ConnectKeyed {
        space: u32,
        name: usize,
        key: usize,
        limit: Option<usize>,
        dead: bool,
    },
    Cmd {
        peer: usize,
        cmd: Cmd,
    },
    /// `unsent`: senders (as peers) of signals the connection had not written.
    Disconnect {
        peer: usize,
        clean: bool,
        unsent: Vec<usize>,
    },
    Resume {
        space: u32,
        token: usize,
    },
    Tick {
        ms: u64,
    },
}

fn to() -> impl Strategy<Value = To> {
    prop_oneof![(0..6usize).prop_map(To::Peer), (0..NAMES.len()).prop_map(To::Name)]
}

fn cmd() -> impl Strategy<Value = Cmd> {
    let name = 0..NAMES.len();
    let room = 0..ROOMS.len();
    let call = 0..4usize;
    // None: Missing::Drop; Some(None): Report; Some(Some(ms)): Hold.
    let missing =
        prop_oneof![1 => Just(None), 1 => Just(Some(None)), 2 => (1..20_000u64).prop_map(|ms| Some(Some(ms)))];
    prop_oneof![
        3 => (name.clone(), any::<bool>()).prop_map(|(name, exclusive)| Cmd::Claim { name, exclusive }),
        1 => name.prop_map(|name| Cmd::Release { name }),
        3 => (room.clone(), any::<bool>(), proptest::option::of(0..4usize))
            .prop_map(|(room, info, max)| Cmd::Join { room, info, max }),
        1 => room.clone().prop_map(|room| Cmd::Leave { room }),
        6 => (to(), missing, any::<bool>()).prop_map(|(to, missing, mark)| Cmd::Signal { to, missing, mark }),
        2 => room.prop_map(|room| Cmd::Broadcast { room }),
        3 => (to(), any::<bool>()).prop_map(|(to, meta)| Cmd::Ring { to, meta }),
        2 => call.clone().prop_map(|call| Cmd::Accept { call }),
        1 => (call.clone(), any::<bool>()).prop_map(|(call, reason)| Cmd::Reject { call, reason }),
        1 => call.clone().prop_map(|call| Cmd::Cancel { call }),
        1 => call.prop_map(|call| Cmd::Hangup { call }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let space = 0..2u32;
    prop_oneof![
        4 => (space.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(space, grace, token)| Op::Connect { space, grace, token }),
        2 => (space.clone(), 0..NAMES.len(), 0..KEYS.len(), proptest::option::of(0..4usize), any::<bool>())
            .prop_map(|(space, name, key, limit, dead)| Op::ConnectKeyed { space, name, key, limit, dead }),
        20 => (0..6usize, cmd()).prop_map(|(peer, cmd)| Op::Cmd { peer, cmd }),
        3 => (0..6usize, any::<bool>(), proptest::collection::vec(0..6usize, 0..10))
            .prop_map(|(peer, clean, unsent)| Op::Disconnect { peer, clean, unsent }),
        2 => (space, 0..4usize).prop_map(|(space, token)| Op::Resume { space, token }),
        3 => prop_oneof![0..2_000u64, 2_000..40_000u64].prop_map(|ms| Op::Tick { ms }),
    ]
}

/// The hub under test and what the operations refer to.
struct World {
    hub: Hub,
    now: Instant,
    /// Peers in connect order (some gone since).
    peers: Vec<PeerId>,
    tokens: Vec<Name>,
    calls: Vec<CallId>,
}

/// The `back`-th most recent of `items`, if there are that many.
fn recent<T: Clone>(items: &[T], back: usize) -> Option<T> {
    items.len().checked_sub(back + 1).map(|i| items[i].clone())
}

fn payload(text: &str) -> Payload {
    Payload::parse(text).expect("valid JSON")
}

impl World {
    fn new() -> World {
        World { hub: Hub::new(limits()), now: Instant::now(), peers: Vec::new(), tokens: Vec::new(), calls: Vec::new() }
    }

    fn peer(&self, back: usize) -> PeerId {
        recent(&self.peers, back).unwrap_or(PeerId(u64::MAX))
    }

    fn call(&self, back: usize) -> CallId {
        recent(&self.calls, back).unwrap_or(CallId(u64::MAX))
    }

    fn target(&self, to: &To) -> Target {
        match to {
            To::Peer(back) => Target::Id(self.peer(*back)),
            To::Name(i) => Target::Name(Name::from(NAMES[*i])),
        }
    }

    fn command(&self, cmd: &Cmd) -> Command {
        let name = |i: usize| Name::from(NAMES[i]);
        let room = |i: usize| Name::from(ROOMS[i]);
        match cmd.clone() {
            Cmd::Claim { name: n, exclusive } => Command::Claim { name: name(n), exclusive },
            Cmd::Release { name: n } => Command::Release { name: name(n) },
            Cmd::Join { room: r, info, max } => {
                Command::Join { room: room(r), info: info.then(|| payload(r#"{"ua":"x"}"#)), max }
            }
            Cmd::Leave { room: r } => Command::Leave { room: room(r) },
            Cmd::Signal { to, missing, mark } => Command::Signal {
                to: self.target(&to),
                kind: Name::from("offer"),
                payload: payload(r#"{"sdp":"v=0"}"#),
                missing: match missing {
                    None => Missing::Drop,
                    Some(None) => Missing::Report,
                    Some(Some(ms)) => Missing::Hold(Duration::from_millis(ms)),
                },
                mark: mark.then(|| payload("7")),
            },
            Cmd::Broadcast { room: r } => {
                Command::Broadcast { room: room(r), kind: Name::from("candidate"), payload: payload("[1,2]") }
            }
            Cmd::Ring { to, meta } => Command::Ring { to: self.target(&to), meta: meta.then(|| payload("\"video\"")) },
            Cmd::Accept { call } => Command::Accept { call: self.call(call) },
            Cmd::Reject { call, reason } => {
                Command::Reject { call: self.call(call), reason: reason.then(|| Name::from("busy")) }
            }
            Cmd::Cancel { call } => Command::Cancel { call: self.call(call) },
            Cmd::Hangup { call } => Command::Hangup { call: self.call(call) },
        }
    }

    fn opts(grace: bool) -> PeerOpts {
        PeerOpts { grace: if grace { Duration::from_secs(5) } else { Duration::ZERO }, grant: None }
    }

    /// Applies one operation; what the hub sent now.
    fn apply(&mut self, op: &Op) -> Vec<Delivery> {
        let mut out = Vec::new();
        match op {
            Op::Connect { space, grace, token } => {
                // Tokens are unique, as `LocalHub` makes them (128 random bits).
                let token = token.then(|| Name::from(format!("t{}", self.tokens.len())));
                let id = self.hub.connect(SpaceId(*space), Self::opts(*grace), token.clone());
                self.tokens.extend(token);
                self.peers.push(id);
            }
            Op::ConnectKeyed { space, name, key, limit, dead } => {
                let (name, key) = (Name::from(NAMES[*name]), Name::from(KEYS[*key]));
                let opts = Self::opts(true);
                let keyed = self.hub.connect_keyed(SpaceId(*space), opts, name, key, *limit, |_| *dead, &mut out);
                match keyed {
                    Ok(Keyed::New(id) | Keyed::Replaced { peer: id, .. }) => self.peers.push(id),
                    Ok(Keyed::Resumed(..)) | Err(_) => {}
                }
            }
            Op::Cmd { peer, cmd } => {
                let cmd = self.command(cmd);
                if let Ok(Reply::Ringing { call }) = self.hub.handle(self.peer(*peer), cmd, self.now, &mut out) {
                    self.calls.push(call);
                }
            }
            Op::Disconnect { peer, clean, unsent } => {
                let id = self.peer(*peer);
                let unsent = unsent
                    .iter()
                    .map(|from| Event::Signal {
                        from: self.hub.info(self.peer(*from)),
                        kind: Name::from("answer"),
                        payload: payload("{}"),
                        room: None,
                        mark: Some(payload("1")),
                    })
                    .collect();
                self.hub.disconnect(id, *clean, unsent, self.now, &mut out);
            }
            Op::Resume { space, token } => {
                let token = recent(&self.tokens, *token).unwrap_or_else(|| Name::from("nope"));
                if let Ok((_, waiting)) = self.hub.resume(SpaceId(*space), &token, None, &mut out) {
                    let bound = limits().away_queue * 2;
                    assert!(waiting.len() <= bound, "{} events waited, over {bound}", waiting.len());
                }
            }
            Op::Tick { ms } => {
                self.now += Duration::from_millis(*ms);
                self.hub.tick(self.now, &mut out);
            }
        }
        out
    }

    /// What must hold after every step.
    fn check(&self, op: &Op, out: &[Delivery]) -> Result<(), TestCaseError> {
        if let Err(e) = self.hub.check_invariants() {
            return Err(TestCaseError::fail(format!("after {op:?}:\n{e}")));
        }
        for d in out {
            prop_assert!(self.peers.contains(&d.to), "after {op:?}: a delivery to {}, never connected", d.to);
            // What is for an away peer waits in its queue; sent now, it is lost.
            prop_assert!(!self.hub.is_away(d.to), "after {op:?}: {:?} sent now to {}, which is away", d.event, d.to);
        }
        let census = self.hub.census();
        prop_assert!(census.held <= limits().hold_total);
        prop_assert!(census.away <= census.peers);
        Ok(())
    }
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn fuzz_hub_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let mut world = World::new();
        for op in &ops {
            let out = world.apply(op);
            world.check(op, &out)?;
        }
        // Whatever happened, time passing and everyone leaving empties it.
        for id in world.peers.clone() {
            let mut out = Vec::new();
            world.hub.disconnect(id, true, Vec::new(), world.now, &mut out);
        }
        world.apply(&Op::Tick { ms: 60_000 });
        world.hub.check_invariants().map_err(TestCaseError::fail)?;
        prop_assert_eq!(world.hub.census(), Census::default());
    }
}
