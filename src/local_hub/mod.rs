//! `LocalHub`: the shared, locked [`Hub`] plus each connection's outbox.
//!
//! The only place where hub outputs meet channels. Every public method locks
//! once, applies the hub, pushes the resulting deliveries with `try_send`
//! (never awaiting under the lock) and returns.
//!
//! Flow control: outboxes are bounded in bytes ([`Flow`]). A delivery that
//! takes an outbox past its budget makes the *sender* wait (its connection
//! stops reading until the receiver has room: [`Pressure`]); a receiver is
//! closed as a slow consumer only when its outbox stays over budget with no
//! event taken for `slow_after`, and what it did not read waits for its
//! resume. An outbox at its hard bound refuses, and the sender is told.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::hub::{
    Command, Delivery, Event, Grant, Hub, HubError, Keyed, Limits, Name, PeerId, PeerInfo, PeerOpts, Reply, SpaceId,
    Target, Undelivered,
};
use crate::metrics::Metrics;
use crate::outbox;
use crate::outbox::{Budget, Fill};
use crate::port::{HubPort, Pressure};

mod replicas;

pub use replicas::SETTLE;

/// Why the server ends a connection on its own: the alarm of its outbox.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KickReason {
    /// The peer read too slowly and its outbox filled up.
    SlowConsumer,
    /// Another connection resumed this peer.
    Replaced,
    /// The server is shutting down: tell the client to reconnect.
    Shutdown,
}

/// A connection's outbox: hub events in order, and the order to close.
pub type Outbox = outbox::Receiver<Event, KickReason>;

/// When a connection last heard from its client. The connection updates it;
/// a contested keyed claim reads it to tell a live holder from a dead one.
#[derive(Clone, Debug, Default)]
pub struct Heard(Arc<AtomicU64>);

/// Time base of [`Heard`]: milliseconds since the first use.
fn clock_ms(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    at.saturating_duration_since(epoch).as_millis() as u64
}

impl Heard {
    fn new(now: Instant) -> Heard {
        Heard(Arc::new(AtomicU64::new(clock_ms(now))))
    }

    /// Records that something arrived at `now`.
    pub fn touch(&self, now: Instant) {
        self.0.store(clock_ms(now), Ordering::Relaxed);
    }

    /// Whether the client was heard at or after `at`.
    pub fn since(&self, at: Instant) -> bool {
        self.0.load(Ordering::Relaxed) >= clock_ms(at)
    }

    /// How long the client has been silent at `now`.
    pub fn silent_for(&self, now: Instant) -> Duration {
        Duration::from_millis(clock_ms(now).saturating_sub(self.0.load(Ordering::Relaxed)))
    }
}

/// What a connection holds once attached to the hub.
#[derive(Debug)]
pub struct Attachment {
    /// The peer this connection speaks for.
    pub peer: PeerId,
    /// The peer's space.
    pub space: SpaceId,
    /// Serial of this connection (a resumed peer gets a new one).
    pub conn: u64,
    /// Events for the peer, in order, and the server's order to close.
    pub rx: Outbox,
    /// Last time the client was heard; the connection keeps it current.
    pub heard: Heard,
    /// Token to resume with, if the peer is resumable.
    pub token: Option<Name>,
    /// Whether this is a resumed peer.
    pub resumed: bool,
}

/// A claim of a name under a key its client chose ([`LocalHub::attach_keyed`]).
#[derive(Clone, Debug)]
pub struct KeyedClaim {
    /// Options of the peer, if it is new.
    pub opts: PeerOpts,
    /// The name claimed.
    pub name: Name,
    /// The client's key: the same key takes the name over.
    pub key: Name,
    /// Most peers the space may hold, if limited.
    pub limit: Option<usize>,
    /// How long the holder's client may be silent before it counts as dead.
    pub dead_after: Duration,
}

/// What a new connection of a peer starts with (see [`LocalHub::take_over`]).
struct Handover {
    /// Token to resume with, if resumable.
    token: Option<Name>,
    /// Whether the peer was resumed.
    resumed: bool,
    /// What the hub kept for the peer while it was away.
    waiting: Vec<Event>,
}

#[derive(Debug)]
struct Connection {
    tx: outbox::Sender<Event, KickReason>,
    heard: Heard,
    conn: u64,
}

