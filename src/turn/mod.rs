//! TURN: the settings of minted credentials ([`config`]), and the embedded
//! STUN/TURN server (`--turn-listen`), built on the `turn` crate (webrtc-rs):
//! [`auth`] checks REST credentials, [`guard`] screens requests for what the
//! crate has no hook for (peer addresses, quota), [`relay`] makes the relay
//! sockets, [`peers`] says which peers are allowed.
//!
//! This module must not decide what clients are told about ICE servers
//! beyond filling in the embedded server's URLs; that stays in [`crate::ice`].

pub mod auth;
pub mod config;
pub mod guard;
pub mod peers;
pub mod relay;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;
use tracing::{info, warn};
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};

use crate::config::Config;
use auth::RestAuth;
use guard::Guard;
use relay::{Allocations, RelayGen};

/// A running embedded TURN server.
pub struct Embedded {
    server: Server,
    /// The bound UDP address.
    pub addr: SocketAddr,
}

impl Embedded {
    /// Stops the server: its listener and every allocation.
    pub async fn stop(self) {
        if let Err(e) = self.server.close().await {
            warn!(error = %e, "TURN server did not close cleanly");
        }
        info!(addr = %self.addr, "TURN server stopped");
    }
}

/// Starts the embedded server if `config.turn` asks for one, and fills in the
/// URLs clients are handed when it is advertised.
pub async fn start(config: &mut Config) -> anyhow::Result<Option<Embedded>> {
    let Some(t) = config.turn.clone() else {
        return Ok(None);
    };
    let socket = UdpSocket::bind(t.listen).await.with_context(|| {
        format!(
            "cannot listen for TURN on udp {}: is another TURN server running? Choose another with --turn-listen",
            t.listen
        )
    })?;
    let addr = socket.local_addr()?;
    let auth = Arc::new(RestAuth::new(t.secret.clone()));
    let allocations = Arc::new(Allocations::new(t.max_allocations));
    let relay = RelayGen {
        bind_ip: addr.ip(),
        public_ip: t.public_ip,
        ports: t.relay_ports.clone(),
        policy: t.peers,
        idle_timeout: t.idle_timeout,
        allocations: allocations.clone(),
    };
    let guard = Guard::new(socket, auth.clone(), t.peers, allocations);
    let server = Server::new(ServerConfig {
        conn_configs: vec![ConnConfig { conn: Arc::new(guard), relay_addr_generator: Box::new(relay) }],
        realm: t.realm.clone(),
        auth_handler: auth,
        channel_bind_timeout: Duration::ZERO, // the crate's default, 10 minutes
        alloc_close_notify: None,
    })
    .await
    .context("starting the TURN server")?;
    info!(
        %addr,
        relay_ports = %format!("{}-{}", t.relay_ports.start(), t.relay_ports.end()),
        public_ip = %t.public_ip,
        realm = %t.realm,
        loopback_peers = t.peers.allow_loopback,
        "TURN listening (udp)"
    );
    if t.advertise
        && let Some(m) = &mut config.ice.minted
    {
        let host = match t.public_ip {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        m.urls = vec![format!("stun:{host}:{}", addr.port()), format!("turn:{host}:{}?transport=udp", addr.port())];
    }
    Ok(Some(Embedded { server, addr }))
}
