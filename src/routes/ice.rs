//! `GET /ice` on every listener: the ICE servers as an `RTCConfiguration`
//! (`{"iceServers": [...]}`), with TURN credentials minted for this request,
//! readable from any origin (CORS), for clients whose dialect has no place
//! for ICE servers. It must not log what it answers: that holds credentials.

use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::cors::{Any, CorsLayer};

use crate::admission::{self, Door, Entry};
use crate::app::App;
use crate::ice::fresh_user;

/// The `/ice` route, with its CORS layer.
pub fn routes(app: App) -> Router {
    let cors = CorsLayer::new().allow_origin(Any).allow_methods([Method::GET]);
    Router::new().route("/ice", get(ice)).layer(cors).with_state(app)
}

async fn ice(State(app): State<App>, entry: Entry) -> Response {
    // It hands out credentials: the same gate as every entry point.
    if let Err(refusal) = admission::admit(&app, Door::Endpoint, &entry) {
        return refusal.into_response();
    }
    let servers = app.config.ice.json_for(&fresh_user(), SystemTime::now());
    let body = json!({ "iceServers": servers }).to_string();
    // Credentials are minted per request: no cache may hand them to another client.
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}
