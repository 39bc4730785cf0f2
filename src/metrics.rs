//! Process counters, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::hub::Census;

/// Counters updated on the hot path with relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    connections_total: AtomicU64,
    connections_open: AtomicI64,
    messages_relayed: AtomicU64,
    queue_drops: AtomicU64,
    refused: AtomicU64,
    resumes: AtomicU64,
    /// Errors by stable code; rare, so a mutex is fine.
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub(crate) fn peer_connected(&self) {
        self.connections_total.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }

    pub(crate) fn peer_disconnected(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }

    pub(crate) fn relayed(&self, n: usize) {
        self.messages_relayed.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn queue_drop(&self) {
        self.queue_drops.fetch_add(1, Relaxed);
    }

    pub(crate) fn delivery_refused(&self) {
        self.refused.fetch_add(1, Relaxed);
    }

    pub(crate) fn resumed(&self) {
        self.resumes.fetch_add(1, Relaxed);
        self.connections_total.fetch_add(1, Relaxed);
        self.connections_open.fetch_add(1, Relaxed);
    }

    /// Counts an error sent to a client, by its stable code.
    pub fn error(&self, code: &'static str) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        *errors.entry(code).or_default() += 1;
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> i64 {
        self.connections_open.load(Relaxed)
    }

    /// The Prometheus exposition text.
    pub fn render(&self, census: Census) -> String {
        let mut s = String::with_capacity(2048);
        let mut series = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                s,
                "# HELP switchboard_{name} {help}\n# TYPE switchboard_{name} {kind}\nswitchboard_{name} {value}"
            );
        };
        series("connections", "gauge", "Open client connections.", self.connections_open.load(Relaxed).to_string());
        series(
            "connections_total",
            "counter",
            "Client connections accepted (resumes included).",
            self.connections_total.load(Relaxed).to_string(),
        );
        series("peers", "gauge", "Peers connected or away (in a cluster: on every node).", census.peers.to_string());
        series("node_peers", "gauge", "Peers connected to or away from this node.", census.node_peers.to_string());
        if let Some((nodes, redis_up)) = census.cluster {
            series("cluster_nodes", "gauge", "Live nodes of the cluster, this one included.", nodes.to_string());
            series("redis_up", "gauge", "1 when the cluster's Redis is reachable.", u8::from(redis_up).to_string());
        }
        series("peers_away", "gauge", "Peers disconnected and waiting to resume.", census.away.to_string());
        series("rooms", "gauge", "Non-empty rooms (in a cluster: on every node).", census.rooms.to_string());
        series("calls", "gauge", "Calls ringing or in progress.", census.calls.to_string());
        series("held_messages", "gauge", "Messages held for ids not yet connected.", census.held.to_string());
        series(
            "messages_relayed_total",
            "counter",
            "Signals relayed to a peer.",
            self.messages_relayed.load(Relaxed).to_string(),
        );
        series(
            "queue_drops_total",
            "counter",
            "Connections dropped because their outbound queue stayed full with nothing read.",
            self.queue_drops.load(Relaxed).to_string(),
        );
        series(
            "deliveries_refused_total",
            "counter",
            "Events refused by an outbound queue at its bound (the sender is told).",
            self.refused.load(Relaxed).to_string(),
        );
        series("resumes_total", "counter", "Peers resumed with a token.", self.resumes.load(Relaxed).to_string());
        let queued = [("outbox", census.outbox_bytes), ("away", census.away_bytes), ("held", census.held_bytes)];
        let _ = writeln!(
            s,
            "# HELP switchboard_queued_bytes Bytes waiting: in outboxes, for away peers, held for absent ids.\n# TYPE switchboard_queued_bytes gauge"
        );
        for (queue, bytes) in queued {
            let _ = writeln!(s, "switchboard_queued_bytes{{queue=\"{queue}\"}} {bytes}");
        }
        let _ = writeln!(
            s,
            "# HELP switchboard_errors_total Errors sent to clients, by code.\n# TYPE switchboard_errors_total counter"
        );
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        for (code, n) in errors.iter() {
            let _ = writeln!(s, "switchboard_errors_total{{code=\"{code}\"}} {n}");
        }
        s
    }
}
