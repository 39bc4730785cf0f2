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
use crate::outbox::Room;

/// Receivers a sender's commands filled past their budget. The sender's
/// connection stops reading until each has room again: a burst costs the
/// one who sends it, never the one who receives it.
#[derive(Debug, Default)]
pub struct Pressure {
    rooms: Vec<Room>,
    /// Whether the sender's transport waits for the rooms (stops reading
    /// its client). One that cannot is refused at a receiver's hard bound.
    waits: bool,
}

impl Pressure {
    /// Pressure on a sender whose transport waits for room.
    pub fn waiting() -> Pressure {
        Pressure { rooms: Vec::new(), waits: true }
    }

    /// Whether the sender waits for room (see [`Pressure::waiting`]).
    pub fn waits(&self) -> bool {
        self.waits
    }

    /// Notes a receiver to wait for (once, however many events went to it).
    pub fn push(&mut self, room: Room) {
        if !self.rooms.iter().any(|r| r.same(&room)) {
            self.rooms.push(room);
        }
    }

    /// Whether there is nothing to wait for.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Waits until every noted receiver has room (or is gone), then forgets
    /// them.
    pub async fn relieved(&mut self) {
        while let Some(room) = self.rooms.last() {
            room.ready().await;
            self.rooms.pop();
        }
    }
}

/// What a dialect may ask of the hub.
pub trait HubPort: Send + Sync {
    /// Applies a command from `from` at `now` and sends what results;
    /// receivers it filled past their budget are added to `pressure`.
    fn dispatch(&self, from: PeerId, cmd: Command, now: Instant, pressure: &mut Pressure) -> Result<Reply, HubError>;

    /// The peer holding `name` in `space` (the first holder of a shared name).
    fn holder(&self, space: SpaceId, name: &str) -> Option<PeerId>;

    /// Members of a room of `space`, in join order.
    fn members(&self, space: SpaceId, room: &str) -> Vec<PeerInfo>;

    /// Non-empty rooms of `space` whose names start with `prefix`, with
    /// their member counts, sorted by name (a dialect's room list).
    fn rooms(&self, space: SpaceId, prefix: &str) -> Vec<(Name, usize)>;

    /// Every name held in `space`: peers in connect order, each peer's names
    /// in claim order.
    fn names(&self, space: SpaceId) -> Vec<Name>;

    /// Counters and gauges of this node.
    fn metrics(&self) -> &Metrics;
}
