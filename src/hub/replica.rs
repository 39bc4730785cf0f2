//! Replicas: peers held by other nodes of a cluster, kept here so that names,
//! rooms, presence and calls answer the same on every node.
//!
//! A replica is an ordinary peer of this hub without a connection here. Its
//! node sends what it does (claims, joins, rings...), and this hub replays
//! it: members here are told as for a local peer. Events for a replica are
//! for its own node to send; the I/O side decides which to forward.

use super::*;

/// Everything another node needs to stand in for a peer.
#[derive(Clone, Debug)]
pub struct PeerState {
    /// The peer.
    pub id: PeerId,
    /// Its space.
    pub space: SpaceId,
    /// Names held, in claim order.
    pub names: Vec<Name>,
    /// Rooms joined, in join order.
    pub rooms: Vec<Name>,
    /// Its presence profile.
    pub info: Option<Payload>,
    /// Its resume token.
    pub token: Option<Name>,
    /// Its keyed-claim key.
    pub key: Option<Name>,
    /// Grace and grant.
    pub opts: PeerOpts,
    /// Whether it is away, waiting to resume.
    pub away: bool,
}

impl Hub {
    /// Marks a peer as this node's own (it resumed here) or another node's.
    pub fn set_replica(&mut self, id: PeerId, replica: bool) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.replica = replica;
        }
    }

    /// The space of a peer, if it exists.
    pub fn space_of(&self, id: PeerId) -> Option<SpaceId> {
        self.peers.get(&id).map(|p| p.space)
    }

    /// How many peers there are (connected or away, replicas included).
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// Every peer's id (connected or away), in no particular order.
    pub fn ids(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }

    /// What another node needs to stand in for `id`.
    pub fn export(&self, id: PeerId) -> Option<PeerState> {
        let p = self.peers.get(&id)?;
        Some(PeerState {
            id,
            space: p.space,
            names: p.names.clone(),
            rooms: p.rooms.clone(),
            info: p.info.clone(),
            token: p.token.clone(),
            key: p.key.clone(),
            opts: p.opts.clone(),
            away: p.away.is_some(),
        })
    }

    /// Adds the replica of a peer of another node, or brings an existing
    /// one in line with `state`: names and rooms it no longer has are given
    /// up, new ones taken, and members here are told as for any peer.
    /// Returns what waited here for it if it was away and is back.
    pub fn mirror(&mut self, state: PeerState, now: Instant, out: &mut Vec<Delivery>) -> Vec<Event> {
        let id = state.id;
        if !self.peers.contains_key(&id) {
            if let Some(t) = &state.token {
                self.tokens.insert(t.clone(), id);
            }
            let peer = Peer {
                space: state.space,
                names: Vec::new(),
                rooms: Vec::new(),
                info: None,
                call: None,
                token: state.token.clone(),
                key: state.key.clone(),
                opts: state.opts.clone(),
                away: None,
                replica: true,
            };
            self.peers.insert(id, peer);
            *self.population.entry(state.space).or_default() += 1;
        }
        let (names, rooms) = match self.peers.get(&id) {
            Some(p) => (p.names.clone(), p.rooms.clone()),
            None => return Vec::new(),
        };
        for name in names.iter().filter(|n| !state.names.contains(n)) {
            self.release(id, state.space, name);
        }
        for name in state.names.iter().filter(|n| !names.contains(n)) {
            // Its node checked the claim; here it only takes its place
            // (shared, so a claim that raced another node's never fails).
            let _ = self.claim(id, state.space, name.clone(), false, out);
        }
        for room in rooms.iter().filter(|r| !state.rooms.contains(r)) {
            let _ = self.leave(id, state.space, room, out);
        }
        for room in state.rooms.iter().filter(|r| !rooms.contains(r)) {
            let _ = self.join(id, state.space, room.clone(), state.info.clone(), None, out);
        }
        let away = self.is_away(id);
        if state.away && !away {
            self.disconnect(id, false, Vec::new(), now, out);
        } else if !state.away && away {
            return self.bring_back(id, out);
        }
        Vec::new()
    }

    /// Replays a command a replica's node applied; `call` is the id its node
    /// gave a call it started. The reply went to the peer on its node.
    pub fn replay(
        &mut self,
        from: PeerId,
        cmd: Command,
        call: Option<CallId>,
        now: Instant,
        out: &mut Vec<Delivery>,
    ) -> Result<Reply, HubError> {
        match (cmd, call) {
            (Command::Ring { to, meta }, Some(call)) => {
                let space = self.peers.get(&from).map(|p| p.space).ok_or(HubError::UnknownPeer(Target::Id(from)))?;
                self.ring(from, space, to, meta, call, now, out)
            }
            (cmd, _) => self.handle(from, cmd, now, out),
        }
    }

    /// Delivers an event another node routed to `to`: now, or into its
    /// resume queue if it is away.
    pub fn deliver_routed(&mut self, to: PeerId, event: Event, out: &mut Vec<Delivery>) -> Result<Reply, HubError> {
        match self.deliver(to, event, out) {
            Delivered::Now => Ok(Reply::Sent),
            Delivered::Queued => Ok(Reply::Queued),
            Delivered::Full if self.peers.contains_key(&to) => Err(HubError::QueueFull(Target::Id(to))),
            Delivered::Full => Err(HubError::UnknownPeer(Target::Id(to))),
        }
    }

    /// Brings back an away peer that resumed on another node: its partner
    /// here is told, and what waited for it here is returned, in order.
    pub fn bring_back(&mut self, id: PeerId, out: &mut Vec<Delivery>) -> Vec<Event> {
        if !self.is_away(id) {
            return Vec::new();
        }
        self.resume_id(id, out).map(|(_, waiting)| waiting).unwrap_or_default()
    }

    /// Takes an away peer out for another node to hold: what waited for it,
    /// in order; nobody is told (it lives on, elsewhere). `None` if it is
    /// not away here.
    pub fn hand_over(&mut self, id: PeerId) -> Option<Vec<Event>> {
        let peer = self.peers.get_mut(&id)?;
        let away = peer.away.take()?;
        Some(Vec::from(unqueue(&mut self.away_bytes, away)))
    }

    /// Makes peer and call ids start after `base` (a cluster node's range;
    /// see [`Hub::with_id_base`]). Ids already given out stay as they are.
    pub fn start_ids_after(&mut self, base: u64) {
        self.next_peer = self.next_peer.max(base);
        self.next_call = self.next_call.max(base);
    }

    /// Takes over an away peer from a node that is leaving, with what waited
    /// for it there (ahead of what waits here). Its partner was told it is
    /// away already; it is not told again.
    pub fn adopt(&mut self, id: PeerId, events: Vec<Event>, now: Instant, out: &mut Vec<Delivery>) {
        match self.peers.get_mut(&id).and_then(|p| p.away.as_mut()) {
            Some(away) => self.away_bytes += away.prepend(events),
            None => self.disconnect(id, false, events, now, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: u64, names: &[&str], rooms: &[&str]) -> PeerState {
        PeerState {
            id: PeerId(id),
            space: SpaceId(1),
            names: names.iter().map(|n| Name::from(*n)).collect(),
            rooms: rooms.iter().map(|r| Name::from(*r)).collect(),
            info: None,
            token: Some(format!("t{id}").into()),
            key: None,
            opts: PeerOpts { grace: Duration::from_secs(30), grant: None },
            away: false,
        }
    }

    #[test]
    fn a_replica_answers_like_a_local_peer_and_its_presence_reaches_local_members() {
        let now = Instant::now();
        let mut hub = Hub::with_id_base(Limits::default(), 1 << 40);
        let mut out = Vec::new();
        let local = hub.connect(SpaceId(1), PeerOpts::default(), None);
        hub.handle(local, Command::Join { room: "r".into(), info: None, max: None }, now, &mut out).unwrap();
        assert_eq!(local, PeerId((1 << 40) + 1), "ids start after the node's base");

        hub.mirror(state(7, &["bob"], &["r"]), now, &mut out);
        assert_eq!(hub.lookup(SpaceId(1), "bob"), Some(PeerId(7)));
        assert_eq!(hub.members(SpaceId(1), "r").len(), 2);
        assert!(matches!(&out[..], [Delivery { to, event: Event::Joined { .. } }] if *to == local));
        out.clear();

        // A restatement without the room leaves it; without the name frees it.
        hub.mirror(state(7, &[], &[]), now, &mut out);
        assert_eq!(hub.lookup(SpaceId(1), "bob"), None);
        assert!(matches!(&out[..], [Delivery { to, event: Event::Left { .. } }] if *to == local));
        out.clear();

        // A ring replayed from the replica's node keeps that node's call id.
        let ring = Command::Ring { to: Target::Id(local), meta: None };
        let reply = hub.replay(PeerId(7), ring, Some(CallId(99)), now, &mut out).unwrap();
        assert_eq!(reply, Reply::Ringing { call: CallId(99) });
        assert_eq!(hub.call_of(local), Some(CallId(99)));
    }

    #[test]
    fn nothing_but_signals_waits_for_an_away_replica() {
        let now = Instant::now();
        let mut hub = Hub::new(Limits::default());
        let mut out = Vec::new();
        let local = hub.connect(SpaceId(1), PeerOpts::default(), None);
        hub.mirror(state(7, &[], &["r"]), now, &mut out);
        hub.mirror(PeerState { away: true, ..state(7, &[], &["r"]) }, now, &mut out);
        assert!(hub.is_away(PeerId(7)));
        hub.handle(local, Command::Join { room: "r".into(), info: None, max: None }, now, &mut out).unwrap();
        let signal = Command::Signal {
            to: Target::Id(PeerId(7)),
            kind: "offer".into(),
            payload: Payload::trusted("{}"),
            missing: Missing::Report,
            mark: None,
        };
        assert_eq!(hub.handle(local, signal, now, &mut out), Ok(Reply::Queued));
        let waiting = hub.bring_back(PeerId(7), &mut out);
        assert!(matches!(&waiting[..], [Event::Signal { .. }]), "only the signal waited: {waiting:?}");
    }
}
