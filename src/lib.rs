//! switchboard: a WebRTC signaling server.
//!
//! # Layout
//! - [`hub`]: peers, names, rooms, calls and queues as a pure, synchronous
//!   state machine. No I/O, no wire format; time is an input.
//! - [`port`]: the hub port, `HubPort`, the one way a dialect reaches the
//!   hub: dispatch a command, and a few named questions (who holds a name,
//!   who is in a room, which names are taken). Dialects never see hub state.
//! - [`local_hub`]: `LocalHub`, this process's hub behind one lock plus each
//!   connection's bounded [`outbox`]; implements the port and turns hub
//!   outputs into outbox sends. In a cluster it also keeps replicas of the
//!   other nodes' peers and forwards their signals (`local_hub::replicas`).
//! - [`cluster`]: several nodes as one over Redis: what nodes tell each
//!   other ([`cluster::wire`], no I/O) and the Redis side
//!   ([`cluster::link`]); docs/cluster.md.
//! - [`dialect`]: one module per wire protocol, all of that protocol in it
//!   (registration, events, quirks, refusal frames), translating frames to
//!   hub commands and hub events to frames. No I/O. Shared wire helpers in
//!   [`dialect::wire`]; specifications in `docs/dialects/`.
//! - [`admission`]: the one decision whether a request may enter (every
//!   WebSocket, the socket.io handshake, HTTP endpoints that reveal state),
//!   including the access token when authentication is on ([`auth`]: JWT
//!   verification and minting). The token's identity becomes the peer's
//!   grant, which the hub enforces on every name and room claim.
//! - [`transport`]: sockets: the WebSocket upgrade and connection loop with
//!   the limits every dialect shares; socket.io (via socketioxide) for the
//!   `offers` dialect (socket.io 4) and the `easyrtc` dialect (socket.io
//!   1.x, Engine.IO 3); TLS. Moves frames, enforces limits, no protocol.
//! - [`routes`]: map URLs to dialects (through admission), plus the
//!   operational routes (`/healthz`, `/metrics`, `--static`).
//! - [`app`]: what every route of a listener can reach; [`server`]:
//!   listeners, lifecycle, graceful shutdown; [`config`]: settings;
//!   [`clock`]: the (pausable) time the I/O side hands in.
//! - [`ice`]: the ICE servers clients are told about (TURN credentials minted
//!   per client); [`turn`]: TURN settings and the embedded STUN/TURN server.
//!
//! # Data path of one signal
//! socket → transport (`transport::ws` reads a frame, checks size and rate)
//! → dialect (`Protocol::received` parses it into a `Command`) → hub port
//! (`HubPort::dispatch`) → hub (`Hub::handle` routes it to a `Delivery`)
//! → outbox of the target (`LocalHub::flush`) → transport (the target's
//! connection loop takes the event) → dialect (`Protocol::deliver` encodes
//! it) → socket.

pub mod admission;
pub mod app;
pub mod auth;
pub mod cert;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dialect;
pub mod hub;
pub mod ice;
pub mod local_hub;
pub mod metrics;
pub mod outbox;
pub mod port;
pub mod routes;
pub mod server;
pub mod transport;
pub mod turn;

pub use config::Config;
