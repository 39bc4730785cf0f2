//! The guard in front of the embedded TURN server's listening socket: it reads
//! each datagram before the `turn` crate does and refuses what that crate
//! has no hook for, answering in the client's place:
//! - CreatePermission or ChannelBind to a peer address the [`PeerPolicy`]
//!   refuses: 403 Forbidden (a Send indication to one is dropped);
//! - Allocate by a user already holding `--turn-max-allocations`: 486
//!   Allocation Quota Reached.
//!
//! A refusal carries MESSAGE-INTEGRITY, so it is only sent for requests whose
//! own integrity checks out; anything else passes to the server, which
//! answers it (401, 400...) as usual. The guard never grants anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use stun::attributes::{ATTR_MESSAGE_INTEGRITY, ATTR_REALM, ATTR_USERNAME, ATTR_XOR_PEER_ADDRESS};
use stun::error_code::{CODE_ALLOC_QUOTA_REACHED, CODE_FORBIDDEN, ErrorCode, ErrorCodeAttribute};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, MAGIC_COOKIE, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_SEND, Message, MessageType, Setter,
};
use stun::textattrs::TextAttribute;
use tokio::net::UdpSocket;
use tracing::debug;
use turn::proto::chandata::ChannelData;
use webrtc_util::Conn;

use super::auth::RestAuth;
use super::peers::PeerPolicy;
use super::relay::Allocations;
use crate::ice::rest_user;

/// What the guard does with one datagram.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Hand it to the TURN server.
    Pass,
    /// Drop it (an indication to a refused peer: indications get no answer).
    Drop,
    /// Answer the sender with this STUN message instead.
    Answer(Vec<u8>),
}

/// The listening socket, screened.
pub struct Guard {
    /// The TURN server's UDP socket.
    socket: UdpSocket,
    /// Derives the key a refusal's MESSAGE-INTEGRITY is made with.
    auth: Arc<RestAuth>,
    /// Which peers may be relayed to.
    policy: PeerPolicy,
    /// Live allocations per user, for the quota.
    allocations: Arc<Allocations>,
}

impl Guard {
    /// Screens `socket` with these rules.
    pub fn new(socket: UdpSocket, auth: Arc<RestAuth>, policy: PeerPolicy, allocations: Arc<Allocations>) -> Guard {
        Guard { socket, auth, policy, allocations }
    }

    /// Decides what to do with `pkt` from `from`, at `now`.
    pub fn screen(&self, pkt: &[u8], from: SocketAddr, now: SystemTime) -> Verdict {
        if ChannelData::is_channel_data(pkt) {
            // Only reaches a peer through a channel bound earlier, which passed here.
            return Verdict::Pass;
        }
        let mut m = Message::new();
        m.raw = pkt.to_vec();
        if m.decode().is_err() {
            return Verdict::Pass;
        }
        let (class, method) = (m.typ.class, m.typ.method);
        if class == CLASS_INDICATION && method == METHOD_SEND {
            if let Some((peer, why)) = self.refused_peer(&m) {
                debug!(remote = %from, peer = %peer, why, "TURN: Send indication to a refused peer dropped");
                return Verdict::Drop;
            }
        } else if class == CLASS_REQUEST && (method == METHOD_CREATE_PERMISSION || method == METHOD_CHANNEL_BIND) {
            if let Some((peer, why)) = self.refused_peer(&m) {
                debug!(remote = %from, peer = %peer, why, "TURN: permission to a refused peer refused");
                return self.refuse(&m, CODE_FORBIDDEN, "Forbidden: peer address not allowed", now);
            }
        } else if class == CLASS_REQUEST && method == METHOD_ALLOCATE {
            let Some((username, key)) = self.authenticated(&m, now) else {
                return Verdict::Pass;
            };
            let user = rest_user(&username);
            if !self.allocations.admit(user) {
                debug!(remote = %from, user, "TURN: allocation quota reached");
                return answer(&m, CODE_ALLOC_QUOTA_REACHED, "Allocation Quota Reached", key);
            }
        }
        Verdict::Pass
    }

    /// The first XOR-PEER-ADDRESS the policy refuses, with the reason.
    fn refused_peer(&self, m: &Message) -> Option<(String, &'static str)> {
        for attr in m.attributes.0.iter().filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS) {
            match xor_peer_ip(&attr.value, &m.transaction_id.0) {
                None => return Some(("?".into(), "malformed")),
                Some(ip) => {
                    if let Some(why) = self.policy.refusal(ip) {
                        return Some((ip.to_string(), why));
                    }
                }
            }
        }
        None
    }

    /// Username and key of `m` if its MESSAGE-INTEGRITY checks out with a
    /// well-formed, unexpired credential.
    fn authenticated(&self, m: &Message, now: SystemTime) -> Option<(String, Vec<u8>)> {
        if !m.contains(ATTR_MESSAGE_INTEGRITY) {
            return None;
        }
        let username = TextAttribute::get_from_as(m, ATTR_USERNAME).ok()?.text;
        let realm = TextAttribute::get_from_as(m, ATTR_REALM).ok()?.text;
        let key = self.auth.key(&username, &realm, now).ok()?;
        MessageIntegrity(key.clone()).check(&mut m.clone()).ok()?;
        Some((username, key))
    }

    /// An error response to `m`, if `m` is authenticated; else the server
    /// answers it (and refuses it for its credentials).
    fn refuse(&self, m: &Message, code: ErrorCode, reason: &str, now: SystemTime) -> Verdict {
        match self.authenticated(m, now) {
            Some((_, key)) => answer(m, code, reason, key),
            None => Verdict::Pass,
        }
    }
}

/// The error response `code` to request `m`, signed with `key`.
fn answer(m: &Message, code: ErrorCode, reason: &str, key: Vec<u8>) -> Verdict {
    let setters: Vec<Box<dyn Setter>> = vec![
        Box::new(Message { transaction_id: m.transaction_id, ..Message::default() }),
        Box::new(MessageType::new(m.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute { code, reason: reason.as_bytes().to_vec() }),
        Box::new(MessageIntegrity(key)),
    ];
    let mut out = Message::new();
    match out.build(&setters) {
        Ok(()) => Verdict::Answer(out.raw),
        // Cannot happen with these attributes; refusing silently is still a refusal.
        Err(_) => Verdict::Drop,
    }
}

/// The IP of an XOR-PEER-ADDRESS value (RFC 5389 §15.2 encoding).
fn xor_peer_ip(value: &[u8], transaction_id: &[u8; 12]) -> Option<IpAddr> {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(transaction_id);
    let xored = |n: usize| -> Option<Vec<u8>> {
        let addr = value.get(4..4 + n)?;
        Some(addr.iter().zip(key.iter()).map(|(a, k)| a ^ k).collect())
    };
    match value.get(1)? {
        1 => {
            let b: [u8; 4] = xored(4)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(b)))
        }
        2 => {
            let b: [u8; 16] = xored(16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

#[async_trait]
impl Conn for Guard {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            let Some(pkt) = buf.get(..n) else { continue };
            match self.screen(pkt, from, SystemTime::now()) {
                Verdict::Pass => return Ok((n, from)),
                Verdict::Drop => {}
                Verdict::Answer(reply) => {
                    if let Err(e) = self.socket.send_to(&reply, from).await {
                        debug!(remote = %from, error = %e, "TURN: cannot send a refusal");
                    }
                }
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Does nothing: the `turn` crate closes an allocation's listening
    /// socket with the allocation. The socket closes when the server drops it.
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
