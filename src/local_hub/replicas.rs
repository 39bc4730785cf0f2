//! The cluster side of the local hub: replicas of other nodes' peers, what
//! this node tells the others, and what it does with what they tell it.
//!
//! A peer belongs to one node at a time (the one holding its connection, or
//! its resume queue). Every node replays what the others' peers do, so its
//! hub answers about them; events for another node's peer go to that node,
//! except presence and call events, which every node makes for its own
//! peers as it replays.

use rustc_hash::FxHashSet;

use super::*;
use crate::cluster::{Dest, Item, NodeId, Outgoing};

/// What the local hub keeps about the cluster.
#[derive(Debug)]
pub(super) struct Replicas {
    /// This node.
    pub(super) me: NodeId,
    /// Items for the publisher, in order.
    uplink: outbox::Sender<Outgoing, ()>,
    /// Live nodes, and when each was last heard.
    nodes: FxHashMap<NodeId, Instant>,
    /// Peers of other nodes, and their node.
    pub(super) homes: FxHashMap<PeerId, NodeId>,
    /// Whether Redis is reachable.
    connected: bool,
    /// When Redis last came back after being unreachable.
    back_at: Option<Instant>,
    /// When this node last read its own heartbeat back from Redis: proof
    /// that its own link works, without which others' silence proves nothing.
    self_heard: Instant,
    /// Receivers of other nodes whose outbox is over its budget: senders
    /// here wait before sending them more.
    valves: FxHashMap<PeerId, (outbox::Valve, Instant)>,
    /// This node's receivers over budget with what other nodes forwarded,
    /// and the nodes to tell when they have room again.
    full: FxHashMap<PeerId, Vec<NodeId>>,
    /// How long a node may be silent before it counts as dead.
    node_timeout: Duration,
}

/// How many node timeouts after Redis comes back nodes are given to
/// reconnect and speak before silence counts against them.
pub const SETTLE: u32 = 3;

/// Longest a sender waits for a receiver on another node to have room,
/// should the word that it has never come.
const VALVE_MAX: Duration = Duration::from_secs(5);

/// Events another node makes itself for its peers (presence, calls) are
/// not forwarded; signals and delivery failures are.
fn forwarded(event: &Event) -> bool {
    matches!(event, Event::Signal { .. } | Event::Undeliverable { .. })
}

impl Replicas {
    fn send(&self, dest: Dest, item: Item) {
        self.uplink.refill(std::iter::once(Outgoing { dest, item }));
    }

    /// Sends `item` to every live node, each on its own channel (so it stays
    /// in order with what else goes to that node).
    fn tell_all(&self, item: Item) {
        for node in self.nodes.keys() {
            self.send(Dest::Node(*node), item.clone());
        }
    }

    /// Live nodes (this one included), and whether Redis is reachable.
    pub(super) fn census(&self) -> (usize, bool) {
        (self.nodes.len() + 1, self.connected)
    }

    /// Whether `id` is a peer of another node.
    pub(super) fn is_replica(&self, id: PeerId) -> bool {
        self.homes.contains_key(&id)
    }
}

/// What became of a delivery to another node's peer.
pub(super) enum Forward {
    /// On its way (or not for forwarding).
    Done,
    /// On its way; the uplink is over its budget: the sender should wait.
    Over(outbox::Room),
    /// Refused: the sender is told why.
    Refused(Event, Undelivered),
    /// Not a replica: an ordinary local peer.
    Local,
}

impl LocalHub {
    /// Makes this hub node `me` of a cluster whose nodes count as dead after
    /// `node_timeout` of silence. Returns what the publisher sends, in order.
    pub fn join_cluster(&self, me: NodeId, node_timeout: Duration) -> outbox::Receiver<Outgoing, ()> {
        let (uplink, rx) = outbox::channel(self.shared.budget.clone());
        let mut st = self.lock();
        // Each node has ids of its own: 2^40 per node.
        st.hub.start_ids_after(me << 40);
        st.cluster = Some(Replicas {
            me,
            uplink,
            nodes: FxHashMap::default(),
            homes: FxHashMap::default(),
            connected: true,
            back_at: None,
            self_heard: clock::now(),
            node_timeout,
            valves: FxHashMap::default(),
            full: FxHashMap::default(),
        });
        rx
    }

