//! Relay sockets of the embedded TURN server: bound in `--turn-relay-ports`,
//! announced with `--turn-public-ip`, counted per user for the allocation
//! quota, closed after `--turn-idle-timeout` without traffic, and never
//! sending to (or delivering from) a peer the [`PeerPolicy`] refuses.
//!
//! The `turn` crate asks [`RelayGen`] for a socket per allocation; what
//! happens on the socket is up to [`RelayConn`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tracing::debug;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

use super::peers::PeerPolicy;

/// How many random ports of the range are tried before an allocation fails.
const BIND_TRIES: usize = 32;

/// Live allocations per user (the part after `:` in a REST username).
pub struct Allocations {
    /// Most live allocations one user may hold.
    max_per_user: usize,
    state: Mutex<AllocState>,
}

#[derive(Default)]
struct AllocState {
    per_user: HashMap<String, usize>,
    /// The user of the Allocate request being handled: the `turn` crate
    /// handles one request at a time per socket, and asks for the relay
    /// socket while handling it, after the guard admitted it.
    admitted: Option<String>,
}

impl Allocations {
    /// A quota of `max_per_user` allocations.
    pub fn new(max_per_user: usize) -> Allocations {
        Allocations { max_per_user, state: Mutex::new(AllocState::default()) }
    }

    /// Whether `user` may make one more allocation; if so, the next relay
    /// socket is counted for them.
    pub fn admit(&self, user: &str) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.per_user.get(user).copied().unwrap_or(0) >= self.max_per_user {
            return false;
        }
        s.admitted = Some(user.to_string());
        true
    }

    /// Live allocations of `user`.
    pub fn count(&self, user: &str) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).per_user.get(user).copied().unwrap_or(0)
    }

    /// Counts a new relay socket for the admitted user, until the lease drops.
    fn lease(self: &Arc<Self>) -> Lease {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let user = s.admitted.take().unwrap_or_default();
        *s.per_user.entry(user.clone()).or_insert(0) += 1;
        Lease { allocations: self.clone(), user }
    }
}

/// One counted allocation; uncounted on drop.
struct Lease {
    allocations: Arc<Allocations>,
    user: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut s = self.allocations.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = s.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                s.per_user.remove(&self.user);
            }
        }
    }
}

/// Makes relay sockets for the `turn` crate.
pub struct RelayGen {
    /// Address relay sockets bind to (the TURN listener's IP).
    pub bind_ip: IpAddr,
    /// Address written in relayed candidates.
    pub public_ip: IpAddr,
    /// Ports relay sockets may use.
    pub ports: RangeInclusive<u16>,
    /// Which peers may be relayed to.
    pub policy: PeerPolicy,
    /// An allocation without traffic this long is closed.
    pub idle_timeout: Duration,
    /// The quota counts.
    pub allocations: Arc<Allocations>,
}

#[async_trait]
impl RelayAddressGenerator for RelayGen {
    fn validate(&self) -> Result<(), turn::Error> {
        if self.ports.is_empty() || *self.ports.start() == 0 {
            return Err(turn::Error::Other("the relay port range is empty".into()));
        }
        Ok(())
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        if use_ipv4 != self.bind_ip.is_ipv4() {
            return Err(turn::Error::Other("the relay does not serve that address family".into()));
        }
        let (start, end) = (*self.ports.start(), *self.ports.end());
        let mut candidates: Vec<u16> = (0..BIND_TRIES).map(|_| rand::random_range(start..=end)).collect();
        if requested_port != 0 {
            candidates = vec![requested_port];
        }
        for port in candidates {
            if let Ok(socket) = UdpSocket::bind(SocketAddr::new(self.bind_ip, port)).await {
                let local = socket.local_addr()?;
                let conn = RelayConn {
                    socket,
                    policy: self.policy,
                    idle_timeout: self.idle_timeout,
                    born: Instant::now(),
                    last_ms: AtomicU64::new(0),
                    _lease: self.allocations.lease(),
                };
                return Ok((Arc::new(conn), SocketAddr::new(self.public_ip, local.port())));
            }
        }
        Err(turn::Error::Other(format!("no free relay port in {start}-{end}")))
    }
}

/// One allocation's relay socket.
pub struct RelayConn {
    socket: UdpSocket,
    policy: PeerPolicy,
    idle_timeout: Duration,
    /// Time base of `last_ms`.
    born: Instant,
    /// Milliseconds after `born` of the last datagram in either direction.
    last_ms: AtomicU64,
    /// Counts this allocation for its user while it lives.
    _lease: Lease,
}

impl RelayConn {
    fn touch(&self) {
        self.last_ms.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_until(&self) -> Instant {
        self.born + Duration::from_millis(self.last_ms.load(Ordering::Relaxed)) + self.idle_timeout
    }
}

#[async_trait]
impl Conn for RelayConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "a relay socket is not connected").into())
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    /// The next datagram from an allowed peer; an error (which makes the
    /// `turn` crate drop the allocation) after `idle_timeout` without traffic.
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let until = self.idle_until();
            tokio::select! {
                got = self.socket.recv_from(buf) => {
                    let (n, from) = got?;
                    if self.policy.refusal(from.ip()).is_some() {
                        continue;
                    }
                    self.touch();
                    return Ok((n, from));
                }
                _ = tokio::time::sleep_until(until) => {
                    if self.idle_until() <= Instant::now() {
                        debug!(relay = ?self.socket.local_addr().ok(), "TURN: idle allocation closed");
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "allocation idle").into());
                    }
                }
            }
        }
    }

    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "a relay socket is not connected").into())
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if let Some(why) = self.policy.refusal(target.ip()) {
            // The guard refuses permissions to such peers; this is the backstop.
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, format!("{why} peer refused")).into());
        }
        self.touch();
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
