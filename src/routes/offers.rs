//! HTTP routes of an `offers` listener: socket.io at `/socket.io/`, the
//! socket.io client bundle at `/socket.io/socket.io.js`, and the app's own
//! files (`--static`) at `/`, as the original's `express.static` serves them.
//!
//! The client bundle is third-party code we do not ship: it is looked up
//! when requested, in this order: `--socketio-client FILE`, the app's own
//! `node_modules` under `--static`, then `node_modules` in the current
//! directory.

use std::path::Path;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::bundle::{Bundle, any, serve_file};
use crate::app::App;
use crate::transport::socketio;

/// Where the bundle sits inside an npm project, newest layout first.
const BUNDLE_PATHS: &[&str] =
    &["node_modules/socket.io-client/dist/socket.io.js", "node_modules/socket.io/client-dist/socket.io.js"];

/// The full router of an `offers` listener.
pub fn router(app: App, static_dir: Option<&Path>) -> Router {
    let bundle = Bundle {
        explicit: app.config.socketio_client.clone(),
        static_dir: static_dir.map(Path::to_path_buf),
        paths: BUNDLE_PATHS,
        served_at: "/socket.io/socket.io.js",
        how: "Run `npm install socket.io-client` in the app folder (or the current directory), \
              or start switchboard with --socketio-client PATH/TO/socket.io.js",
        accept: any,
    };
    bundle.warn_if_missing();
    // The socket.io layer owns every path under /socket.io/, so the bundle
    // route sits in front of it. Engine.IO 3 handshakes are refused, as
    // socket.io 4 servers do.
    let inner = super::ops::with_common(Router::new(), static_dir, app.clone())
        .layer(socketio::layer(app))
        .layer(axum::middleware::from_fn(|req, next| socketio::only_eio("4", req, next)));
    Router::new().route("/socket.io/socket.io.js", get(client_bundle)).with_state(bundle).fallback_service(inner)
}

async fn client_bundle(State(bundle): State<Bundle>) -> Response {
    match bundle.find() {
        Some(path) => serve_file(&path, "application/javascript; charset=utf-8").await,
        None => bundle.not_found(),
    }
}
