//! The hub: peers, names, rooms, calls, queues. A pure, synchronous state
//! machine that knows no wire format and does no I/O.
//!
//! Every input is a method call with the current time; every output is a list
//! of [`Delivery`]s for the I/O side to send. A peer that dropped without a
//! goodbye is *away*: messages for it wait in a bounded queue until it resumes
//! or its grace period ends, when each waiting signal's sender is told.

mod calls;
mod keyed;
mod replica;
mod rooms;
pub mod types;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod invariants;
#[cfg(test)]
mod keyed_tests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

pub use keyed::Keyed;
pub use replica::PeerState;
pub use types::*;

/// Bounds that keep the hub's memory finite whatever clients do.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Events kept for one away peer; beyond it senders get `QueueFull`.
    pub away_queue: usize,
    /// Bytes of events kept for one away peer (see [`Event::weight`]).
    pub away_bytes: usize,
    /// Bytes of events kept for all away peers together.
    pub away_total_bytes: usize,
    /// Signals held for one unclaimed name.
    pub hold_per_name: usize,
    /// Bytes of signals held for one unclaimed name.
    pub hold_bytes_per_name: usize,
    /// Signals held for all unclaimed names together.
    pub hold_total: usize,
    /// Bytes of signals held for all unclaimed names together.
    pub hold_total_bytes: usize,
    /// How long a call may ring before it ends with `Timeout`.
    pub ring_timeout: Duration,
    /// Longest name, in bytes.
    pub max_name_len: usize,
    /// Most names one peer may hold at once.
    pub names_per_peer: usize,
    /// Most rooms one peer may be in at once (dialects' own rooms aside).
    pub rooms_per_peer: usize,
    /// Most members of any room (presence goes to every member on each
    /// change, so its cost grows with the square of this).
    pub room_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            away_queue: 256,
            // An away peer's share: its calls' signaling, not a file transfer.
            away_bytes: 256 << 10,
            away_total_bytes: 256 << 20,
            hold_per_name: 64,
            // A PeerJS offer and its candidates, several times over.
            hold_bytes_per_name: 256 << 10,
            hold_total: 100_000,
            hold_total_bytes: 64 << 20,
            ring_timeout: Duration::from_secs(30),
            // PeerJS ids and tokens are checked against the same length.
            max_name_len: 256,
            names_per_peer: 16,
            rooms_per_peer: 16,
            room_members: 10_000,
        }
    }
}

/// One connected (or away) peer.
#[derive(Debug)]
struct Peer {
    space: SpaceId,
    /// Names held, in claim order; the first is the display name.
    names: Vec<Name>,
    /// Rooms joined, in join order.
    rooms: Vec<Name>,
    /// Profile shown in presence (last `Join` info).
    info: Option<Payload>,
    call: Option<CallId>,
    token: Option<Name>,
    /// Client-chosen key that lets a new connection claim this peer's name
    /// and continue as it ([`Hub::connect_keyed`]).
    key: Option<Name>,
    opts: PeerOpts,
    /// Set while the peer is disconnected but may resume.
    away: Option<Away>,
    /// A replica of another node's peer ([`replica`]): presence and call
    /// events for it are its node's to make, so none wait for it here.
    replica: bool,
}

#[derive(Debug)]
struct Away {
    since: Instant,
    queue: VecDeque<Event>,
    /// Sum of the queued events' weights.
    bytes: usize,
}

impl Away {
    fn new(since: Instant, events: Vec<Event>) -> Away {
        let bytes = events.iter().map(Event::weight).sum();
        Away { since, queue: events.into(), bytes }
    }

    /// Puts `events` ahead of what waits, in order; returns their bytes.
    fn prepend(&mut self, events: Vec<Event>) -> usize {
        let added: usize = events.iter().map(Event::weight).sum();
        for (i, e) in events.into_iter().enumerate() {
            self.queue.insert(i, e);
        }
        self.bytes += added;
        added
    }
}

/// A signal waiting for someone to claim its target name.
#[derive(Debug)]
struct Held {
    from: PeerId,
    deadline: Instant,
    event: Event,
    mark: Option<Payload>,
    /// The event's weight.
    weight: usize,
}

