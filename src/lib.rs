//! switchboard: a WebRTC signaling server.
//!
//! # Layout
//! - [`hub`]: peers, names, rooms, calls and queues as a pure, synchronous
//!   state machine. No I/O, no wire format.
//! - [`handle`]: the hub behind one lock, plus each connection's bounded
//!   outbox; turns hub outputs into channel sends.
//! - [`dialect`]: one module per wire protocol, translating frames to hub
//!   commands and hub events to frames. No I/O.
//! - [`transport`]: sockets: the WebSocket connection loop and its limits;
//!   socket.io (via socketioxide) for the `offers` dialect; TLS.
//! - [`routes`]: HTTP routes per dialect (call app and `/ws` for native) and
//!   the operational ones (`/healthz`, `/metrics`, `--static`).
//! - [`server`]: listeners, lifecycle, graceful shutdown. [`config`]: settings.
//! - [`ice`]: the ICE servers clients are told about (TURN credentials minted
//!   per client); [`turn`]: TURN settings and the embedded STUN/TURN server.
//!
//! # Data path of one signal
//! socket → `transport::ws` → `Protocol::received` (parse) →
//! `HubHandle::dispatch` → `Hub::handle` (route) → outbox of the target →
//! its `transport::ws` loop → `Protocol::deliver` (encode) → its socket.

pub mod cert;
pub mod config;
pub mod dialect;
pub mod handle;
pub mod hub;
pub mod ice;
pub mod metrics;
pub mod outbox;
pub mod routes;
pub mod server;
pub mod transport;
pub mod turn;

pub use config::Config;
