//! Admission: the one decision whether a request may enter.
//!
//! Every entry point calls [`admit`] before it upgrades a WebSocket, accepts
//! a socket.io handshake, or answers an HTTP endpoint that reveals state
//! (the PeerJS peer list, `/metrics`). It sees what the request carries
//! ([`Entry`]: peer address, `Origin`, path, query, headers, WebSocket
//! subprotocols) and returns either an [`Admission`] (what the connection
//! may do) or the [`Refusal`] to send. New checks (authentication, per-IP
//! limits, allowed origins) go here, once, for every dialect.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::transport::ws::ConnLimits;

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
#[derive(Clone, Debug)]
pub struct Admission {
    /// Limits of the connection (frame size, rate, keep-alive).
    pub limits: ConnLimits,
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
pub fn admit(app: &App, door: Door, _entry: &Entry) -> Result<Admission, Refusal> {
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
    }
    Ok(Admission { limits: app.config.conn.clone() })
}

/// A refusal, counted.
fn refuse(app: &App, status: StatusCode, message: String, code: &'static str) -> Refusal {
    app.hub.metrics().error(code);
    Refusal { status, message, code }
}
