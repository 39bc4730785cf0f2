//! URLs of the peerjs listener, under `--path` (default `/`), mapped to the
//! dialect ([`crate::dialect::peerjs`] holds the protocol): `GET {path}`
//! (server info), `GET {path}{key}/id` (a fresh id), `GET {path}{key}/peers`
//! (connected ids, with `--allow-discovery`, through admission) with CORS as
//! `peer` sends it, and the WebSocket at `{path}peerjs`.
//!
//! With authentication on, the `key` may carry the access token: it is the
//! one setting an unchanged PeerJS client sends everywhere (the WebSocket
//! query, both HTTP paths). A fresh id is then the token's subject.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::Either;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::admission::{self, Door, Entry};
use crate::app::App;
use crate::clock;
use crate::dialect::peerjs::{self, PeerJs, Registration, RegistrationQuery};
use crate::hub::{HubError, PeerOpts};
use crate::local_hub::{Attachment, KeyedClaim};
use crate::port::HubPort;
use crate::routes::upgrade;
use crate::transport::upgrade::Socket;
use crate::transport::ws::{ConnLimits, refuse, run_connection};

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

fn json(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

async fn info() -> Response {
    json(peerjs::INFO.to_string())
}

/// With authentication on, a key that is not the server's is taken for an
/// access token (see the module doc).
fn key_as_token(app: &App, key: Option<&str>) -> Option<String> {
    app.config.auth.as_ref()?;
    key.filter(|k| *k != app.config.peerjs.key).map(str::to_string)
}

/// Whether `key` lets a client register: the server's key, or with
/// authentication on, a valid access token.
fn key_ok(app: &App, key: &str) -> bool {
    key == app.config.peerjs.key || app.config.auth.as_ref().is_some_and(|v| v.verify(key).is_ok())
}

async fn new_id(State(app): State<App>, Path(key): Path<String>, mut entry: Entry) -> Response {
    entry.token = key_as_token(&app, Some(&key));
    let admission = match admission::admit(&app, Door::Endpoint, &entry) {
        Ok(admission) => admission,
        Err(refusal) => return refusal.into_response(),
    };
    // An authenticated client may only register as its token's subject.
    let id = match admission.identity {
        Some(identity) => identity.sub.to_string(),
        None => peerjs::new_id(|id| app.hub.holder(app.space, id).is_some()),
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], id).into_response()
}

async fn peers(State(app): State<App>, Path(key): Path<String>, mut entry: Entry) -> Response {
    entry.token = key_as_token(&app, Some(&key));
    if let Err(refusal) = admission::admit(&app, Door::Endpoint, &entry) {
        return refusal.into_response();
    }
    if !app.config.peerjs.allow_discovery {
        return (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
    }
    json(peerjs::peer_list(&app.hub.names(app.space)))
}

async fn peerjs_ws(
    State(app): State<App>,
    query: Result<Query<RegistrationQuery>, axum::extract::rejection::QueryRejection>,
    mut entry: Entry,
    ws: crate::transport::upgrade::WsUpgrade,
) -> Response {
    let query = query.map(|q| q.0).unwrap_or_default();
    entry.token = key_as_token(&app, query.key());
    upgrade(app, &entry, ws, move |socket, app, admission| {
        let opts = admission.peer_opts(app.config.grace);
        let alive = app.config.peerjs.alive_timeout;
        let ping_every = peerjs::PING_EVERY.min(alive / 2).max(Duration::from_millis(100));
        let limits = ConnLimits { idle_timeout: alive, ping_every, ..admission.limits };
        // Decided before any await, so the connection's long-lived future
        // holds the socket once (in whichever branch runs); the rare
        // contested claim is boxed so it does not grow every connection.
        let reg = match query.check(|k| key_ok(&app, k)) {
            Ok(reg) => reg,
            Err(frame) => return Either::Right(Either::Left(refuse(socket, frame, peerjs::refused()))),
        };
        match claim(&app, reg.clone(), opts.clone(), peerjs::DEAD_AFTER) {
            Ok(att) => Either::Left(run(socket, app, att, &reg, limits)),
            Err(HubError::NameTaken(_)) => {
                Either::Right(Either::Right(Box::pin(contested(socket, app, reg, opts, limits))))
            }
            Err(e) => Either::Right(Either::Left(refuse(socket, refusal(&app, &e), peerjs::refused()))),
        }
    })
}

fn run(
    socket: Socket,
    app: App,
    att: Attachment,
    reg: &Registration,
    limits: ConnLimits,
) -> impl Future<Output = ()> + Send + use<> {
    let proto = PeerJs::new(&reg.id, app.config.peerjs.expire_timeout);
    run_connection(socket, proto, att, app.hub.clone(), limits, "peerjs")
}

/// Another token holds the id: ping its connection, and give the id to the
/// newcomer if the holder does not answer within [`peerjs::PROBE_WAIT`]
/// (a page reloaded after its network dropped); `ID-TAKEN` if it does.
async fn contested(socket: Socket, app: App, reg: Registration, opts: PeerOpts, limits: ConnLimits) {
    let asked = clock::now();
    let mut answered = true;
    if let Some(heard) = app.hub.probe(app.space, &reg.id, peerjs::PROBE_WAIT / 2) {
        answered = loop {
            if heard.since(asked) {
                break true;
            }
            if clock::now().saturating_duration_since(asked) >= peerjs::PROBE_WAIT {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
    }
    // Silent since the probe, so for at least the probe time: dead.
    let dead_after = if answered { peerjs::DEAD_AFTER } else { peerjs::PROBE_WAIT / 2 };
    match claim(&app, reg.clone(), opts, dead_after) {
        Ok(att) => run(socket, app, att, &reg, limits).await,
        Err(e) => refuse(socket, refusal(&app, &e), peerjs::refused()).await,
    }
}

/// Claims the registered id for a peer with `opts`; its holder counts as
/// dead when silent for longer than `dead_after`.
fn claim(app: &App, reg: Registration, opts: PeerOpts, dead_after: Duration) -> Result<Attachment, HubError> {
    let pj = &app.config.peerjs;
    let claim = KeyedClaim { opts, name: reg.id, key: reg.token, limit: Some(pj.concurrent_limit), dead_after };
    app.hub.attach_keyed(app.space, claim, clock::now())
}

/// The frame refusing a claim, counted.
fn refusal(app: &App, e: &HubError) -> String {
    app.hub.metrics().error(e.code());
    peerjs::claim_refused(e)
}