/// Ends an away peer's queue: its events, its bytes off the hub's total.
fn unqueue(total: &mut usize, away: Away) -> VecDeque<Event> {
    *total -= away.bytes;
    away.queue
}

/// Rooms whose name starts with this are a dialect's own bookkeeping (the
/// native lobby, a presence list): not counted as rooms in metrics. Clients
/// cannot name a room so (names are checked by each dialect).
pub const INTERNAL: char = '\u{0}';

/// Names that start with this are ids a dialect assigned (EasyRTC's
/// easyrtcids), not claims of the client: an access token's name rule does
/// not apply to them.
pub const ASSIGNED: &str = "\u{0}assigned/";

/// The routing state of one server process.
#[derive(Debug, Default)]
pub struct Hub {
    limits: Limits,
    next_peer: u64,
    next_call: u64,
    /// Keyed by server-assigned numbers, so a fast unkeyed hash is safe
    /// here (names, chosen by clients, keep the default DoS-resistant one).
    peers: FxHashMap<PeerId, Peer>,
    /// Holders of each name, earliest first (exclusive names have one).
    names: HashMap<(SpaceId, Name), Vec<PeerId>>,
    rooms: HashMap<(SpaceId, Name), Vec<PeerId>>,
    calls: FxHashMap<CallId, calls::Call>,
    tokens: HashMap<Name, PeerId>,
    held: HashMap<(SpaceId, Name), VecDeque<Held>>,
    held_total: usize,
    /// Bytes held for unclaimed names.
    held_bytes: usize,
    /// Bytes queued for away peers.
    away_bytes: usize,
    /// Peers (connected or away) per space.
    population: FxHashMap<SpaceId, usize>,
}

/// Numbers for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Peers, connected or away.
    pub peers: usize,
    /// Peers away, waiting to resume.
    pub away: usize,
    /// Non-empty rooms, not counting dialects' internal ones ([`INTERNAL`]).
    pub rooms: usize,
    /// Calls ringing or active.
    pub calls: usize,
    /// Signals held for unclaimed names.
    pub held: usize,
    /// Bytes of those signals.
    pub held_bytes: usize,
    /// Bytes queued for away peers.
    pub away_bytes: usize,
    /// Bytes waiting in connections' outboxes (filled in by the I/O side).
    pub outbox_bytes: usize,
    /// Peers this node holds (all of `peers` outside a cluster; filled in
    /// by the I/O side).
    pub node_peers: usize,
    /// In a cluster: live nodes (this one included) and whether Redis is
    /// reachable (filled in by the I/O side).
    pub cluster: Option<(usize, bool)>,
}

impl Hub {
    /// A hub with the given bounds.
    pub fn new(limits: Limits) -> Hub {
        Hub { limits, ..Hub::default() }
    }

    /// A hub whose peer and call ids start after `base`: nodes of a cluster
    /// each take their own range, so ids are unique across nodes.
    pub fn with_id_base(limits: Limits, base: u64) -> Hub {
        Hub { limits, next_peer: base, next_call: base, ..Hub::default() }
    }

    /// Registers a new peer. `token`, if given, lets it [`resume`](Self::resume) later.
    pub fn connect(&mut self, space: SpaceId, opts: PeerOpts, token: Option<Name>) -> PeerId {
        self.next_peer += 1;
        let id = PeerId(self.next_peer);
        if let Some(t) = &token {
            self.tokens.insert(t.clone(), id);
        }
        let peer = Peer {
            space,
            names: Vec::new(),
            rooms: Vec::new(),
            info: None,
            call: None,
            token,
            key: None,
            opts,
            away: None,
            replica: false,
        };
        self.peers.insert(id, peer);
        *self.population.entry(space).or_default() += 1;
        id
    }

    /// Peers (connected or away) in a space.
    pub fn population(&self, space: SpaceId) -> usize {
        self.population.get(&space).copied().unwrap_or(0)
    }

    /// Whether the peer exists (connected or away).
    pub fn contains(&self, id: PeerId) -> bool {
        self.peers.contains_key(&id)
    }

