//! HTTP routes, one module per dialect, plus the operational routes every
//! listener has. Routes map URLs to dialects: each WebSocket route passes
//! its request through [`admission::admit`] (in [`upgrade`]), then hands the
//! socket to [`run_connection`] with the dialect's state machine.

pub mod basic;
pub mod bundle;
pub mod easyrtc;
pub mod flutter;
pub mod ice;
pub mod matchbox;
pub mod native;
pub mod offers;
pub mod one2one;
pub mod ops;
pub mod peerjs;

use std::future::Future;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::admission::{self, Admission, Door, Entry};
use crate::app::App;
use crate::clock;
use crate::dialect::Protocol;
use crate::local_hub::Attachment;
use crate::transport::upgrade::{Socket, WsUpgrade};
use crate::transport::ws::run_connection;

/// The one way a WebSocket enters: admits the request, sizes the socket's
/// frames by the admission's limits, upgrades, and runs `start` on the
/// socket as a connection that shutdown waits for.
pub fn upgrade<F, Fut>(app: App, entry: &Entry, ws: WsUpgrade, start: F) -> Response
where
    F: FnOnce(Socket, App, Admission) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut admission = match admission::admit(&app, Door::Connection, entry) {
        Ok(admission) => admission,
        Err(refusal) => return refusal.into_response(),
    };
    // Counted against its address for as long as the connection runs (the
    // future is built first: wrapping it keeps one copy of the socket).
    let ticket = admission.ticket.take();
    // The library's cap sits above ours so that we, not it, refuse an
    // oversize message (with our close code and reason).
    let ws = ws.max_message_size(admission.limits.max_frame * 2).protocol(admission.protocol.as_deref());
    ws.on_upgrade(move |socket| {
        let tracker = app.tracker.clone();
        tracker.track_future(start(socket, app, admission).map(move |()| drop(ticket)))
    })
}

/// Upgrades a WebSocket whose peer is new to the hub (no resume), kept for
/// `grace` after a drop, and runs it with the protocol `make` builds for it.
pub fn accept_ws<P: Protocol>(
    app: App,
    entry: &Entry,
    ws: WsUpgrade,
    dialect: &'static str,
    grace: Duration,
    make: impl FnOnce(&Attachment) -> P + Send + 'static,
) -> Response {
    upgrade(app, entry, ws, move |socket, app, admission| {
        let att = app.hub.attach(app.space, admission.peer_opts(grace), false, clock::now());
        let proto = make(&att);
        run_connection(socket, proto, att, app.hub.clone(), admission.limits, dialect)
    })
}
