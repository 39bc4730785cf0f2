//! Routes every listener has: `/healthz`, `/metrics`, `/ice`, and an optional
//! directory of static files (an app's own client) as the fallback.

use std::path::Path;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeDir;

use crate::admission::{self, Door, Entry};
use crate::app::App;

/// Adds the operational routes (and `--static`) to a dialect's routes.
pub fn with_common(routes: Router, static_dir: Option<&Path>, app: App) -> Router {
    let ops = Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(app.clone());
    let router = routes.merge(ops).merge(super::ice::routes(app));
    match static_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir)),
        None => router,
    }
}

/// `ok`, or `degraded` when the cluster's Redis is unreachable (this node
/// still serves its own peers: a load balancer should keep it).
async fn healthz(State(app): State<App>) -> impl IntoResponse {
    let body = match app.hub.census().cluster {
        None => "ok\n".to_string(),
        Some((nodes, true)) => format!("ok\nredis: reachable\nnodes: {nodes}\n"),
        Some((nodes, false)) => format!("degraded\nredis: unreachable\nnodes: {nodes}\n"),
    };
    ([(header::CONTENT_TYPE, "text/plain")], body)
}

async fn metrics(State(app): State<App>, entry: Entry) -> Response {
    if let Err(refusal) = admission::admit(&app, Door::Operator, &entry) {
        return refusal.into_response();
    }
    let census = app.hub.census();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.hub.metrics().render(census)).into_response()
}
