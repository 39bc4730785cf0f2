//! The hub port: the one way a dialect reaches the hub.
//!
//! A dialect sends commands and asks a few named questions ("who holds this
//! name", "who is in this room", "which names are taken here"); it never
//! sees the hub's state. What answers stands behind this trait: today the
//! hub of this process ([`LocalHub`](crate::local_hub::LocalHub)); a
//! cluster-aware hub can answer the same questions for every node without a
//! dialect changing. Time is an input: callers pass `now`.

use std::time::Instant;

use crate::hub::{Command, HubError, Name, PeerId, PeerInfo, Reply, SpaceId};
use crate::metrics::Metrics;

/// What a dialect may ask of the hub.
pub trait HubPort: Send + Sync {
    /// Applies a command from `from` at `now` and sends what results.
    fn dispatch(&self, from: PeerId, cmd: Command, now: Instant) -> Result<Reply, HubError>;

    /// The peer holding `name` in `space` (the first holder of a shared name).
    fn holder(&self, space: SpaceId, name: &str) -> Option<PeerId>;

    /// Members of a room of `space`, in join order.
    fn members(&self, space: SpaceId, room: &str) -> Vec<PeerInfo>;

    /// Every name held in `space`: peers in connect order, each peer's names
    /// in claim order.
    fn names(&self, space: SpaceId) -> Vec<Name>;

    /// Counters and gauges of this node.
    fn metrics(&self) -> &Metrics;
}