    /// Sends a delivery for `to` to its node if it is another node's peer.
    pub(super) fn forward(st: &State, to: PeerId, event: Event, waits: bool) -> Forward {
        let Some(c) = &st.cluster else { return Forward::Local };
        let Some(node) = c.homes.get(&to) else { return Forward::Local };
        if !forwarded(&event) {
            return Forward::Done;
        }
        if !c.connected {
            return Forward::Refused(event, Undelivered::Unreachable);
        }
        let out = Outgoing { dest: Dest::Node(*node), item: Item::Deliver { to, event, waits } };
        let sent = if waits { c.uplink.try_send_waiting(out) } else { c.uplink.try_send(out) };
        match sent {
            // The receiver's node said its outbox is full: the sender waits.
            Ok(Fill::Under) => match c.valves.get(&to) {
                Some((valve, _)) if valve.is_closed() => Forward::Over(valve.room()),
                _ => Forward::Done,
            },
            Ok(Fill::Over) => Forward::Over(c.uplink.room()),
            Err(outbox::TrySendError::Full(o) | outbox::TrySendError::Closed(o)) => match o.item {
                Item::Deliver { event, .. } => Forward::Refused(event, Undelivered::Congested),
                _ => Forward::Done,
            },
        }
    }

    /// Asks the node of `peer`, if another node's, to probe its client
    /// (see [`LocalHub::probe`]). Whether it was another node's.
    pub(super) fn probe_elsewhere(st: &State, peer: PeerId, wait: Duration) -> bool {
        let Some(c) = &st.cluster else { return false };
        let Some(node) = c.homes.get(&peer) else { return false };
        c.send(Dest::Node(*node), Item::Probe { peer, wait_ms: wait.as_millis() as u64 });
        true
    }

    /// Tells the other nodes about one of this node's peers as it is now.
    pub(super) fn publish_peer(st: &State, id: PeerId) {
        if let Some(c) = &st.cluster
            && let Some(state) = st.hub.export(id)
        {
            c.tell_all(Item::Peer(state));
        }
    }

    /// Tells the other nodes a command one of this node's peers applied.
    pub(super) fn publish_cmd(st: &State, from: PeerId, cmd: Command, reply: &Reply) {
        if let Some(c) = &st.cluster {
            let call = match reply {
                Reply::Ringing { call } => Some(*call),
                _ => None,
            };
            c.tell_all(Item::Cmd { from, cmd, call });
        }
    }

    /// Tells the other nodes that one of this node's peers is away or gone,
    /// after its connection ended.
    pub(super) fn publish_left(st: &State, id: PeerId) {
        if let Some(c) = &st.cluster {
            c.tell_all(if st.hub.contains(id) { Item::Away(id) } else { Item::Gone(id) });
        }
    }

    /// Tells the other nodes that a peer is gone for good.
    pub(super) fn publish_gone(st: &State, id: PeerId) {
        if let Some(c) = &st.cluster {
            c.tell_all(Item::Gone(id));
        }
    }

    /// Tells the other nodes that `peer` is now this node's (it resumed
    /// here).
    pub(super) fn publish_moved(st: &mut State, peer: PeerId) {
        if let Some(c) = &mut st.cluster {
            c.homes.remove(&peer);
            st.hub.set_replica(peer, false);
            c.tell_all(Item::Moved { peer, node: c.me });
        }
    }

