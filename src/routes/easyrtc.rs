//! HTTP routes of an `easyrtc` listener, what EasyRTC's server serves for
//! its pages: socket.io (1.x wire) at `/socket.io/`, a socket.io 1.x client
//! bundle at `/socket.io/socket.io.js`, EasyRTC's browser API at
//! `/easyrtc/` (`easyrtc.js`, `easyrtc.css`, `img/`, `labs/`), and the app's
//! own files (`--static`) at `/`.
//!
//! Both third-party parts are looked up in the app's `node_modules` (see
//! [`super::bundle`]): `--socketio1-client FILE` or socket.io-client 1.x,
//! and `--easyrtc-api DIR` or the npm package `easyrtc`.

use std::path::{Component, Path, PathBuf};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::bundle::{Bundle, any, serve_file};
use crate::app::App;
use crate::transport::{easyrtc_io, eio3_text, socketio};

/// Where a socket.io 1.x client bundle sits inside an npm project.
/// Only a 1.x one is taken (an app may hold a newer client too).
const SOCKETIO1_PATHS: &[&str] = &[
    "node_modules/socket.io-client/socket.io.js",
    "node_modules/socket.io-client/dist/socket.io.js",
    "node_modules/socket.io/node_modules/socket.io-client/socket.io.js",
];

/// Where EasyRTC's browser API sits inside an npm project (or an unpacked
/// EasyRTC folder).
const API_PATHS: &[&str] = &["node_modules/easyrtc/api", "api"];

#[derive(Clone)]
struct Files {
    socketio: Bundle,
    api: Bundle,
}

/// The full router of an `easyrtc` listener.
pub fn router(app: App, static_dir: Option<&Path>) -> Router {
    let dir = static_dir.map(Path::to_path_buf);
    let files = Files {
        socketio: Bundle {
            explicit: app.config.socketio1_client.clone(),
            static_dir: dir.clone(),
            paths: SOCKETIO1_PATHS,
            served_at: "/socket.io/socket.io.js",
            how: "Run `npm install socket.io-client@1` in the app folder (or the current directory), \
                  or start switchboard with --socketio1-client PATH/TO/socket.io.js",
            accept: socketio_1x,
        },
        api: Bundle {
            explicit: app.config.easyrtc_api.clone(),
            static_dir: dir,
            paths: API_PATHS,
            served_at: "/easyrtc/",
            how: "Run `npm install easyrtc@1.1.0` in the app folder (or the current directory), \
                  or start switchboard with --easyrtc-api PATH/TO/easyrtc/api",
            accept: any,
        },
    };
    files.socketio.warn_if_missing();
    files.api.warn_if_missing();
    // The socket.io layer owns every path under /socket.io/, so the file
    // routes sit in front of it. Engine.IO 4 handshakes are refused, as
    // socket.io 1.x servers do.
    let inner = super::ops::with_common(Router::new(), static_dir, app.clone())
        .layer(easyrtc_io::layer(app))
        .layer(axum::middleware::from_fn(eio3_text::polling_shim))
        .layer(axum::middleware::from_fn(|req, next| socketio::only_eio("3", req, next)));
    Router::new()
        .route("/socket.io/socket.io.js", get(client_bundle))
        .route("/easyrtc/{*file}", get(api_file))
        .with_state(files)
        .fallback_service(inner)
}

async fn client_bundle(State(files): State<Files>) -> Response {
    match files.socketio.find() {
        Some(path) => serve_file(&path, "application/javascript; charset=utf-8").await,
        None => files.socketio.not_found(),
    }
}

async fn api_file(State(files): State<Files>, UrlPath(file): UrlPath<String>) -> Response {
    let Some(dir) = files.api.find() else { return files.api.not_found() };
    match inside(&dir, &file).filter(|p| p.is_file()) {
        Some(path) => serve_file(&path, content_type(&path)).await,
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Whether the bundle at `path` belongs to a socket.io-client 1.x package
/// (the `package.json` of the folder holding it, or of its parent).
fn socketio_1x(path: &Path) -> bool {
    path.ancestors().skip(1).take(2).any(|dir| {
        let Ok(text) = std::fs::read_to_string(dir.join("package.json")) else { return false };
        let Ok(pkg) = serde_json::from_str::<serde_json::Value>(&text) else { return false };
        pkg["name"] == "socket.io-client" && pkg["version"].as_str().is_some_and(|v| v.starts_with("1."))
    })
}

/// `file` under `dir`, if it names a file below it (no `..`, no root).
fn inside(dir: &Path, file: &str) -> Option<PathBuf> {
    let rel = Path::new(file);
    rel.components().all(|c| matches!(c, Component::Normal(_))).then(|| dir.join(rel))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("js") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
