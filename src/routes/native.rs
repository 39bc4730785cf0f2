//! HTTP routes of the native listener: the built-in call app (compiled into
//! the binary) and the native protocol's WebSocket endpoint at `/ws`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::admission::Entry;
use crate::app::App;
use crate::clock;
use crate::dialect::native::{Native, NativeSettings};
use crate::routes::upgrade;
use crate::transport::upgrade::WsUpgrade;
use crate::transport::ws::run_connection;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const CLIENT_JS: &str = include_str!("../../web/switchboard.js");
const PEERS_JS: &str = include_str!("../../web/peers.js");
const STYLE_CSS: &str = include_str!("../../web/style.css");

/// Routes of the native dialect.
pub fn routes(app: App) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/switchboard.js", get(|| async { asset("text/javascript; charset=utf-8", CLIENT_JS) }))
        .route("/peers.js", get(|| async { asset("text/javascript; charset=utf-8", PEERS_JS) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }))
        .route("/ws", get(native_ws))
        .with_state(app)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

#[derive(Deserialize)]
struct WsQuery {
    /// Resume token from an earlier welcome.
    resume: Option<String>,
}

async fn native_ws(State(app): State<App>, Query(q): Query<WsQuery>, entry: Entry, ws: WsUpgrade) -> Response {
    upgrade(app, &entry, ws, move |socket, app, admission| {
        let opts = admission.peer_opts(app.config.grace);
        let limits = admission.limits;
        let settings = NativeSettings {
            ice_servers: Arc::new(app.config.ice.json_for(&crate::ice::fresh_user(), std::time::SystemTime::now())),
            limits: Arc::new(json!({
                "max_frame": limits.max_frame,
                "rate": limits.rate,
                "burst": limits.burst,
                "room_max": app.config.room_max,
            })),
            room_max: app.config.room_max,
            grace: app.config.grace,
        };
        let now = clock::now();
        let resumed = q.resume.as_deref().map(|t| app.hub.resume(app.space, t, opts.grant.clone(), now));
        let (att, resume_error) = match resumed {
            Some(Ok(att)) => (att, None),
            other => {
                let att = app.hub.attach(app.space, opts, true, now);
                (att, other.and_then(|r| r.err()))
            }
        };
        let proto = Native::new(settings, att.token.clone(), att.resumed, resume_error);
        run_connection(socket, proto, att, app.hub.clone(), limits, "native")
    })
}
