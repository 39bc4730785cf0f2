//! HTTP routes of an `offers` listener: socket.io at `/socket.io/`, the
//! socket.io client bundle at `/socket.io/socket.io.js`, and the app's own
//! files (`--static`) at `/`, as the original's `express.static` serves them.
//!
//! The client bundle is third-party code we do not ship: it is looked up
//! when requested, in this order: `--socketio-client FILE`, the app's own
//! `node_modules` under `--static`, then `node_modules` in the current
//! directory.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::warn;

use crate::app::App;
use crate::transport::socketio;

/// Where the bundle sits inside an npm project, newest layout first.
const BUNDLE_PATHS: [&str; 2] =
    ["node_modules/socket.io-client/dist/socket.io.js", "node_modules/socket.io/client-dist/socket.io.js"];

/// What the client-bundle route needs.
#[derive(Clone)]
struct Bundle {
    explicit: Option<PathBuf>,
    static_dir: Option<PathBuf>,
}

impl Bundle {
    /// Candidate files, in lookup order.
    fn candidates(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.explicit.iter().cloned().collect();
        for base in self.static_dir.iter().map(PathBuf::as_path).chain([Path::new(".")]) {
            out.extend(BUNDLE_PATHS.iter().map(|p| base.join(p)));
        }
        out
    }

    fn find(&self) -> Option<PathBuf> {
        self.candidates().into_iter().find(|p| p.is_file())
    }

    fn missing_message(&self) -> String {
        let looked: Vec<String> = self.candidates().iter().map(|p| p.display().to_string()).collect();
        format!(
            "switchboard has no socket.io client to serve at /socket.io/socket.io.js. \
             Run `npm install socket.io-client` in the app folder (or the current directory), \
             or start switchboard with --socketio-client PATH/TO/socket.io.js. Looked in: {}",
            looked.join(", ")
        )
    }
}

/// The full router of an `offers` listener.
pub fn router(app: App, static_dir: Option<&Path>) -> Router {
    let bundle = Bundle { explicit: app.config.socketio_client.clone(), static_dir: static_dir.map(Path::to_path_buf) };
    if bundle.find().is_none() {
        warn!("{}", bundle.missing_message());
    }
    // The socket.io layer owns every path under /socket.io/, so the bundle
    // route sits in front of it.
    let inner = super::ops::with_common(Router::new(), static_dir, app.clone()).layer(socketio::layer(app));
    Router::new().route("/socket.io/socket.io.js", get(client_bundle)).with_state(bundle).fallback_service(inner)
}

async fn client_bundle(State(bundle): State<Bundle>) -> Response {
    let Some(path) = bundle.find() else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            bundle.missing_message(),
        )
            .into_response();
    };
    match tokio::fs::read(&path).await {
        Ok(body) => ([(header::CONTENT_TYPE, "application/javascript; charset=utf-8")], body).into_response(),
        Err(e) => {
            let msg = format!("cannot read the socket.io client {}: {e}", path.display());
            warn!("{msg}");
            (StatusCode::INTERNAL_SERVER_ERROR, msg).into_response()
        }
    }
}
