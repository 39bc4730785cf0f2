//! Admission: the one decision whether a request may enter.
//!
//! Every entry point calls [`admit`] before it upgrades a WebSocket, accepts
//! a socket.io handshake, or answers an HTTP endpoint that reveals state
//! (the PeerJS peer list, `/metrics`). It sees what the request carries
//! ([`Entry`]: peer address, `Origin`, path, query, headers, WebSocket
//! subprotocols) and returns either an [`Admission`] (what the connection
//! may do) or the [`Refusal`] to send. New checks (authentication, per-IP
//! limits, allowed origins) go here, once, for every dialect.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::clock;
use crate::config::EntryLimits;
use crate::transport::ws::{Bucket, ConnLimits};

/// What a request asks for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Door {
    /// A long-lived connection (WebSocket, socket.io): counts against the
    /// connection limit.
    Connection,
    /// An HTTP endpoint that reveals state (a peer list, metrics).
    Endpoint,
}

/// The facts of a request that admission may look at.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// The client's address, when the listener records it.
    pub remote: Option<SocketAddr>,
    /// Request path.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Request headers (`Origin`, `Sec-WebSocket-Protocol`, cookies...).
    pub headers: HeaderMap,
}

impl Entry {
    /// The facts of a request, from its head.
    pub fn from_parts(parts: &Parts) -> Entry {
        Entry {
            remote: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers.clone(),
        }
    }

    /// The client's address: the peer address, or, when the peer is a
    /// trusted proxy, the nearest address in `X-Forwarded-For` that is not.
    pub fn client_ip(&self, trusted: &[IpAddr]) -> Option<IpAddr> {
        let peer = self.remote?.ip();
        if !trusted.contains(&peer) {
            return Some(peer);
        }
        let forwarded = self.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        let hops: Vec<IpAddr> = forwarded.flat_map(|v| v.split(',')).filter_map(|h| h.trim().parse().ok()).collect();
        Some(hops.into_iter().rev().find(|ip| !trusted.contains(ip)).unwrap_or(peer))
    }

    /// The `Origin` header, if it is text.
    pub fn origin(&self) -> Option<&str> {
        self.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
    }

    /// WebSocket subprotocols the client offered, in order.
    pub fn subprotocols(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Entry {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Entry, Self::Rejection> {
        Ok(Entry::from_parts(parts))
    }
}

/// What an admitted request may do.
#[derive(Debug)]
pub struct Admission {
    /// Limits of the connection (frame size, rate, keep-alive).
    pub limits: ConnLimits,
    /// Counts the connection against its client address while held: keep
    /// it for the connection's life.
    pub ticket: Option<Ticket>,
}

/// Connections per client address, and their rate of arrival.
#[derive(Debug)]
pub struct Gate {
    limits: EntryLimits,
    /// Std mutex: held for a lookup, never across an await.
    clients: Mutex<HashMap<IpAddr, Client>>,
}

#[derive(Debug)]
struct Client {
    open: usize,
    arrivals: Bucket,
}

/// Entries kept for addresses with no open connection before the idle ones
/// are forgotten (their arrival rate has recovered).
const REMEMBERED: usize = 10_000;

impl Gate {
    /// A gate with these limits.
    pub fn new(limits: EntryLimits) -> Arc<Gate> {
        Arc::new(Gate { limits, clients: Mutex::new(HashMap::new()) })
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets one more connection in from `ip`, or says why not.
    fn enter(self: &Arc<Gate>, ip: IpAddr) -> Result<Ticket, String> {
        let now = clock::now();
        let rate = self.limits.connect_rate;
        let mut clients = self.clients();
        if clients.len() >= REMEMBERED {
            clients.retain(|_, c| c.open > 0 || !c.arrivals.is_full(now));
        }
        let client = clients.entry(ip).or_insert_with(|| Client { open: 0, arrivals: Bucket::new(rate, rate * 2) });
        if client.open >= self.limits.per_ip {
            return Err(format!(
                "too many connections from your address ({} open, limit {}); close some and try again",
                client.open, self.limits.per_ip
            ));
        }
        if !client.arrivals.take(now) {
            return Err(format!("too many new connections from your address (limit {rate} per second); slow down"));
        }
        client.open += 1;
        Ok(Ticket { gate: self.clone(), ip })
    }
}

/// One admitted connection, counted against its client address until
/// dropped.
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(c) = self.gate.clients().get_mut(&self.ip) {
            c.open = c.open.saturating_sub(1);
        }
    }
}

/// Why a request may not enter, as the client will be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status of the refusal.
    pub status: StatusCode,
    /// What the client is told: what happened and what to do.
    pub message: String,
    /// Stable error code, counted in `switchboard_errors_total`.
    pub code: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, self.message).into_response()
    }
}

/// Decides whether `entry` may go through `door` of `app`'s listener.
pub fn admit(app: &App, door: Door, entry: &Entry) -> Result<Admission, Refusal> {
    let limits = &app.config.entry;
    if !limits.allowed_origins.is_empty()
        && let Some(origin) = entry.origin()
        && !limits.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    {
        let msg = format!("pages from {origin} may not connect here (see --allowed-origin)");
        return Err(refuse(app, StatusCode::FORBIDDEN, msg, "origin_not_allowed"));
    }
    let mut ticket = None;
    if door == Door::Connection {
        let open = app.hub.metrics().open_connections();
        let max = app.config.max_connections;
        if open >= max as i64 {
            return Err(refuse(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                format!("server full: {open} connections open (limit {max}); try again later"),
                "too_many_connections",
            ));
        }
        // Loopback is not limited per address: local tools and tests, and a
        // local proxy not declared with --trusted-proxy, which would put
        // every client under one address.
        if let Some(ip) = entry.client_ip(&limits.trusted_proxies).filter(|ip| !ip.is_loopback()) {
            match app.gate.enter(ip) {
                Ok(t) => ticket = Some(t),
                Err(msg) => return Err(refuse(app, StatusCode::TOO_MANY_REQUESTS, msg, "too_many_from_address")),
            }
        }
    }
    Ok(Admission { limits: app.config.conn.clone(), ticket })
}

/// A refusal, counted.
fn refuse(app: &App, status: StatusCode, message: String, code: &'static str) -> Refusal {
    app.hub.metrics().error(code);
    Refusal { status, message, code }
}