#[derive(Debug)]
struct State {
    hub: Hub,
    /// Keyed by server-assigned ids: a fast unkeyed hash is safe.
    outboxes: FxHashMap<PeerId, Connection>,
    next_conn: u64,
    /// Set by [`LocalHub::shutdown`]: new connections are told at once.
    closing: bool,
    /// Reused for each command's deliveries (no allocation per message).
    scratch: Vec<Delivery>,
    /// Peers whose outbox went over its budget: since when, and how many
    /// events their connection had taken then. One that takes none for
    /// `slow_after` while still over is a slow consumer (see [`LocalHub::tick`]).
    congested: FxHashMap<PeerId, (Instant, u64)>,
    /// Connections closed as slow that have not yet handed back what they
    /// were writing: a successor's outbox waits for that (see `take_over`).
    handback: FxHashMap<PeerId, Vec<u64>>,
    /// The cluster this node is part of, if any.
    cluster: Option<replicas::Replicas>,
}

#[derive(Debug)]
struct Shared {
    /// Std mutex: nothing awaits while holding it.
    state: Mutex<State>,
    metrics: Metrics,
    /// Bytes each outbox may hold (and all of them together).
    budget: Budget,
    /// How long an outbox may stay over its budget with no event taken
    /// before its connection is closed as a slow consumer.
    slow_after: Duration,
    /// Where exclusive names are claimed cluster-wide, in a cluster.
    registry: OnceLock<Arc<dyn NameRegistry>>,
}

/// Claims exclusive names for the whole cluster (Redis, in
/// `cluster::link`). Called without the hub's lock held; may block briefly.
pub trait NameRegistry: Send + Sync + std::fmt::Debug {
    /// Claims `name` of `space` for `peer`: `Some(true)` taken, `Some(false)`
    /// held by a live peer elsewhere, `None` the registry cannot be asked
    /// now (the claim then rests on this node's view alone).
    fn claim(&self, space: SpaceId, name: &str, peer: PeerId) -> Option<bool>;
}

/// How [`LocalHub`] bounds what waits for connections.
#[derive(Clone, Debug)]
pub struct Flow {
    /// Bytes per outbox, and in all outboxes together.
    pub budget: Budget,
    /// How long a full outbox may make no progress before its connection
    /// counts as a slow consumer.
    pub slow_after: Duration,
}

impl Default for Flow {
    fn default() -> Self {
        Flow { budget: Budget::per_queue(1 << 20), slow_after: Duration::from_secs(10) }
    }
}

/// Cheap-to-clone handle on the hub, shared by every connection.
#[derive(Clone, Debug)]
pub struct LocalHub {
    shared: Arc<Shared>,
}

