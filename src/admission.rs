//! Admission: the one decision whether a request may enter.
//!
//! Every entry point calls [`admit`] before it upgrades a WebSocket, accepts
//! a socket.io handshake, or answers an HTTP endpoint that reveals state
//! (the PeerJS peer list, `/metrics`). It sees what the request carries
//! ([`Entry`]: peer address, `Origin`, path, query, headers, WebSocket
//! subprotocols) and returns either an [`Admission`] (what the connection
//! may do) or the [`Refusal`] to send. New checks (per-IP limits, allowed
//! origins) go here, once, for every dialect.
//!
//! Authentication (on with `--auth-secret` or `--auth-public-key`): the
//! request must carry a valid access token ([`crate::auth`]), looked for in
//! this order: the `access_token` query parameter, a `Sec-WebSocket-Protocol`
//! entry `access_token.<token>`, `Authorization: Bearer <token>`, the
//! `switchboard_token` cookie, then what the entry point's own protocol
//! carries ([`Entry::token`]: socket.io's `auth.token`, the PeerJS `key`).
//! The first one found decides. Its identity goes with the [`Admission`];
//! the hub enforces its claims. `/metrics` ([`Door::Operator`]) takes the
//! `--metrics-token` bearer token instead when one is set.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::auth::{self, Identity, TokenError};
use crate::clock;
use crate::config::EntryLimits;
use crate::hub::PeerOpts;
use crate::transport::ws::{Bucket, ConnLimits};

/// What a request asks for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Door {
    /// A long-lived connection (WebSocket, socket.io): counts against the
    /// connection limit.
    Connection,
    /// An HTTP endpoint that reveals state or hands something out (a peer
    /// list, a PeerJS id).
    Endpoint,
    /// An endpoint for the operator (`/metrics`): `--metrics-token` if set,
    /// else an access token when authentication is on.
    Operator,
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
    /// An access token carried by the entry point's own protocol (socket.io's
    /// handshake `auth.token`, the PeerJS `key`), set by its route; tried
    /// after the request's own places.
    pub token: Option<String>,
}

impl Entry {
    /// The facts of a request, from its head.
    pub fn from_parts(parts: &Parts) -> Entry {
        Entry {
            remote: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts.headers.clone(),
            token: None,
        }
    }

    /// The client's address: the peer address, or, when the peer is a
    /// trusted proxy, the nearest address in `X-Forwarded-For` that is not.
    pub fn client_ip(&self, trusted: &[IpAddr]) -> Option<IpAddr> {
        // IPv4 clients of a dual-stack listener arrive as ::ffff:a.b.c.d.
        let mut nearest = self.remote?.ip().to_canonical();
        if !trusted.contains(&nearest) {
            return Some(nearest);
        }
        // Right to left, each hop was added by the one after it: believe
        // hops only while they are trusted proxies. An entry that is not an
        // address stops the walk at the last proxy (the client could have
        // written anything further left).
        let forwarded: Vec<&str> =
            self.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        for hop in forwarded.iter().rev().flat_map(|v| v.rsplit(',')) {
            match forwarded_addr(hop) {
                Some(ip) if trusted.contains(&ip) => nearest = ip,
                Some(ip) => return Some(ip),
                None => break,
            }
        }
        Some(nearest)
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

    /// A query parameter, decoded (the first if repeated).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(self.query.as_deref()?).ok()?;
        pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"'))
    }

    /// The `Authorization: Bearer` credential.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, credential) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| credential.trim())
    }

    /// The subprotocol entry that carries an access token, if offered.
    pub fn token_protocol(&self) -> Option<&str> {
        self.subprotocols().into_iter().find(|p| p.starts_with(auth::PROTOCOL_PREFIX))
    }

    /// The access token the request carries, from the first place that has
    /// one (see the module doc for the order).
    pub fn access_token(&self) -> Option<String> {
        let non_empty = |t: &str| (!t.is_empty()).then(|| t.to_string());
        self.query_param(auth::QUERY_PARAM)
            .filter(|t| !t.is_empty())
            .or_else(|| self.token_protocol().and_then(|p| p.strip_prefix(auth::PROTOCOL_PREFIX)).and_then(non_empty))
            .or_else(|| self.bearer().and_then(non_empty))
            .or_else(|| self.cookie(auth::COOKIE).and_then(non_empty))
            .or_else(|| self.token.as_deref().and_then(non_empty))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Entry {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Entry, Self::Rejection> {
        Ok(Entry::from_parts(parts))
    }
}

/// One `X-Forwarded-For` entry as an address: `a.b.c.d`, `a.b.c.d:port`,
/// `v6` or `[v6]:port`.
fn forwarded_addr(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()));
    ip.map(|ip| ip.to_canonical())
}

