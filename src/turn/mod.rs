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

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;
use tracing::{info, warn};
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};

use crate::config::Config;
use crate::ice::{Coverage, IceConfig};
use auth::RestAuth;
use config::TurnConfig;
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

/// Starts the embedded server if `config.turn` asks for one, fills in the
/// URLs clients are handed when it is advertised, and says at startup which
/// ICE servers clients will get.
pub async fn start(config: &mut Config) -> anyhow::Result<Option<Embedded>> {
    let embedded = start_embedded(config).await?;
    announce(&config.ice, config.turn.as_ref().zip(embedded.as_ref().map(|e| e.addr)));
    Ok(embedded)
}

/// Logs which ICE servers clients get (never a secret), and warns when that
/// will not connect peers on different networks.
fn announce(ice: &IceConfig, turn: Option<(&TurnConfig, SocketAddr)>) {
    for line in ice.describe() {
        info!("ICE server handed to clients: {line}");
    }
    if let Some((t, addr)) = turn
        && !t.advertise
    {
        info!(
            "the embedded TURN server is not handed to clients because other ICE servers are configured; add --turn-url {} (with --turn-secret) to hand it out too",
            turn_url(t.public_ip, addr.port())
        );
    }
    match ice.coverage() {
        Coverage::Turn => {}
        Coverage::StunOnly => warn!(
            "only STUN is configured: peers behind symmetric NATs or firewalls that block UDP will fail to connect; add a TURN server (--turn-listen for the embedded one, or --turn-url with --turn-secret); see docs/nat.md"
        ),
        Coverage::Nothing => warn!(
            "no STUN or TURN server is configured: clients get an empty ICE server list and only peers that reach each other directly (same network) connect; add --turn-listen (embedded STUN/TURN) or --ice-server/--turn-url; see docs/nat.md"
        ),
    }
}

async fn start_embedded(config: &mut Config) -> anyhow::Result<Option<Embedded>> {
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
        let turn = turn_url(t.public_ip, addr.port());
        m.urls = vec![turn.replacen("turn:", "stun:", 1), format!("{turn}?transport=udp")];
    }
    Ok(Some(Embedded { server, addr }))
}

/// `turn:HOST:PORT`, with an IPv6 host in brackets.
fn turn_url(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V6(v6) => format!("turn:[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("turn:{v4}:{port}"),
    }
}
