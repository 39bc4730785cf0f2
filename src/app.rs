//! `App`: what every request handler of one listener can reach. Its own
//! module so that the server (which builds it) and the routes and
//! transports (which use it) both import it without importing each other.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::Gate;
use crate::config::Config;
use crate::hub::SpaceId;
use crate::local_hub::LocalHub;

/// What every request handler of one listener can reach.
#[derive(Clone)]
pub struct App {
    /// The shared hub.
    pub hub: LocalHub,
    /// Process settings.
    pub config: Arc<Config>,
    /// This listener's namespace.
    pub space: SpaceId,
    /// Cancelled when the server shuts down; connections watch it.
    pub shutdown: CancellationToken,
    /// Connections per client address (shared by every listener).
    pub gate: Arc<Gate>,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
}