    /// The peer's id, display name and profile.
    pub fn info(&self, id: PeerId) -> PeerInfo {
        let peer = self.peers.get(&id);
        PeerInfo { id, name: peer.and_then(|p| p.names.first().cloned()), info: peer.and_then(|p| p.info.clone()) }
    }

    /// The first holder of a name in a space.
    pub fn lookup(&self, space: SpaceId, name: &str) -> Option<PeerId> {
        self.names.get(&(space, Name::from(name))).and_then(|v| v.first().copied())
    }

    /// Every name held in a space: peers in connect order, each peer's names
    /// in claim order (a registry listing for dialects that have one).
    pub fn names_in(&self, space: SpaceId) -> Vec<Name> {
        let mut peers: Vec<(&PeerId, &Peer)> = self.peers.iter().filter(|(_, p)| p.space == space).collect();
        peers.sort_by_key(|(id, _)| **id);
        peers.into_iter().flat_map(|(_, p)| p.names.iter().cloned()).collect()
    }

    /// Members of a room, in join order.
    pub fn members(&self, space: SpaceId, room: &str) -> Vec<PeerInfo> {
        self.rooms
            .get(&(space, Name::from(room)))
            .map(|m| m.iter().map(|id| self.info(*id)).collect())
            .unwrap_or_default()
    }

    /// Non-empty rooms of `space` whose names start with `prefix`, with
    /// their member counts, sorted by name.
    pub fn rooms_under(&self, space: SpaceId, prefix: &str) -> Vec<(Name, usize)> {
        let mut out: Vec<(Name, usize)> = self
            .rooms
            .iter()
            .filter(|((s, name), members)| *s == space && name.starts_with(prefix) && !members.is_empty())
            .map(|((_, name), members)| (name.clone(), members.len()))
            .collect();
        out.sort();
        out
    }

    /// The call the peer is in, if any.
    pub fn call_of(&self, id: PeerId) -> Option<CallId> {
        self.peers.get(&id).and_then(|p| p.call)
    }

    /// Sizes, for metrics.
    pub fn census(&self) -> Census {
        Census {
            peers: self.peers.len(),
            away: self.peers.values().filter(|p| p.away.is_some()).count(),
            rooms: self.rooms.keys().filter(|(_, name)| !name.starts_with(INTERNAL)).count(),
            calls: self.calls.len(),
            held: self.held_total,
            held_bytes: self.held_bytes,
            away_bytes: self.away_bytes,
            outbox_bytes: 0,
            node_peers: self.peers.len(),
            cluster: None,
        }
    }

    /// Applies one command from a connected peer.
    pub fn handle(
        &mut self,
        from: PeerId,
        cmd: Command,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        let Some(space) = self.peers.get(&from).map(|p| p.space) else {
            return Err(HubError::UnknownPeer(Target::Id(from)));
        };
        match cmd {
            Command::Claim { name, exclusive } => self.claim(from, space, name, exclusive, out),
            Command::Release { name } => {
                self.release(from, space, &name);
                Ok(Reply::Done)
            }
            Command::Join { room, info, max } => self.join(from, space, room, info, max, out),
            Command::Leave { room } => self.leave(from, space, &room, out),
            Command::Signal { to, kind, payload, missing, mark } => {
                let event = Event::Signal { from: self.info(from), kind, payload, room: None, mark: mark.clone() };
                self.signal(from, space, to, event, missing, mark, now, out)
            }
            Command::Broadcast { room, kind, payload } => self.broadcast(from, space, room, kind, payload, out),
            Command::Ring { to, meta } => {
                self.next_call += 1;
                let call = CallId(self.next_call);
                self.ring(from, space, to, meta, call, now, out)
            }
            Command::Accept { call } => self.accept(from, call, out),
            Command::Reject { call, reason } => self.reject(from, call, reason, out),
            Command::Cancel { call } => self.cancel(from, call, out),
            Command::Hangup { call } => self.hangup(from, call, out),
        }
    }

