//! Dialects: translators between one wire protocol and the hub.
//!
//! A dialect is a per-connection state machine ([`Protocol`]) that turns text
//! frames into hub commands and hub events into text frames. It never touches
//! a socket: the transport feeds it frames and sends what it leaves in
//! [`Ctx::out`]. Routing belongs to the hub; dialects only translate.

pub mod basic;
pub mod easyrtc;
pub mod flutter;
pub mod matchbox;
pub mod native;
pub mod offers;
pub mod one2one;
pub mod peerjs;
pub mod wire;

#[cfg(test)]
mod fuzz_easyrtc;
#[cfg(test)]
mod fuzz_input;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod matchbox_tests;
#[cfg(test)]
mod port_tests;

use std::borrow::Cow;
use std::time::Instant;

use crate::hub::{Command, Event, HubError, PeerId, Reply, SpaceId};
use crate::port::{HubPort, Pressure};

/// A close the dialect asks for: WebSocket close code and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// RFC 6455 close code.
    pub code: u16,
    /// Human-readable reason (at most 123 bytes on the wire).
    pub reason: Cow<'static, str>,
}

/// What a dialect may use while handling one input.
pub struct Ctx<'a> {
    /// The hub, through its port.
    pub hub: &'a dyn HubPort,
    /// The peer this connection speaks for.
    pub peer: PeerId,
    /// Its space.
    pub space: SpaceId,
    /// The time of this input (the transport's clock; the hub's time input).
    pub now: Instant,
    /// Frames to send on this connection, in order.
    pub out: &'a mut Vec<String>,
    /// Set to close the connection after `out` is sent.
    pub close: Option<Close>,
    /// Set with `close` when the peer said goodbye (no resume).
    pub goodbye: bool,
    /// Receivers this input's commands filled past their budget: the
    /// transport waits for them before it reads more from this client.
    pub pressure: Pressure,
}

impl<'a> Ctx<'a> {
    /// The context of one input from (or for) `peer` at `now`.
    pub fn new(hub: &'a dyn HubPort, peer: PeerId, space: SpaceId, now: Instant, out: &'a mut Vec<String>) -> Ctx<'a> {
        Ctx { hub, peer, space, now, out, close: None, goodbye: false, pressure: Pressure::default() }
    }

    /// Sends a command to the hub as this peer.
    pub fn dispatch(&mut self, cmd: Command) -> Result<Reply, HubError> {
        self.hub.dispatch(self.peer, cmd, self.now, &mut self.pressure)
    }

    /// Queues a frame for this connection.
    pub fn send(&mut self, frame: String) {
        self.out.push(frame);
    }

    /// Asks the transport to close after sending what is queued.
    pub fn close(&mut self, code: u16, reason: impl Into<Cow<'static, str>>) {
        self.close = Some(Close { code, reason: reason.into() });
    }
}

/// One connection's protocol state machine.
pub trait Protocol: Send + 'static {
    /// The connection is attached to the hub (greetings go here).
    fn opened(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A text frame arrived.
    fn received(&mut self, text: &str, ctx: &mut Ctx<'_>);

    /// The hub has an event for this peer.
    fn deliver(&mut self, event: Event, ctx: &mut Ctx<'_>);

    /// The connection is ending (before the hub is told).
    fn closing(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A frame telling the client the server is going down and to reconnect.
    fn shutdown_notice(&self) -> Option<String> {
        None
    }

    /// Whether a close frame from the client (with this close code, if any)
    /// means goodbye, so the peer is removed at once instead of waiting its
    /// resume grace. Default: any close frame is a goodbye.
    fn close_is_goodbye(&self, _code: Option<u16>) -> bool {
        true
    }
}

/// The wire protocols a listener can speak.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DialectKind {
    /// switchboard's own protocol and call app (`/ws`, `/`).
    Native,
    /// VertexChat's Flutter app (`{"type","data"}` over a WebSocket on any path).
    Flutter,
    /// The PeerJS server protocol, for the `peerjs` browser client.
    Peerjs,
    /// peterforgacs/web-rtc `basic/`: login/offer/answer/candidate/leave, WebSocket on any path.
    Basic,
    /// lotas/webrtc-signal-sample: register/call over a WebSocket at `/call`, app files via --static.
    #[serde(rename = "one2one")]
    #[value(name = "one2one")]
    One2one,
    /// Robert Bunch's socket.io v4 offer board (docs/dialects/offers.md).
    Offers,
    /// `matchbox_socket` games (bevy/ggrs): WebSocket at `/{room}[?next=N]`.
    Matchbox,
    /// The EasyRTC 1.1 server protocol, socket.io 1.x (docs/dialects/easyrtc.md).
    Easyrtc,
}

impl DialectKind {
    /// Whether the original system is served over HTTPS/WSS, so that the
    /// dialect's listener uses TLS by default.
    pub fn wants_tls(self) -> bool {
        match self {
            DialectKind::Native => false,
            // VertexChat's server is HTTPS/WSS only (`ssl/server.cert`).
            DialectKind::Flutter => true,
            // `peer` serves plain HTTP/ws unless given a certificate.
            DialectKind::Peerjs => false,
            // Both originals are plain HTTP/ws.
            DialectKind::Basic | DialectKind::One2one => false,
            // The original runs over HTTPS only (npm mkcert `cert.crt`/`cert.key`).
            DialectKind::Offers => true,
            // `matchbox_server` serves plain ws:// (TLS is left to a proxy).
            DialectKind::Matchbox => false,
            // EasyRTC's example server is plain HTTP.
            DialectKind::Easyrtc => false,
        }
    }

    /// Name used in logs, flags and config files.
    pub fn as_str(self) -> &'static str {
        match self {
            DialectKind::Native => "native",
            DialectKind::Flutter => "flutter",
            DialectKind::Peerjs => "peerjs",
            DialectKind::Basic => "basic",
            DialectKind::One2one => "one2one",
            DialectKind::Offers => "offers",
            DialectKind::Matchbox => "matchbox",
            DialectKind::Easyrtc => "easyrtc",
        }
    }

    /// Where a listener of this dialect listens when `--listen` is not
    /// given: the port of the original server its clients expect.
    pub fn default_listen(self) -> std::net::SocketAddr {
        let port = match self {
            DialectKind::Native => 8080,
            DialectKind::Flutter => 8086,
            // `peer`'s default port.
            DialectKind::Peerjs => 9000,
            DialectKind::Basic => 8888,
            DialectKind::One2one => 8000,
            DialectKind::Offers => 8181,
            // `matchbox_server`'s default (`0.0.0.0:3536`).
            DialectKind::Matchbox => 3536,
            // EasyRTC's example server (`server_example`, the demo system).
            DialectKind::Easyrtc => 8080,
        };
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }
}