    /// What another node sent: replays its peers' doings, delivers events
    /// for this node's peers.
    pub fn apply(&self, from: NodeId, items: Vec<Item>, now: Instant) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(c) = &mut st.cluster else { return };
        if from == c.me {
            c.self_heard = now;
            return;
        }
        let known = c.nodes.insert(from, now).is_some();
        if !known {
            // New, or back after it was taken for dead: ask for its peers
            // (their restatement brings back those marked away meanwhile),
            // and tell it ours (it missed what they did meanwhile).
            tracing::info!(node = from, "a node joined (or came back)");
            c.send(Dest::Node(from), Item::Hello);
            Self::restate_to(st, Dest::Node(from));
        }
        let mut out = Vec::new();
        for item in items {
            self.apply_one(st, from, item, now, &mut out);
        }
        self.flush(st, &mut out, now);
    }

    fn apply_one(&self, st: &mut State, from: NodeId, item: Item, now: Instant, out: &mut Vec<Delivery>) {
        let Some(c) = &mut st.cluster else { return };
        match item {
            Item::Hello => {
                c.nodes.insert(from, now);
                Self::restate_to(st, Dest::Node(from));
            }
            Item::Peer(state) => {
                if st.outboxes.contains_key(&state.id) {
                    return;
                }
                let id = state.id;
                c.homes.insert(id, from);
                // Back after its node was taken for dead: what waited goes to it.
                let waiting = st.hub.mirror(state, now, out);
                out.extend(waiting.into_iter().map(|event| Delivery { to: id, event }));
            }
            Item::Census(ids) => {
                let listed: FxHashSet<PeerId> = ids.into_iter().collect();
                let gone: Vec<PeerId> =
                    c.homes.iter().filter(|(id, n)| **n == from && !listed.contains(id)).map(|(id, _)| *id).collect();
                for id in gone {
                    c.homes.remove(&id);
                    st.hub.disconnect(id, true, Vec::new(), now, out);
                }
            }
            Item::Cmd { from: peer, cmd, call } => {
                if c.is_replica(peer) {
                    let _ = st.hub.replay(peer, cmd, call, now, out);
                }
            }
            Item::Away(peer) => {
                if c.is_replica(peer) && !st.hub.is_away(peer) {
                    st.hub.disconnect(peer, false, Vec::new(), now, out);
                }
            }
            Item::Gone(peer) => {
                if c.homes.remove(&peer).is_some() || (!st.outboxes.contains_key(&peer) && st.hub.is_away(peer)) {
                    st.hub.disconnect(peer, true, Vec::new(), now, out);
                }
            }
            Item::Moved { peer, node } => {
                if node == c.me {
                    return;
                }
                if !st.hub.contains(peer) {
                    // Its replica is gone here (its grace ran out first):
                    // ask its node for it.
                    c.send(Dest::Node(node), Item::Hello);
                    return;
                }
                c.homes.insert(peer, node);
                st.hub.set_replica(peer, true);
                if let Some((valve, _)) = c.valves.remove(&peer) {
                    valve.open();
                }
                let mut waiting = Vec::new();
                if let Some(conn) = st.outboxes.remove(&peer) {
                    // It resumed elsewhere while connected here: this
                    // connection is done; what it had not written follows it.
                    conn.tx.alarm(KickReason::Replaced);
                    waiting = conn.tx.take_queued();
                    st.congested.remove(&peer);
                } else {
                    waiting.extend(st.hub.bring_back(peer, out));
                }
                out.extend(waiting.into_iter().map(|event| Delivery { to: peer, event }));
            }
            Item::Deliver { to, event, waits } => {
                // From a sender that waits: straight into a connected
                // receiver's outbox, past its budget if need be (the sender
                // was accepted on its own node), and the sender's node is told
                // to make it wait. Others go the way of any delivery: refused
                // at the outbox's hard bound, the sender told.
                let event = match st.outboxes.get(&to) {
                    Some(conn) if waits && !st.hub.is_away(to) => match conn.tx.try_send_waiting(event) {
                        Ok(Fill::Under) => return,
                        Ok(Fill::Over) => {
                            // Watched for a slow consumer, as any full outbox.
                            note_congested(&mut st.congested, to, &conn.tx.room(), now);
                            let nodes = c.full.entry(to).or_default();
                            let (told, first) = (nodes.contains(&from), nodes.is_empty());
                            if !told {
                                nodes.push(from);
                                c.send(Dest::Node(from), Item::Full(to));
                            }
                            if first {
                                let room = conn.tx.room();
                                let hub = self.clone();
                                tokio::spawn(async move {
                                    room.ready().await;
                                    hub.relieved(to);
                                });
                            }
                            return;
                        }
                        Err(outbox::TrySendError::Full(e) | outbox::TrySendError::Closed(e)) => e,
                    },
                    _ => event,
                };
                let about = match &event {
                    Event::Signal { from, kind, mark, .. } => Some((from.id, kind.clone(), mark.clone())),
                    _ => None,
                };
                let reason = match st.hub.deliver_routed(to, event, out) {
                    Ok(_) => return,
                    Err(HubError::QueueFull(_)) => Undelivered::Congested,
                    Err(_) => Undelivered::PeerGone,
                };
                if let Some((sender, kind, mark)) = about {
                    let event = Event::Undeliverable { to: Target::Id(to), kind, mark, reason };
                    out.push(Delivery { to: sender, event });
                }
            }
            Item::Adopt { peer, by, events } => {
                if by == c.me {
                    c.homes.remove(&peer);
                    st.hub.set_replica(peer, false);
                    st.hub.adopt(peer, events, now, out);
                } else {
                    c.homes.insert(peer, by);
                }
            }
            Item::Probe { peer, wait_ms } => {
                if st.outboxes.contains_key(&peer) {
                    // After the lock is released (it takes it).
                    let hub = self.clone();
                    let wait = Duration::from_millis(wait_ms.min(10_000));
                    tokio::spawn(async move { hub.probe_for_other_node(peer, wait, clock::now()) });
                }
            }
            Item::Full(peer) => {
                if c.homes.get(&peer) == Some(&from) {
                    c.valves.entry(peer).or_insert_with(|| (outbox::Valve::default(), now)).0.close();
                }
            }
            Item::Room(peer) => {
                if let Some((valve, _)) = c.valves.remove(&peer) {
                    valve.open();
                }
            }
            Item::Bye => {
                // Its away peers were handed over; any it still held are
                // away here now, as when a node dies.
                tracing::info!(node = from, "a node left the cluster");
                Self::node_dead(st, from, now, out);
            }
        }
    }

    /// A receiver of this node that other nodes filled has room again:
    /// their senders may go on.
    fn relieved(&self, peer: PeerId) {
        let mut st = self.lock();
        let Some(c) = &mut st.cluster else { return };
        for node in c.full.remove(&peer).unwrap_or_default() {
            c.send(Dest::Node(node), Item::Room(peer));
        }
    }

    /// The publisher found nobody reading `node`'s channel: the node is
    /// dead. What was on its way there goes back through the hub, in order
    /// (into its peers' resume queues, or to wherever they resumed).
    pub fn unreachable(&self, node: NodeId, returned: Vec<Outgoing>, now: Instant) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(c) = &mut st.cluster else { return };
        // What is still queued for that node goes back too, after these.
        let mut back = returned;
        let mut rest = Vec::new();
        for o in c.uplink.take_queued() {
            if o.dest == Dest::Node(node) { back.push(o) } else { rest.push(o) }
        }
        c.uplink.refill(rest);
        let mut out = Vec::new();
        if c.nodes.contains_key(&node) {
            tracing::warn!(node, "a node stopped reading its channel: its peers are away until they resume");
            Self::node_dead(st, node, now, &mut out);
        }
        for o in back {
            if let Item::Deliver { to, event, .. } = o.item {
                let _ = st.hub.deliver_routed(to, event, &mut out);
            }
        }
        self.flush(st, &mut out, now);
    }

    /// Every peer of a dead node is away here: its partners are told, and
    /// what comes for it waits until it resumes somewhere (or its grace ends).
    fn node_dead(st: &mut State, node: NodeId, now: Instant, out: &mut Vec<Delivery>) {
        let Some(c) = &mut st.cluster else { return };
        c.nodes.remove(&node);
        let peers: Vec<PeerId> = c.homes.iter().filter(|(_, n)| **n == node).map(|(id, _)| *id).collect();
        for id in &peers {
            if let Some((valve, _)) = c.valves.remove(id) {
                valve.open();
            }
        }
        for id in peers {
            if !st.hub.is_away(id) {
                st.hub.disconnect(id, false, Vec::new(), now, out);
            }
        }
    }

    /// Nodes silent for longer than the node timeout are dead (not while
    /// Redis itself is unreachable: then nobody hears anybody).
    pub(super) fn check_nodes(st: &mut State, now: Instant, out: &mut Vec<Delivery>) {
        let Some(c) = &st.cluster else { return };
        if !c.connected {
            return;
        }
        let timeout = c.node_timeout;
        // Just after Redis came back, nodes reconnect one after another, each
        // with its own backoff: silence is no sign of death yet.
        if c.back_at.is_some_and(|at| now.saturating_duration_since(at) < timeout * SETTLE) {
            return;
        }
        // Nor while this node does not hear itself: its own link is at fault.
        if now.saturating_duration_since(c.self_heard) > timeout / 2 {
            return;
        }
        let dead: Vec<NodeId> =
            c.nodes.iter().filter(|(_, t)| now.saturating_duration_since(**t) > timeout).map(|(n, _)| *n).collect();
        for node in dead {
            tracing::warn!(node, "no word from a node for {timeout:?}: its peers are away until they resume");
            Self::node_dead(st, node, now, out);
        }
    }

    /// After the hub's tick: forgets replicas whose grace ran out here (if
    /// the tick `removed` anyone), and opens valves that waited too long.
    pub(super) fn forget_gone(st: &mut State, removed: bool, now: Instant) {
        let Some(c) = &mut st.cluster else { return };
        let hub = &st.hub;
        if removed {
            c.homes.retain(|id, _| hub.contains(*id));
        }
        // A "Room" that never came (lost while Redis failed a publish) must
        // not hold senders for good: a valve opens by itself after a while.
        c.valves.retain(|id, (valve, since)| {
            let keep = hub.contains(*id) && now.saturating_duration_since(*since) < VALVE_MAX;
            if !keep {
                valve.open();
            }
            keep
        });
    }

    /// Redis went away (`false`) or came back (`true`). Back: every node is
    /// given time to speak again, and this node asks everyone for their
    /// peers and restates its own.
    pub fn redis_reachable(&self, up: bool, now: Instant) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(c) = &mut st.cluster else { return };
        if c.connected == up {
            return;
        }
        c.connected = up;
        // Nobody can say "room" now: nobody waits for it.
        for (_, (valve, _)) in c.valves.drain() {
            valve.open();
        }
        if !up {
            tracing::warn!("Redis is unreachable: peers of other nodes cannot be reached until it is back");
            return;
        }
        tracing::info!("Redis is reachable again: re-announcing this node's peers");
        c.back_at = Some(now);
        for t in c.nodes.values_mut() {
            *t = now;
        }
        c.send(Dest::All, Item::Hello);
        Self::restate_to(st, Dest::All);
    }

    /// This node's own peers (connected or away): every peer of its hub but
    /// the replicas.
    fn mine(st: &State) -> Vec<PeerId> {
        let homes = st.cluster.as_ref().map(|c| &c.homes);
        st.hub.ids().into_iter().filter(|id| homes.is_none_or(|h| !h.contains_key(id))).collect()
    }

    /// Sends `dest` every peer of this node as it is, then their list.
    fn restate_to(st: &State, dest: Dest) {
        let mine = Self::mine(st);
        let Some(c) = &st.cluster else { return };
        for id in &mine {
            if let Some(state) = st.hub.export(*id) {
                c.send(dest, Item::Peer(state));
            }
        }
        c.send(dest, Item::Census(mine));
    }

    /// Whether Redis is only coming back: this node has not seen it answer
    /// since it failed, or saw it come back less than `within` ago (other
    /// nodes may still be resubscribing).
    pub fn redis_settling(&self, within: Duration, now: Instant) -> bool {
        let st = self.lock();
        st.cluster
            .as_ref()
            .is_some_and(|c| !c.connected || c.back_at.is_some_and(|at| now.saturating_duration_since(at) < within))
    }

    /// Whether Redis is reachable (always, outside a cluster).
    pub fn redis_up(&self) -> bool {
        self.lock().cluster.as_ref().is_none_or(|c| c.connected)
    }

    /// Hands this node's away peers, and what waits for them, to another
    /// live node, then says goodbye: for a node shutting down. Returns how
    /// many peers were handed over (none when no other node is alive).
    pub fn hand_over_all(&self) -> usize {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mine = Self::mine(st);
        let Some(c) = &mut st.cluster else { return 0 };
        let Some(heir) = c.nodes.keys().min().copied() else { return 0 };
        let mut count = 0;
        for id in mine {
            let Some(events) = st.hub.hand_over(id) else { continue };
            count += 1;
            for node in c.nodes.keys() {
                let events = if *node == heir { events.clone() } else { Vec::new() };
                c.send(Dest::Node(*node), Item::Adopt { peer: id, by: heir, events });
            }
            c.homes.insert(id, heir);
        }
        c.send(Dest::All, Item::Bye);
        count
    }

    /// The highest node number this node knows of: live nodes, and nodes
    /// whose peers are still replicated here (dead, within their grace).
    pub fn highest_node(&self) -> NodeId {
        let st = self.lock();
        st.cluster.as_ref().map_or(0, |c| c.nodes.keys().chain(c.homes.values()).copied().max().unwrap_or(0).max(c.me))
    }

    /// Items waiting to be published.
    pub fn uplink_len(&self) -> usize {
        let st = self.lock();
        st.cluster.as_ref().map_or(0, |c| c.uplink.len())
    }

    /// What could not be published (Redis down): the sender of each signal
    /// is told it did not reach its peer.
    pub fn refuse_routed(&self, items: Vec<Outgoing>, _now: Instant) {
        let st = self.lock();
        for o in items {
            if let Item::Deliver { to, event, .. } = o.item {
                refused(&st, to, event, Undelivered::Unreachable);
            }
        }
    }

    /// Peers (connected or away) held by this node, and the names they
    /// hold, as Redis should record them (one look at the hub).
    pub fn own_peers_and_names(&self) -> (Vec<PeerId>, Vec<(SpaceId, Name, PeerId)>) {
        let st = self.lock();
        let mine = Self::mine(&st);
        let names = mine
            .iter()
            .filter_map(|id| st.hub.export(*id))
            .flat_map(|s| s.names.into_iter().map(move |n| (s.space, n, s.id)))
            .collect();
        (mine, names)
    }
}
