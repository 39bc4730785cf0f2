//! HTTP side of the `one2one` listener: the WebSocket at `/call` (query
//! string allowed) and the app's own files from `--static` at `/`. A
//! WebSocket upgrade on any other path is refused with 404 and a hint (the
//! original leaves such sockets hanging).

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::admission::Entry;
use crate::app::App;
use crate::dialect::one2one::{Links, One2one};
use crate::routes::accept_ws;
use crate::transport::upgrade::{WsUpgrade, wants_websocket};

/// Path of the signaling WebSocket, as the original client builds it.
pub const WS_PATH: &str = "/call";

#[derive(Clone)]
struct One2oneState {
    app: App,
    /// Call links of this listener's connections (see `dialect::one2one`).
    links: Links,
}

/// Routes of the `one2one` dialect.
pub fn routes(app: App) -> Router {
    let state = One2oneState { app, links: Links::default() };
    Router::new().route(WS_PATH, get(call_ws)).fallback(no_static).with_state(state)
}

/// Wraps the listener's whole router so that upgrades on other paths get a
/// clear refusal instead of a static file or a hang.
pub fn refuse_other_upgrades(router: Router) -> Router {
    router.layer(middleware::from_fn(refuse))
}

async fn refuse(req: Request, next: Next) -> Response {
    if wants_websocket(req.headers()) && req.uri().path() != WS_PATH {
        let msg = format!(
            "no WebSocket at {}: the one2one signaling socket is at {WS_PATH} (ws://HOST:PORT{WS_PATH})\n",
            req.uri().path()
        );
        return (StatusCode::NOT_FOUND, msg).into_response();
    }
    next.run(req).await
}

async fn call_ws(State(s): State<One2oneState>, entry: Entry, ws: WsUpgrade) -> Response {
    let links = s.links.clone();
    // No resume in `one2one`: a dropped connection is gone at once.
    accept_ws(s.app, &entry, ws, "one2one", Duration::ZERO, move |_| One2one::new(links))
}

async fn no_static() -> Response {
    (
        StatusCode::NOT_FOUND,
        "switchboard `one2one`: no app files here; start with --static DIR (the folder holding the app's index.html). \
         The signaling WebSocket is at /call.\n",
    )
        .into_response()
}
