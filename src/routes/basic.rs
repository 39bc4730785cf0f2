//! HTTP side of the `basic` listener: like the original `ws` server, a
//! WebSocket upgrade on ANY path starts a `basic` connection. Plain HTTP
//! requests get `--static` files (e.g. our test page) or a hint.

use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::admission::Entry;
use crate::app::App;
use crate::dialect::basic::Basic;
use crate::routes::accept_ws;
use crate::transport::upgrade::{WsUpgrade, wants_websocket};

/// Routes of the `basic` dialect before [`upgrade_any_path`] wraps them.
pub fn routes(app: App) -> Router {
    Router::new().fallback(hint).with_state(app)
}

/// Wraps the listener's whole router (static files and ops routes included)
/// so that a WebSocket upgrade on any path becomes a `basic` connection.
pub fn upgrade_any_path(router: Router, app: App) -> Router {
    router.layer(middleware::from_fn_with_state(app, upgrade))
}

async fn upgrade(State(app): State<App>, req: Request, next: Next) -> Response {
    if !wants_websocket(req.headers()) {
        return next.run(req).await;
    }
    let (mut parts, _body) = req.into_parts();
    let entry = Entry::from_parts(&parts);
    match WsUpgrade::from_request_parts(&mut parts, &app).await {
        // No resume in `basic`: a dropped connection is gone at once.
        Ok(ws) => accept_ws(app, &entry, ws, "basic", Duration::ZERO, |_| Basic::new()),
        Err(rejection) => rejection.into_response(),
    }
}

async fn hint() -> Response {
    (
        StatusCode::UPGRADE_REQUIRED,
        "switchboard `basic` signaling: connect a WebSocket to this address (any path). \
         To serve a page here too, start with --static DIR.\n",
    )
        .into_response()
}
