//! HTTP side of the `matchbox` listener: a WebSocket upgrade at `/{room}`
//! (one path segment, `?next=N` optional) starts a `matchbox` connection;
//! `/a/b` is refused with 404 and a hint. Plain HTTP requests get the
//! operational routes (`/ice` among them), `--static` files, or a hint.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::admission::Entry;
use crate::app::App;
use crate::clock;
use crate::dialect::matchbox::{Matchbox, Room};
use crate::routes::upgrade;
use crate::transport::upgrade::{WsUpgrade, wants_websocket};
use crate::transport::ws::run_connection;

/// Routes of the `matchbox` dialect before [`upgrade_rooms`] wraps them.
pub fn routes(app: App) -> Router {
    Router::new().fallback(hint).with_state(app)
}

/// Wraps the listener's whole router so that a WebSocket upgrade on any
/// one-segment path is a room, even `/ice` or `/metrics`.
pub fn upgrade_rooms(router: Router, app: App) -> Router {
    router.layer(middleware::from_fn_with_state(app, room_socket))
}

async fn room_socket(State(app): State<App>, req: Request, next: Next) -> Response {
    if !wants_websocket(req.headers()) {
        return next.run(req).await;
    }
    let (mut parts, _body) = req.into_parts();
    let entry = Entry::from_parts(&parts);
    let room = match Room::parse(&entry.path, entry.query_param("next").as_deref()) {
        Ok(room) => room,
        Err(e) => return (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    };
    let ws = match WsUpgrade::from_request_parts(&mut parts, &app).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade(app, &entry, ws, move |socket, app, admission| {
        // The rooms of `?next=N` groups are the dialect's own: the hub does
        // not check them against the access token, so it is done here.
        let allowed = admission.identity.as_ref().is_none_or(|i| i.grant().allows_room(&room.path));
        // No resume in matchbox: the client never reconnects as the same
        // peer, so a dropped connection leaves its room at once.
        let att = app.hub.attach(app.space, admission.peer_opts(Duration::ZERO), false, clock::now());
        run_connection(socket, Matchbox::new(room, allowed), att, app.hub.clone(), admission.limits, "matchbox")
    })
}

async fn hint() -> Response {
    (
        StatusCode::UPGRADE_REQUIRED,
        "switchboard `matchbox` signaling: point matchbox_socket at ws://HOST:PORT/<room> (or <room>?next=N). \
         ICE servers: GET /ice.\n",
    )
        .into_response()
}
