//! HTTP routes, one module per dialect, plus the operational routes every
//! listener has. Route handlers only pick a dialect state machine and hand
//! the socket to [`crate::transport::ws::run_connection`].

pub mod basic;
pub mod flutter;
pub mod ice;
pub mod native;
pub mod offers;
pub mod one2one;
pub mod ops;
pub mod peerjs;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::dialect::Protocol;
use crate::handle::Attachment;
use crate::hub::PeerOpts;
use crate::server::App;
use crate::transport::upgrade::WsUpgrade;
use crate::transport::ws::run_connection;

/// Refuses an upgrade past the connection limit, with a reason.
pub fn over_capacity(app: &App) -> Option<Response> {
    let open = app.hub.metrics().open_connections();
    if open >= app.config.max_connections as i64 {
        app.hub.metrics().error("too_many_connections");
        let msg =
            format!("server full: {open} connections open (limit {}); try again later", app.config.max_connections);
        return Some((StatusCode::SERVICE_UNAVAILABLE, msg).into_response());
    }
    None
}

/// Upgrades to a WebSocket whose peer is new to the hub (no resume) and runs
/// it with the protocol `make` builds for it.
pub fn accept_ws<P: Protocol>(
    app: App,
    ws: WsUpgrade,
    dialect: &'static str,
    opts: PeerOpts,
    make: impl FnOnce(&Attachment) -> P + Send + 'static,
) -> Response {
    if let Some(refusal) = over_capacity(&app) {
        return refusal;
    }
    let limits = app.config.conn.clone();
    ws.max_message_size(limits.max_frame * 2).on_upgrade(move |socket| {
        let att = app.hub.attach(app.space, opts, false);
        let proto = make(&att);
        let hub = app.hub.clone();
        app.tracker.track_future(run_connection(socket, proto, att, hub, limits, dialect))
    })
}