impl LocalHub {
    /// A handle on a fresh hub.
    pub fn new(limits: Limits, flow: Flow) -> LocalHub {
        let state = State {
            hub: Hub::new(limits),
            outboxes: FxHashMap::default(),
            next_conn: 0,
            closing: false,
            scratch: Vec::new(),
            congested: FxHashMap::default(),
            handback: FxHashMap::default(),
            cluster: None,
        };
        let shared = Shared {
            state: Mutex::new(state),
            metrics: Metrics::default(),
            budget: flow.budget,
            slow_after: flow.slow_after,
            registry: OnceLock::new(),
        };
        LocalHub { shared: Arc::new(shared) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while locked cannot leave the maps half-updated in a way
        // that matters more than stopping the whole server would.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counters and gauges.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Connects a new peer; `resumable` peers get a token and `opts.grace`.
    pub fn attach(&self, space: SpaceId, opts: PeerOpts, resumable: bool, now: Instant) -> Attachment {
        let token: Option<Name> = resumable.then(|| new_token().into());
        let mut st = self.lock();
        let peer = st.hub.connect(space, opts, token.clone());
        let att = self.take_over(&mut st, peer, space, Handover { token, resumed: false, waiting: Vec::new() }, now);
        Self::publish_peer(&st, peer);
        self.shared.metrics.peer_connected();
        att
    }

    /// Gives `peer` a new connection (a new peer its first one) whose outbox
    /// starts with, in order, what its current connection (if any) has not
    /// written yet, then `waiting` (what the hub kept while it was away).
    /// The current connection is kicked; what it was still writing comes back
    /// when it detaches and goes first: until then the new outbox is held, so
    /// nothing overtakes it.
    fn take_over(&self, st: &mut State, peer: PeerId, space: SpaceId, handover: Handover, now: Instant) -> Attachment {
        let Handover { token, resumed, waiting } = handover;
        let old = st.outboxes.remove(&peer);
        let earlier = old.as_ref().map(|o| o.tx.take_queued()).unwrap_or_default();
        let (tx, rx) = outbox::channel(self.shared.budget.clone());
        if st.closing {
            tx.alarm(KickReason::Shutdown);
        }
        // One hold per earlier connection that has yet to give back what it
        // was writing: the replaced one, and any closed as slow.
        let pending = usize::from(old.is_some()) + st.handback.get(&peer).map_or(0, Vec::len);
        for _ in 0..pending {
            tx.hold();
        }
        // A new outbox starts with no congestion of its own.
        st.congested.remove(&peer);
        st.next_conn += 1;
        let heard = Heard::new(now);
        let conn = Connection { tx, heard: heard.clone(), conn: st.next_conn };
        let att = Attachment { peer, space, conn: conn.conn, rx, heard, token, resumed };
        // Both were accepted once (each bounded): the new outbox takes all.
        conn.tx.refill(earlier.into_iter().chain(waiting));
        st.outboxes.insert(peer, conn);
        if let Some(old) = old {
            old.tx.alarm(KickReason::Replaced);
        }
        att
    }

    /// Tells every connection, and any attached from now on, that the
    /// server is shutting down.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.closing = true;
        for c in st.outboxes.values() {
            c.tx.alarm(KickReason::Shutdown);
        }
    }

    /// Resumes an away (or still connected) peer of `space` by token, for
    /// a connection whose access token grants `grant` (see [`Hub::resume`]).
    /// The new connection first receives, in order, everything that waited
    /// for the peer.
    pub fn resume(
        &self,
        space: SpaceId,
        token: &str,
        grant: Option<Grant>,
        now: Instant,
    ) -> Result<Attachment, HubError> {
        let mut st = self.lock();
        let mut out = Vec::new();
        let (peer, waiting) = st.hub.resume(space, token, grant, &mut out)?;
        let handover = Handover { token: Some(Name::from(token)), resumed: true, waiting };
        let att = self.take_over(&mut st, peer, space, handover, now);
        Self::publish_moved(&mut st, peer);
        self.shared.metrics.resumed();
        self.flush(&mut st, &mut out, now);
        Ok(att)
    }

    /// Connects a connection that claims `name` under a key its client chose
    /// (see [`Hub::connect_keyed`]). The holder's connection counts as dead
    /// when its client has been silent for longer than `dead_after`; a
    /// replaced or taken-over connection is kicked. The new connection first
    /// receives, in order, everything that waited for the name's holder.
    pub fn attach_keyed(&self, space: SpaceId, claim: KeyedClaim, now: Instant) -> Result<Attachment, HubError> {
        let KeyedClaim { opts, name, key, limit, dead_after } = claim;
        if !self.claim_cluster_wide(None, Some(space), &name) {
            return Err(HubError::NameTaken(name));
        }
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut out = Vec::new();
        let outboxes = &st.outboxes;
        // Another node's peer is alive as long as its node says so.
        let replica = |p: PeerId| st.cluster.as_ref().is_some_and(|c| c.is_replica(p));
        let dead = |p: PeerId| !replica(p) && outboxes.get(&p).is_none_or(|o| o.heard.silent_for(now) > dead_after);
        let keyed = st.hub.connect_keyed(space, opts, name, key, limit, dead, &mut out)?;
        let (peer, waiting, resumed, replaced) = match keyed {
            Keyed::New(peer) => (peer, Vec::new(), false, None),
            Keyed::Resumed(peer, waiting) => (peer, waiting, true, None),
            Keyed::Replaced { peer, old, waiting } => {
                // What the replaced connection never wrote goes first.
                let mut first = Vec::new();
                if let Some(o) = st.outboxes.remove(&old) {
                    o.tx.alarm(KickReason::Replaced);
                    first = o.tx.take_queued();
                }
                first.extend(waiting);
                (peer, first, false, Some(old))
            }
        };
        let att = self.take_over(st, peer, space, Handover { token: None, resumed, waiting }, now);
        if resumed {
            Self::publish_moved(st, peer);
        } else {
            if let Some(c) = &mut st.cluster
                && let Some(old) = replaced
            {
                c.homes.remove(&old);
            }
            if let Some(old) = replaced {
                Self::publish_gone(st, old);
            }
            Self::publish_peer(st, peer);
        }
        if resumed {
            self.shared.metrics.resumed();
        } else {
            self.shared.metrics.peer_connected();
        }
        self.flush(st, &mut out, now);
        Ok(att)
    }

    /// Asks the connection of the peer holding `name` in `space` to check
    /// that its client is still there (a WebSocket ping); returns when the
    /// client was last heard, to compare after a while. `None` when no
    /// connected peer holds the name. A holder on another node is probed by
    /// its node, which drops its connection if the client stays silent for
    /// `wait`: the holder then shows as away here; the returned `Heard`
    /// never changes.
    pub fn probe(&self, space: SpaceId, name: &str, wait: Duration) -> Option<Heard> {
        let st = self.lock();
        let holder = st.hub.lookup(space, name)?;
        if Self::probe_elsewhere(&st, holder, wait) {
            return Some(Heard::default());
        }
        let conn = st.outboxes.get(&holder)?;
        conn.tx.probe();
        Some(conn.heard.clone())
    }

    /// Pings the client of one of this node's peers, asked by another node,
    /// and drops its connection (as replaced) if it stays silent for `wait`.
    pub(crate) fn probe_for_other_node(&self, peer: PeerId, wait: Duration, now: Instant) {
        let st = self.lock();
        let Some(conn) = st.outboxes.get(&peer) else { return };
        conn.tx.probe();
        let (heard, serial) = (conn.heard.clone(), conn.conn);
        drop(st);
        let hub = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if heard.since(now) {
                return;
            }
            let st = hub.lock();
            if let Some(conn) = st.outboxes.get(&peer).filter(|c| c.conn == serial) {
                tracing::info!(%peer, "silent when probed for another node: dropping its connection");
                conn.tx.alarm(KickReason::Replaced);
            }
        });
    }

    /// Sets where exclusive names are claimed cluster-wide.
    pub fn set_registry(&self, registry: Arc<dyn NameRegistry>) {
        let _ = self.shared.registry.set(registry);
    }

    /// In a cluster, claims a name nobody here holds in the cluster's
    /// registry first: `false` when a peer of another node holds it.
    fn claim_cluster_wide(&self, peer: Option<PeerId>, space: Option<SpaceId>, name: &str) -> bool {
        let Some(registry) = self.shared.registry.get() else { return true };
        let (space, free) = {
            let st = self.lock();
            let space = space.or_else(|| peer.and_then(|p| st.hub.space_of(p)));
            let Some(space) = space else { return true };
            (space, st.hub.lookup(space, name).is_none())
        };
        // Held here already (replicas included): the hub decides.
        if !free {
            return true;
        }
        // A keyed claim's peer does not exist yet: its node's id range
        // stands for it until the name is restated with the peer's id.
        registry.claim(space, name, peer.unwrap_or(PeerId(0))) != Some(false)
    }

    /// Applies a command from `from` and sends what results.
    pub fn dispatch(
        &self,
        from: PeerId,
        cmd: Command,
        now: Instant,
        pressure: &mut Pressure,
    ) -> Result<Reply, HubError> {
        if let Command::Claim { name, exclusive: true } = &cmd
            && !self.claim_cluster_wide(Some(from), None, name)
        {
            self.shared.metrics.error("name_taken");
            return Err(HubError::NameTaken(name.clone()));
        }
        let relay = matches!(cmd, Command::Signal { .. } | Command::Broadcast { .. });
        let mut st = self.lock();
        let mut out = std::mem::take(&mut st.scratch);
        // What others must replay goes to the other nodes (relays do not).
        let replayed = (!relay && st.cluster.is_some()).then(|| cmd.clone());
        let reply = st.hub.handle(from, cmd, now, &mut out);
        if relay {
            self.shared.metrics.relayed(out.len());
        }
        if let (Some(cmd), Ok(r)) = (replayed, &reply) {
            Self::publish_cmd(&st, from, cmd, r);
        }
        self.flush_from(&mut st, &mut out, now, Some(pressure));
        st.scratch = out;
        drop(st);
        if let Err(e) = &reply {
            self.shared.metrics.error(e.code());
        }
        reply
    }

    /// Numbers for metrics: the hub's census and the bytes in outboxes.
    pub fn census(&self) -> crate::hub::Census {
        let st = self.lock();
        let census = st.hub.census();
        let (node_peers, cluster) = match &st.cluster {
            Some(c) => (census.peers.saturating_sub(c.homes.len()), Some(c.census())),
            None => (census.peers, None),
        };
        crate::hub::Census { outbox_bytes: self.shared.budget.total.used(), node_peers, cluster, ..census }
    }

    /// Reads hub state, for inspection (metrics, tests). Dialects ask
    /// through the [`HubPort`] instead.
    pub fn read<R>(&self, f: impl FnOnce(&Hub) -> R) -> R {
        f(&self.lock().hub)
    }

    /// A connection ended. `clean`: the peer said goodbye (no resume).
    /// `unsent`: events drained from its outbox that were never written.
    pub fn detach(&self, peer: PeerId, conn: u64, clean: bool, unsent: Vec<Event>, now: Instant) {
        let mut st = self.lock();
        let mut out = Vec::new();
        if let Some(conns) = st.handback.get_mut(&peer) {
            conns.retain(|c| *c != conn);
            if conns.is_empty() {
                st.handback.remove(&peer);
            }
        }
        let replica = st.cluster.as_ref().is_some_and(|c| c.is_replica(peer));
        match st.outboxes.get(&peer).map(|o| o.conn) {
            Some(c) if c == conn => {
                st.outboxes.remove(&peer);
                st.hub.disconnect(peer, clean, unsent, now, &mut out);
                Self::publish_left(&st, peer);
            }
            Some(_) => {
                // Taken over by a newer connection: the leftovers go first.
                if let Some(newer) = st.outboxes.get(&peer) {
                    newer.tx.release(unsent);
                }
            }
            // It resumed on another node: what it did not write follows it.
            None if replica => out.extend(unsent.into_iter().map(|event| Delivery { to: peer, event })),
            None => {
                st.hub.disconnect(peer, clean, unsent, now, &mut out);
                Self::publish_left(&st, peer);
            }
        }
        self.shared.metrics.peer_disconnected();
        self.flush(&mut st, &mut out, now);
    }

    /// Advances hub time (ring timeouts, resume grace, held-signal expiry).
    pub fn tick(&self, now: Instant) {
        let mut st = self.lock();
        let mut out = Vec::new();
        Self::check_nodes(&mut st, now, &mut out);
        let before = st.hub.peer_count();
        st.hub.tick(now, &mut out);
        let removed = before > st.hub.peer_count();
        Self::forget_gone(&mut st, removed, now);
        self.flush(&mut st, &mut out, now);
        self.find_slow_consumers(&mut st, now);
    }

    /// Ticks every `every` until cancelled.
    pub fn spawn_ticker(&self, every: Duration, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = interval.tick() => hub.tick(clock::now()),
                    _ = stop.cancelled() => return,
                }
            }
        })
    }

    /// Pushes deliveries into outboxes (see [`Self::flush_from`]).
    fn flush(&self, st: &mut State, out: &mut Vec<Delivery>, now: Instant) {
        self.flush_from(st, out, now, None);
    }

    /// Pushes deliveries into outboxes. An outbox past its budget is noted
    /// as congested, and `pressure` (the sender's, when a sender's command
    /// made these) learns to wait for it: the burst costs the sender. An
    /// outbox at its hard bound refuses: the sender of a refused signal is
    /// told, the receiver keeps its connection. A closed outbox makes its
    /// peer away, which may produce further deliveries.
    fn flush_from(&self, st: &mut State, out: &mut Vec<Delivery>, now: Instant, mut pressure: Option<&mut Pressure>) {
        let mut more = Vec::new();
        loop {
            let waits = pressure.as_deref().is_some_and(Pressure::waits);
            for Delivery { to, event } in out.drain(..) {
                let Some(outbox) = st.outboxes.get(&to) else {
                    match Self::forward(st, to, event, waits) {
                        replicas::Forward::Over(room) => {
                            if let Some(p) = pressure.as_deref_mut() {
                                p.push(room);
                            }
                        }
                        replicas::Forward::Refused(e, reason) => {
                            self.shared.metrics.delivery_refused();
                            refused(st, to, e, reason);
                        }
                        replicas::Forward::Done | replicas::Forward::Local => {}
                    }
                    continue;
                };
                let sent = if waits { outbox.tx.try_send_waiting(event) } else { outbox.tx.try_send(event) };
                let event = match sent {
                    Ok(Fill::Under) => continue,
                    Ok(Fill::Over) => {
                        let room = outbox.tx.room();
                        if let Some(p) = pressure.as_deref_mut() {
                            p.push(room.clone());
                        }
                        note_congested(&mut st.congested, to, &room, now);
                        continue;
                    }
                    Err(outbox::TrySendError::Full(e)) => {
                        self.shared.metrics.delivery_refused();
                        tracing::debug!(peer = %to, "outbox at its bound: delivery refused, sender told");
                        match refusal_notice(to, e, Undelivered::Congested) {
                            // A sender of this node hears at once (if it has room).
                            Some(n) if st.outboxes.contains_key(&n.to) => refused_local(st, n),
                            // One of another node's hears through its node.
                            Some(n) => more.push(n),
                            None => {}
                        }
                        continue;
                    }
                    Err(outbox::TrySendError::Closed(e)) => e,
                };
                st.outboxes.remove(&to);
                st.congested.remove(&to);
                st.hub.disconnect(to, false, vec![event], now, &mut more);
                Self::publish_left(st, to);
            }
            if more.is_empty() {
                return;
            }
            out.append(&mut more);
        }
    }

    /// Closes the connections whose outbox stayed over its budget with no
    /// event taken for `slow_after`: only a reader that makes no progress is
    /// slow, not one a burst filled. The peer is away at once (what comes
    /// for it now waits in its resume queue, after what its connection hands
    /// back when it ends).
    fn find_slow_consumers(&self, st: &mut State, now: Instant) {
        let slow_after = self.shared.slow_after;
        let outboxes = &st.outboxes;
        let mut slow = Vec::new();
        st.congested.retain(|peer, (since, taken)| {
            let Some(outbox) = outboxes.get(peer) else { return false };
            let (over, progress) = outbox.tx.room().progress();
            if !over {
                return false;
            }
            if progress != *taken {
                (*since, *taken) = (now, progress);
                return true;
            }
            if now.saturating_duration_since(*since) < slow_after {
                return true;
            }
            slow.push(*peer);
            false
        });
        let mut out = Vec::new();
        for peer in slow {
            tracing::warn!(%peer, "outbox full and not read for {slow_after:?}: closing the slow consumer");
            self.shared.metrics.queue_drop();
            let Some(outbox) = st.outboxes.remove(&peer) else { continue };
            outbox.tx.alarm(KickReason::SlowConsumer);
            // What it never started writing waits for the resume now; what it
            // was writing comes back when its connection ends, and goes first.
            let unsent = outbox.tx.take_queued();
            st.handback.entry(peer).or_default().push(outbox.conn);
            st.hub.disconnect(peer, false, unsent, now, &mut out);
            Self::publish_left(st, peer);
        }
        self.flush(st, &mut out, now);
    }
}