/// What an admitted request may do.
#[derive(Debug)]
pub struct Admission {
    /// Limits of the connection (frame size, rate, keep-alive).
    pub limits: ConnLimits,
    /// Counts the connection against its client address while held: keep
    /// it for the connection's life.
    pub ticket: Option<Ticket>,
    /// Who the access token says the client is; `None` when authentication
    /// is off (or at `/metrics` with `--metrics-token`).
    pub identity: Option<Identity>,
    /// The `Sec-WebSocket-Protocol` entry the upgrade answers with: the
    /// token entry the client offered (a browser fails a handshake whose
    /// offered protocols get no answer).
    pub protocol: Option<String>,
}

impl Admission {
    /// Options of a peer of this connection: `grace`, and the identity's
    /// grant for the hub to enforce.
    pub fn peer_opts(&self, grace: std::time::Duration) -> PeerOpts {
        PeerOpts { grace, grant: self.identity.as_ref().map(Identity::grant) }
    }
}

/// Connections per client address, and their rate of arrival.
#[derive(Debug)]
pub struct Gate {
    limits: EntryLimits,
    /// Std mutex: held for a lookup, never across an await.
    clients: Mutex<HashMap<IpAddr, Client>>,
    /// Size of `clients` at which idle entries are next forgotten.
    prune_at: AtomicUsize,
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
        Arc::new(Gate { limits, clients: Mutex::new(HashMap::new()), prune_at: AtomicUsize::new(REMEMBERED) })
    }

    fn clients(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets one more connection in from `ip`, or says why not.
    fn enter(self: &Arc<Gate>, ip: IpAddr) -> Result<Ticket, String> {
        let now = clock::now();
        let rate = self.limits.connect_rate;
        let mut clients = self.clients();
        if clients.len() >= self.prune_at.load(Ordering::Relaxed) {
            clients.retain(|_, c| c.open > 0 || !c.arrivals.is_full(now));
            // Addresses with open connections stay: prune again only once
            // the table has grown as much again.
            self.prune_at.store((clients.len() * 2).max(REMEMBERED), Ordering::Relaxed);
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
    let protocol = entry.token_protocol().map(str::to_string);
    let admission = |identity| Admission { limits: app.config.conn.clone(), ticket, identity, protocol };
    if door == Door::Operator
        && let Some(expected) = &app.config.metrics_token
    {
        if entry.bearer().is_some_and(|t| same(t.as_bytes(), expected.expose().as_bytes())) {
            return Ok(admission(None));
        }
        let msg = "this endpoint needs the metrics token: send Authorization: Bearer <the --metrics-token value>";
        return Err(refuse(app, StatusCode::UNAUTHORIZED, msg.into(), "metrics_token"));
    }
    let Some(verifier) = &app.config.auth else { return Ok(admission(None)) };
    let Some(token) = entry.access_token() else {
        let msg = format!(
            "this server requires an access token: pass it as the {q} query parameter, a Sec-WebSocket-Protocol \
             entry {p}<token>, an Authorization: Bearer header or the {c} cookie (see docs/security.md)",
            q = auth::QUERY_PARAM,
            p = auth::PROTOCOL_PREFIX,
            c = auth::COOKIE,
        );
        return Err(refuse(app, StatusCode::UNAUTHORIZED, msg, "token_missing"));
    };
    match verifier.verify(&token) {
        Ok(identity) => Ok(admission(Some(identity))),
        Err(e) => {
            let code = match e {
                TokenError::Expired => "token_expired",
                TokenError::Invalid(_) => "token_invalid",
            };
            Err(refuse(app, StatusCode::UNAUTHORIZED, e.to_string(), code))
        }
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A refusal, counted.
fn refuse(app: &App, status: StatusCode, message: String, code: &'static str) -> Refusal {
    app.hub.metrics().error(code);
    Refusal { status, message, code }
}
