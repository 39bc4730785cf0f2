//! HTTP routes of the peerjs listener, under `--path` (default `/`):
//! `GET {path}` (server info), `GET {path}{key}/id` (a fresh id),
//! `GET {path}{key}/peers` (connected ids, with `--allow-discovery`) with
//! CORS as `peer` sends it, and the WebSocket at `{path}peerjs`, where a
//! client registers with `?key=&id=&token=` before its messages are relayed.

use std::time::Duration;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use futures_util::SinkExt;
use futures_util::future::Either;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;

use crate::app::App;
use crate::dialect::peerjs::{ID_TAKEN, PeerJs, error_frame, refusal};
use crate::hub::{HubError, Name, PeerOpts};
use crate::local_hub::Attachment;
use crate::routes::over_capacity;
use crate::transport::upgrade::{Socket, WsUpgrade};
use crate::transport::ws::{ConnLimits, run_connection};

/// How often the server pings a PeerJS connection. Browsers answer pings
/// themselves, even in background tabs whose timers (and so the client's
/// HEARTBEAT) are throttled, so an answer proves the page is still there.
pub const PING_EVERY: Duration = Duration::from_secs(5);

/// A connection not heard from (message, heartbeat or pong) for this long
/// loses its id to a client with another token: three missed pings.
pub const DEAD_AFTER: Duration = Duration::from_secs(15);

/// Longest id or token accepted.
const MAX_ID: usize = 256;

const INFO: &str = r#"{"name":"PeerJS Server","description":"A server side element to broker connections between PeerJS clients.","website":"https://peerjs.com/"}"#;

/// Routes of the peerjs dialect.
pub fn routes(app: App) -> Router {
    let path = app.config.peerjs.path.clone();
    // `cors` as `peer` configures it: any origin, mirrored.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::HEAD, Method::PUT, Method::PATCH, Method::POST, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request());
    let mut api = Router::new()
        .route(&path, get(info))
        .route(&format!("{path}{{key}}/id"), get(new_id))
        .route(&format!("{path}{{key}}/peers"), get(peers));
    if path.len() > 1 {
        api = api.route(path.trim_end_matches('/'), get(info));
    }
    let api = api.layer(cors).layer(middleware::from_fn(preflight_no_content));
    Router::new().route(&format!("{path}peerjs"), get(peerjs_ws)).merge(api).with_state(app)
}

/// `peer`'s CORS answers a preflight with `204 No Content`, tower-http's
/// with `200 OK`; the headers are the same.
async fn preflight_no_content(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    let mut res = next.run(req).await;
    if preflight && res.status() == StatusCode::OK {
        *res.status_mut() = StatusCode::NO_CONTENT;
    }
    res
}

async fn info() -> Response {
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], INFO).into_response()
}

/// A random (version 4) UUID, the form of id `peer` hands out.
fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

async fn new_id(State(app): State<App>) -> Response {
    let mut id = uuid();
    while app.hub.read(|h| h.lookup(app.space, &id).is_some()) {
        id = uuid();
    }
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], id).into_response()
}

async fn peers(State(app): State<App>) -> Response {
    if !app.config.peerjs.allow_discovery {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    let ids: Vec<String> =
        app.hub.read(|h| h.named(app.space)).into_iter().filter_map(|p| p.name.map(|n| n.to_string())).collect();
    let body = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

#[derive(Deserialize, Default)]
struct Registration {
    key: Option<String>,
    id: Option<String>,
    token: Option<String>,
}

async fn peerjs_ws(
    State(app): State<App>,
    query: Result<Query<Registration>, axum::extract::rejection::QueryRejection>,
    ws: WsUpgrade,
) -> Response {
    if let Some(refusal) = over_capacity(&app) {
        return refusal;
    }
    let reg = query.map(|q| q.0).unwrap_or_default();
    let pj = &app.config.peerjs;
    let mut limits = ConnLimits {
        idle_timeout: pj.alive_timeout,
        ping_every: PING_EVERY.min(pj.alive_timeout / 2),
        ..app.config.conn.clone()
    };
    limits.ping_every = limits.ping_every.max(Duration::from_millis(100));
    let ws = ws.max_message_size(limits.max_frame * 2);
    ws.on_upgrade(move |socket| {
        let tracker = app.tracker.clone();
        tracker.track_future(register(socket, app, reg, limits))
    })
}

/// Registers the client as `peer` does, then runs its connection. Decided
/// before any await, so the connection's long-lived future holds the socket
/// once (in whichever branch runs), not once per layer.
fn register(socket: Socket, app: App, reg: Registration, limits: ConnLimits) -> impl Future<Output = ()> + Send {
    match admit(&app, reg) {
        Ok((att, id)) => {
            let proto = PeerJs::new(&id, app.config.peerjs.expire_timeout);
            let run = run_connection(socket, proto, att, app.hub.clone(), limits, "peerjs");
            Either::Left(run)
        }
        Err(frame) => Either::Right(refuse(socket, frame)),
    }
}

/// Checks the registration and attaches the client to the hub; on refusal,
/// the frame to send before closing.
fn admit(app: &App, reg: Registration) -> Result<(Attachment, String), String> {
    let pj = &app.config.peerjs;
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let (Some(key), Some(id), Some(token)) = (nonempty(reg.key), nonempty(reg.id), nonempty(reg.token)) else {
        return Err(error_frame(refusal::PARAMS));
    };
    if key != pj.key {
        return Err(error_frame(refusal::KEY));
    }
    if id.len() > MAX_ID || token.len() > MAX_ID {
        return Err(error_frame(&format!("id and token must be at most {MAX_ID} characters long")));
    }
    let opts = PeerOpts { grace: app.config.grace };
    let limit = Some(pj.concurrent_limit);
    match app.hub.attach_keyed(app.space, opts, Name::from(id.as_str()), token.into(), limit, DEAD_AFTER) {
        Ok(att) => Ok((att, id)),
        Err(HubError::NameTaken(_)) => {
            app.hub.metrics().error("name_taken");
            Err(ID_TAKEN.to_string())
        }
        Err(HubError::SpaceFull(_)) => {
            app.hub.metrics().error("space_full");
            Err(error_frame(refusal::LIMIT))
        }
        Err(e) => Err(error_frame(&e.to_string())),
    }
}

/// Sends one frame, then closes.
async fn refuse(mut socket: Socket, frame: String) {
    let _ = socket.send(Message::Text(frame.into())).await;
    let close = CloseFrame { code: 1008.into(), reason: "registration refused".into() };
    let _ = socket.send(Message::Close(Some(close))).await;
}