/// Notes that `to`'s outbox went over its budget at `now`, unless noted
/// already: [`LocalHub::find_slow_consumers`] watches it from then on.
fn note_congested(congested: &mut FxHashMap<PeerId, (Instant, u64)>, to: PeerId, room: &outbox::Room, now: Instant) {
    congested.entry(to).or_insert_with(|| (now, room.progress().1));
}

/// A delivery an outbox refused: a signal's sender hears that it was not
/// delivered (if its own outbox has room for the notice).
fn refused(st: &State, to: PeerId, event: Event, reason: Undelivered) {
    if let Some(Delivery { to, event }) = refusal_notice(to, event, reason)
        && let Some(sender) = st.outboxes.get(&to)
    {
        let _ = sender.tx.try_send(event);
    }
}

/// Puts a refusal notice in its (local) sender's outbox, if it has room.
fn refused_local(st: &State, notice: Delivery) {
    if let Some(sender) = st.outboxes.get(&notice.to) {
        let _ = sender.tx.try_send(notice.event);
    }
}

/// The notice to a refused signal's sender, wherever it is (another node's
/// peer hears it through its node).
fn refusal_notice(to: PeerId, event: Event, reason: Undelivered) -> Option<Delivery> {
    let Event::Signal { from, kind, mark, .. } = event else { return None };
    Some(Delivery { to: from.id, event: Event::Undeliverable { to: Target::Id(to), kind, mark, reason } })
}

impl outbox::Weigh for Event {
    fn weight(&self) -> usize {
        self.weight()
    }
}

impl HubPort for LocalHub {
    fn dispatch(&self, from: PeerId, cmd: Command, now: Instant, pressure: &mut Pressure) -> Result<Reply, HubError> {
        LocalHub::dispatch(self, from, cmd, now, pressure)
    }

    fn holder(&self, space: SpaceId, name: &str) -> Option<PeerId> {
        self.lock().hub.lookup(space, name)
    }

    fn members(&self, space: SpaceId, room: &str) -> Vec<PeerInfo> {
        self.lock().hub.members(space, room)
    }

    fn rooms(&self, space: SpaceId, prefix: &str) -> Vec<(Name, usize)> {
        self.lock().hub.rooms_under(space, prefix)
    }

    fn names(&self, space: SpaceId) -> Vec<Name> {
        self.lock().hub.names_in(space)
    }

    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }
}

/// 128 random bits, hex: unguessable, URL- and JSON-safe.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
