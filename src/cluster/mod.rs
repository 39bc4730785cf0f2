//! Scale-out: several nodes behave as one server, over Redis
//! (docs/cluster.md).
//!
//! Every node keeps a replica of every other node's peers in its own hub
//! (names, rooms, calls: what a dialect may ask about), so the hub port
//! answers the same on every node without a round trip. What a peer does
//! that others must see is sent to every node as it happens ([`Item`]);
//! an event for a peer of another node travels to that node's channel
//! only. Each node publishes through one Redis connection and reads its
//! channel through one, so what one node sends another arrives in order.
//!
//! - [`wire`]: what nodes tell each other, and its encoding (no I/O).
//! - [`link`]: the Redis side: joining, the publisher and subscriber
//!   tasks, leases, name claims, heartbeats.
//! - The hub side lives with the local hub (`local_hub::replicas`).

pub mod link;
pub mod wire;

pub use wire::{Item, NodeId};

/// Where an outgoing item goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// One node's channel.
    Node(NodeId),
    /// The cluster's channel, which every node reads (heartbeats, hello).
    All,
}

/// An item on its way out of this node.
#[derive(Debug)]
pub struct Outgoing {
    /// Where to.
    pub dest: Dest,
    /// What.
    pub item: Item,
}

impl crate::outbox::Weigh for Outgoing {
    fn weight(&self) -> usize {
        match &self.item {
            Item::Deliver { event, .. } => event.weight(),
            Item::Adopt { events, .. } => events.iter().map(crate::hub::Event::weight).sum::<usize>() + 64,
            _ => 128,
        }
    }
}
