//! HTTP routes of the `flutter` listener: a WebSocket upgrade on any path
//! (the VertexChat client uses `/ws`) speaks the `flutter` dialect; any other
//! request gets the original's `200 WebSocket Server - Vertex`, or, with
//! `--static`, the directory's files (that text when a file is missing).

use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::HandlerWithoutStateExt;
use axum::http::header;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;

use crate::admission::Entry;
use crate::app::App;
use crate::dialect::flutter::Flutter;
use crate::routes::accept_ws;
use crate::transport::upgrade::{NotUpgradable, WsUpgrade};

/// What the original server answers to plain HTTP(S) requests.
pub const BANNER: &str = "WebSocket Server - Vertex";

/// Routes of the `flutter` dialect. It serves `static_dir` itself: its
/// WebSocket lives on every path, in front of the files.
pub fn routes(app: App, static_dir: Option<&Path>) -> Router {
    let router = match static_dir {
        Some(dir) => Router::new().fallback_service(ServeDir::new(dir).not_found_service(banner.into_service())),
        None => Router::new().fallback(banner),
    };
    router.layer(from_fn_with_state(app, upgrade_any_path))
}

async fn banner() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], BANNER).into_response()
}

/// Takes every WebSocket upgrade, whatever its path; passes the rest on.
async fn upgrade_any_path(
    State(app): State<App>,
    entry: Entry,
    ws: Result<WsUpgrade, NotUpgradable>,
    req: Request,
    next: Next,
) -> Response {
    match ws {
        Ok(ws) => {
            // The protocol has no resume: a dropped peer leaves the list at once.
            accept_ws(app, &entry, ws, "flutter", Duration::ZERO, |_| Flutter::new())
        }
        Err(_) => next.run(req).await,
    }
}
