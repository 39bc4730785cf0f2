//! The time the I/O side hands to the hub and the dialects as their `now`.
//!
//! Tokio's clock, so tests can pause and advance it
//! (`tokio::time::pause`/`advance`): ring timeouts, resume grace, held
//! messages and heartbeats are then tested without real waiting. Only the
//! I/O side (transports, the local hub's ticker) reads it; the hub and the
//! dialects take time as an input.

use std::time::Instant;

/// Now, by Tokio's (pausable) clock. Outside a runtime, the system clock.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}
