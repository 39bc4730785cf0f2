//! The hub's consistency rules, checked as a whole: what every method must
//! leave true. Test-only (the fuzz harnesses call it after each step); pure,
//! it reads the state and changes nothing.

use std::fmt::Write as _;

use super::*;

impl Hub {
    /// Checks that the hub's indexes agree with each other and that every
    /// queue is within its bound; the first few broken rules, in words, if not.
    ///
    /// - Every name holder and room member is a live peer of that space,
    ///   listed once, and names the name or room itself; each peer's names
    ///   and rooms are in the indexes. No index entry is empty.
    /// - `held_total` is the sum of the held queues and within `hold_total`;
    ///   each held queue is within `hold_per_name`, not empty, and for a name
    ///   nobody holds (a claim takes what waited).
    /// - Each away queue is within twice `away_queue` (the bound plus one
    ///   connection's leftovers).
    /// - A call joins two different live peers, each of which points back
    ///   at it; a peer's call exists and includes it.
    /// - Each resume token names a live peer holding that token, and the
    ///   other way round.
    /// - The population of each space is its number of peers.
    pub(crate) fn check_invariants(&self) -> Result<(), String> {
        let mut errors = String::new();
        let mut fail = |msg: String| {
            if errors.len() < 2000 {
                let _ = writeln!(errors, "{msg}");
            }
        };
        for (kind, index) in [("name", &self.names), ("room", &self.rooms)] {
            for ((space, key), ids) in index {
                if ids.is_empty() {
                    fail(format!("{kind} {key:?} of {space:?} has an empty entry"));
                }
                for (i, id) in ids.iter().enumerate() {
                    if ids[..i].contains(id) {
                        fail(format!("{kind} {key:?} lists {id} twice"));
                    }
                    let Some(peer) = self.peers.get(id) else {
                        fail(format!("{kind} {key:?} lists {id}, which is gone (orphan)"));
                        continue;
                    };
                    let own = if kind == "name" { &peer.names } else { &peer.rooms };
                    if peer.space != *space || !own.contains(key) {
                        fail(format!("{kind} {key:?} of {space:?} lists {id}, whose own list is {own:?}"));
                    }
                }
            }
        }
        let mut population: HashMap<SpaceId, usize> = HashMap::new();
        for (id, peer) in &self.peers {
            *population.entry(peer.space).or_default() += 1;
            for (kind, own, index) in [("name", &peer.names, &self.names), ("room", &peer.rooms, &self.rooms)] {
                for (i, key) in own.iter().enumerate() {
                    if own[..i].contains(key) {
                        fail(format!("{id} has {kind} {key:?} twice"));
                    }
                    if !index.get(&(peer.space, key.clone())).is_some_and(|ids| ids.contains(id)) {
                        fail(format!("{id} has {kind} {key:?}, but the index does not list it"));
                    }
                }
            }
            if let Some(away) = &peer.away {
                let bound = self.limits.away_queue.saturating_mul(2);
                if away.queue.len() > bound {
                    fail(format!("{id} is away with {} queued, over {bound}", away.queue.len()));
                }
            }
            if let Some(call) = peer.call {
                match self.calls.get(&call).map(calls::Call::sides) {
                    Some((caller, callee)) if caller == *id || callee == *id => {}
                    Some(_) => fail(format!("{id} is in {call}, which is between others")),
                    None => fail(format!("{id} is in {call}, which does not exist")),
                }
            }
            if let Some(t) = &peer.token
                && self.tokens.get(t) != Some(id)
            {
                fail(format!("{id} has a token the token index does not map to it"));
            }
        }
        for (t, id) in &self.tokens {
            if self.peers.get(id).is_none_or(|p| p.token.as_ref() != Some(t)) {
                fail(format!("a token maps to {id}, which is gone or holds another"));
            }
        }
        for (call, c) in &self.calls {
            let (caller, callee) = c.sides();
            if caller == callee {
                fail(format!("{call} calls {caller} itself"));
            }
            for id in [caller, callee] {
                match self.peers.get(&id) {
                    Some(p) if p.call == Some(*call) => {}
                    Some(p) => fail(format!("{call} includes {id}, whose call is {:?}", p.call)),
                    None => fail(format!("{call} includes {id}, which is gone (orphan)")),
                }
            }
        }
        let held: usize = self.held.values().map(VecDeque::len).sum();
        if held != self.held_total {
            fail(format!("held_total is {} but {held} signals are held", self.held_total));
        }
        if self.held_total > self.limits.hold_total {
            fail(format!("{} signals held, over the bound of {}", self.held_total, self.limits.hold_total));
        }
        for (key, queue) in &self.held {
            if queue.is_empty() || queue.len() > self.limits.hold_per_name {
                fail(format!("{} signals held for {key:?} (bound {})", queue.len(), self.limits.hold_per_name));
            }
            if self.names.contains_key(key) {
                fail(format!("signals held for {key:?}, which is claimed"));
            }
        }
        let held_bytes: usize = self.held.values().flatten().map(|h| h.weight).sum();
        if held_bytes != self.held_bytes || held_bytes > self.limits.hold_total_bytes {
            fail(format!(
                "held_bytes is {} for {held_bytes} held (bound {})",
                self.held_bytes, self.limits.hold_total_bytes
            ));
        }
        let mut away_bytes = 0;
        for (id, away) in self.peers.iter().filter_map(|(id, p)| p.away.as_ref().map(|a| (id, a))) {
            let queued: usize = away.queue.iter().map(Event::weight).sum();
            if queued != away.bytes {
                fail(format!("{id} is away with {queued} bytes queued but counts {}", away.bytes));
            }
            away_bytes += queued;
        }
        if away_bytes != self.away_bytes {
            fail(format!("away_bytes is {} but {away_bytes} are queued", self.away_bytes));
        }
        let counted: HashMap<SpaceId, usize> = self.population.iter().map(|(s, n)| (*s, *n)).collect();
        if counted != population {
            fail(format!("population is {counted:?} but the peers are {population:?}"));
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}