    fn resolve(&self, space: SpaceId, to: &Target) -> Option<PeerId> {
        match to {
            Target::Id(id) => self.peers.get(id).filter(|p| p.space == space).map(|_| *id),
            // A clone of the name shares its text: no allocation per signal.
            Target::Name(name) => self.names.get(&(space, name.clone())).and_then(|v| v.first().copied()),
        }
    }

    fn claim(
        &mut self,
        from: PeerId,
        space: SpaceId,
        name: Name,
        exclusive: bool,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        if let Some(grant) = self.grant_of(from)
            && !grant.allows_name(&name)
        {
            return Err(HubError::NotAllowed(Denied::Name(name)));
        }
        if name.is_empty() || name.len() > self.limits.max_name_len {
            return Err(HubError::BadName(self.limits.max_name_len));
        }
        let held = self.peers.get(&from).map_or(0, |p| p.names.len());
        let holders = self.names.entry((space, name.clone())).or_default();
        if !holders.contains(&from) && held >= self.limits.names_per_peer {
            if holders.is_empty() {
                self.names.remove(&(space, name));
            }
            return Err(HubError::TooManyNames(self.limits.names_per_peer));
        }
        let holders = self.names.entry((space, name.clone())).or_default();
        if holders.contains(&from) {
            return Ok(Reply::Done);
        }
        if exclusive && !holders.is_empty() {
            return Err(HubError::NameTaken(name));
        }
        holders.push(from);
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.names.push(name.clone());
        }
        // Signals held for this name are now deliverable, in the order sent.
        if let Some(held) = self.held.remove(&(space, name)) {
            self.held_total -= held.len();
            self.held_bytes -= held.iter().map(|h| h.weight).sum::<usize>();
            for h in held {
                self.deliver(from, h.event, out);
            }
        }
        Ok(Reply::Done)
    }

    fn release(&mut self, from: PeerId, space: SpaceId, name: &Name) {
        let key = (space, name.clone());
        if let Some(holders) = self.names.get_mut(&key) {
            holders.retain(|id| *id != from);
            if holders.is_empty() {
                self.names.remove(&key);
            }
        }
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.names.retain(|n| n != name);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn signal(
        &mut self,
        from: PeerId,
        space: SpaceId,
        to: Target,
        event: Event,
        missing: Missing,
        mark: Option<Payload>,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        if let Some(target) = self.resolve(space, &to) {
            return match self.deliver(target, event, out) {
                Delivered::Now => Ok(Reply::Sent),
                Delivered::Queued => Ok(Reply::Queued),
                Delivered::Full => Err(HubError::QueueFull(to)),
            };
        }
        match (missing, &to) {
            (Missing::Drop, _) => Ok(Reply::Dropped),
            (Missing::Hold(ttl), Target::Name(name)) => {
                let key = (space, name.clone());
                // Refused before an entry is made: a refusal leaves nothing behind.
                let weight = event.weight();
                let (count, bytes) =
                    self.held.get(&key).map_or((0, 0), |q| (q.len(), q.iter().map(|h| h.weight).sum::<usize>()));
                let l = &self.limits;
                if count >= l.hold_per_name
                    || bytes + weight > l.hold_bytes_per_name
                    || self.held_total >= l.hold_total
                    || self.held_bytes + weight > l.hold_total_bytes
                {
                    return Err(HubError::QueueFull(to));
                }
                self.held.entry(key).or_default().push_back(Held { from, deadline: now + ttl, event, mark, weight });
                self.held_total += 1;
                self.held_bytes += weight;
                Ok(Reply::Queued)
            }
            _ => Err(HubError::UnknownPeer(to)),
        }
    }

    /// Sends now, or queues for an away peer.
    fn deliver(&mut self, to: PeerId, event: Event, out: &mut Vec<Delivery>) -> Delivered {
        let l = &self.limits;
        match self.peers.get_mut(&to).map(|p| (p.replica, &mut p.away)) {
            // Its own node tells it; only what it alone cannot know waits here.
            Some((true, Some(_))) if !matches!(event, Event::Signal { .. } | Event::Undeliverable { .. }) => {
                Delivered::Now
            }
            Some((_, Some(away))) => {
                let weight = event.weight();
                if away.queue.len() >= l.away_queue
                    || away.bytes + weight > l.away_bytes
                    || self.away_bytes + weight > l.away_total_bytes
                {
                    return Delivered::Full;
                }
                away.queue.push_back(event);
                away.bytes += weight;
                self.away_bytes += weight;
                Delivered::Queued
            }
            Some((_, None)) => {
                out.push(Delivery { to, event });
                Delivered::Now
            }
            None => Delivered::Full,
        }
    }

    /// The connection of a peer ended. `clean`: it said goodbye, so it is
    /// removed now; otherwise it is kept for its grace period. `unsent` are
    /// events that were on their way to it and not written out.
    pub fn disconnect(&mut self, id: PeerId, clean: bool, unsent: Vec<Event>, now: Instant, out: &mut Vec<Delivery>) {
        let Some(peer) = self.peers.get_mut(&id) else {
            // Gone already (its name taken over): what it did not write
            // reaches no one, and its senders hear so.
            self.tell_senders(Target::Id(id), unsent, out);
            return;
        };
        if clean || peer.opts.grace.is_zero() {
            self.remove(id, unsent, out);
            return;
        }
        match &mut peer.away {
            // Already away (a replaced connection ended): keep order.
            Some(away) => self.away_bytes += away.prepend(unsent),
            None => {
                let away = Away::new(now, unsent);
                self.away_bytes += away.bytes;
                peer.away = Some(away);
            }
        }
        // A connection's leftovers come on top of what queued meanwhile: keep
        // at most twice the queue's bounds, and tell the senders of the
        // newest rest.
        let (hard, hard_bytes) = (self.limits.away_queue.saturating_mul(2), self.limits.away_bytes.saturating_mul(2));
        let mut excess = Vec::new();
        if let Some(away) = &mut peer.away {
            while away.queue.len() > hard || (away.bytes > hard_bytes && away.queue.len() > 1) {
                let Some(e) = away.queue.pop_back() else { break };
                let w = e.weight();
                away.bytes -= w;
                self.away_bytes -= w;
                excess.push(e);
            }
            excess.reverse();
        }
        let call = peer.call;
        let to = peer.names.first().cloned().map(Target::Name).unwrap_or(Target::Id(id));
        self.tell_senders(to, excess, out);
        if let Some(call) = call
            && let Some(partner) = self.calls.get(&call).map(|c| c.partner(id))
        {
            self.deliver(partner, Event::PartnerAway { call, peer: id }, out);
        }
    }

    /// Brings an away peer of `space` back by its token; returns it and, in
    /// order, every event that waited for it. A peer still marked connected is
    /// taken over. A token of another space is unknown here. `grant` is the
    /// new connection's: it must name the same identity as the peer's (a
    /// resume token only works for the identity it was issued to), and
    /// replaces it (a fresh access token may list other rooms).
    pub fn resume(
        &mut self,
        space: SpaceId,
        token: &str,
        grant: Option<Grant>,
        out: &mut Vec<Delivery>,
    ) -> Result<(PeerId, Vec<Event>), HubError> {
        let id = *self.tokens.get(token).ok_or(HubError::BadToken)?;
        let peer = self.peers.get_mut(&id).filter(|p| p.space == space).ok_or(HubError::BadToken)?;
        if peer.opts.grant.as_ref().map(|g| &g.name) != grant.as_ref().map(|g| &g.name) {
            return Err(HubError::NotAllowed(Denied::Resume));
        }
        peer.opts.grant = grant;
        self.resume_id(id, out)
    }

    /// What the peer's access token allows, if the server authenticates.
    fn grant_of(&self, id: PeerId) -> Option<&Grant> {
        self.peers.get(&id).and_then(|p| p.opts.grant.as_ref())
    }

    fn resume_id(&mut self, id: PeerId, out: &mut Vec<Delivery>) -> Result<(PeerId, Vec<Event>), HubError> {
        let peer = self.peers.get_mut(&id).ok_or(HubError::BadToken)?;
        let waiting = peer.away.take().map(|a| unqueue(&mut self.away_bytes, a)).map(Vec::from).unwrap_or_default();
        if let Some(call) = peer.call
            && let Some(partner) = self.calls.get(&call).map(|c| c.partner(id))
        {
            self.deliver(partner, Event::PartnerBack { call, peer: id }, out);
        }
        Ok((id, waiting))
    }

    /// Tells the sender of each signal among `events` that it will not reach `to`.
    fn tell_senders(&mut self, to: Target, events: impl IntoIterator<Item = Event>, out: &mut Vec<Delivery>) {
        for event in events {
            if let Event::Signal { from, kind, mark, .. } = event {
                let notice = Event::Undeliverable { to: to.clone(), kind, mark, reason: Undelivered::PeerGone };
                self.deliver(from.id, notice, out);
            }
        }
    }

    /// Removes a peer for good: names freed, rooms left, call ended, and the
    /// senders of every signal still waiting for it told.
    fn remove(&mut self, id: PeerId, unsent: Vec<Event>, out: &mut Vec<Delivery>) {
        let Some(mut peer) = self.peers.remove(&id) else { return };
        if let Some(t) = &peer.token {
            self.tokens.remove(t);
        }
        if let Some(n) = self.population.get_mut(&peer.space) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.population.remove(&peer.space);
            }
        }
        let waiting = peer.away.take().map(|a| unqueue(&mut self.away_bytes, a)).unwrap_or_default();
        let to = peer.names.first().cloned().map(Target::Name).unwrap_or(Target::Id(id));
        self.tell_senders(to, unsent.into_iter().chain(waiting), out);
        let info = PeerInfo { id, name: peer.names.first().cloned(), info: peer.info.clone() };
        for name in std::mem::take(&mut peer.names) {
            let key = (peer.space, name);
            if let Some(holders) = self.names.get_mut(&key) {
                holders.retain(|h| *h != id);
                if holders.is_empty() {
                    self.names.remove(&key);
                }
            }
        }
        for room in std::mem::take(&mut peer.rooms) {
            self.leave_room(id, peer.space, &room, &info, out);
        }
        if let Some(call) = peer.call
            && let Some(c) = self.calls.remove(&call)
        {
            let partner = c.partner(id);
            if let Some(p) = self.peers.get_mut(&partner) {
                p.call = None;
            }
            self.deliver(partner, Event::Ended { call, reason: EndReason::PeerGone }, out);
        }
    }

    /// Advances time: ends unanswered calls, drops away peers whose grace ran
    /// out, and expires held signals.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Delivery>) {
        self.expire_rings(now, out);
        let gone: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.away.as_ref().is_some_and(|a| now.duration_since(a.since) >= p.opts.grace))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove(id, Vec::new(), out);
        }
        if self.held_total > 0 {
            self.expire_held(now, out);
        }
    }

    fn expire_held(&mut self, now: Instant, out: &mut Vec<Delivery>) {
        let mut expired = Vec::new();
        self.held.retain(|(_, name), queue| {
            while queue.front().is_some_and(|h| h.deadline <= now) {
                if let Some(h) = queue.pop_front() {
                    expired.push((name.clone(), h));
                }
            }
            !queue.is_empty()
        });
        self.held_total -= expired.len();
        self.held_bytes -= expired.iter().map(|(_, h)| h.weight).sum::<usize>();
        // One notice per sender and name for what expired together (an offer
        // and its candidates), not one per message.
        let mut told: HashSet<(PeerId, Name)> = HashSet::new();
        for (name, h) in expired {
            if !told.insert((h.from, name.clone())) {
                continue;
            }
            if let Event::Signal { kind, .. } = h.event {
                let notice =
                    Event::Undeliverable { to: Target::Name(name), kind, mark: h.mark, reason: Undelivered::Expired };
                if self.peers.contains_key(&h.from) {
                    self.deliver(h.from, notice, out);
                }
            }
        }
    }
}

enum Delivered {
    Now,
    Queued,
    Full,
}

impl Hub {
    /// Whether the peer is away, waiting to resume.
    pub fn is_away(&self, id: PeerId) -> bool {
        self.peers.get(&id).is_some_and(|p| p.away.is_some())
    }
}
