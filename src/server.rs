//! Starts the listeners, serves until told to stop, then shuts down
//! gracefully: stop accepting, tell every client to reconnect, wait for the
//! connections to close within a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::admission::Gate;
use crate::app::App;
use crate::config::{Config, ListenerConfig};
use crate::dialect::DialectKind;
use crate::hub::Limits;
use crate::local_hub::{Flow, LocalHub};
use crate::outbox::{Budget, Total};
use crate::routes;
use crate::transport::tls;
use axum_server::tls_rustls::RustlsConfig;

/// A started server.
pub struct Running {
    /// The bound address of each listener, in config order.
    pub addrs: Vec<SocketAddr>,
    /// The namespace of each listener, in config order.
    pub spaces: Vec<crate::hub::SpaceId>,
    /// The hub, for inspection.
    pub hub: LocalHub,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the server and waits for it to finish.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.done.await;
    }
}

/// Binds every listener and starts serving in the background.
pub async fn start(mut config: Config) -> anyhow::Result<Running> {
    let turn = crate::turn::start(&mut config).await?;
    let config = Arc::new(config);
    // What a dropped connection leaves in its outbox moves to its resume
    // queue, which therefore takes as much.
    let limits = Limits {
        away_queue: config.away_queue,
        away_bytes: config.queue_bytes.saturating_mul(2),
        ring_timeout: config.ring_timeout,
        ..Limits::default()
    };
    let budget = Budget { per_queue: config.queue_bytes, total: Total::new(config.queue_total_bytes) };
    let hub = LocalHub::new(limits, Flow { budget, slow_after: config.slow_after });
    // A node of a cluster takes its number before any peer connects (peer
    // ids carry it).
    let link = match &config.cluster {
        Some(cluster) => Some(crate::cluster::link::join(cluster, hub.clone(), CancellationToken::new()).await?),
        None => None,
    };
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let gate = Gate::new(config.entry.clone());
    let mut addrs = Vec::new();
    let mut servers = Vec::new();
    for l in &config.listeners {
        let app = App {
            hub: hub.clone(),
            config: config.clone(),
            space: l.space(),
            shutdown: stop.clone(),
            tracker: tracker.clone(),
            gate: gate.clone(),
        };
        let listener = TcpListener::bind(l.listen).await.with_context(|| bind_hint(l))?;
        let addr = listener.local_addr()?;
        let router = router_for(l, app);
        let stop = stop.clone();
        let task = match l.tls_files() {
            None => {
                info!(dialect = l.dialect.as_str(), %addr, "listening");
                tokio::spawn(async move {
                    // Signaling frames are small and latency-bound: send each
                    // at once instead of waiting for the previous one's ACK.
                    let listener = listener.tap_io(|tcp| {
                        if let Err(e) = tcp.set_nodelay(true) {
                            debug!(error = %e, "cannot set TCP_NODELAY");
                        }
                    });
                    let serve = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                        .with_graceful_shutdown(async move { stop.cancelled().await });
                    if let Err(e) = serve.await {
                        warn!(error = %e, "listener failed");
                    }
                })
            }
            Some(files) => {
                let tls = RustlsConfig::from_config(tls::server_config(&files)?);
                let server = axum_server::from_tcp_rustls(listener.into_std()?, tls)?;
                info!(dialect = l.dialect.as_str(), %addr, tls = true, cert = %files.cert.display(), "listening");
                let handle = axum_server::Handle::new();
                let stopper = handle.clone();
                tokio::spawn(async move {
                    stop.cancelled().await;
                    stopper.graceful_shutdown(None);
                });
                tokio::spawn(async move {
                    let serve = server.handle(handle).serve(router.into_make_service_with_connect_info::<SocketAddr>());
                    if let Err(e) = serve.await {
                        warn!(error = %e, "listener failed");
                    }
                })
            }
        };
        addrs.push(addr);
        servers.push(task);
    }
    let ticker = hub.spawn_ticker(Duration::from_millis(250), stop.clone());
    let deadline = config.shutdown_deadline;
    let tracker_done = tracker.clone();
    let stop_wait = stop.clone();
    let hub_done = hub.clone();
    let done = tokio::spawn(async move {
        stop_wait.cancelled().await;
        hub_done.shutdown();
        tracker_done.close();
        if tokio::time::timeout(deadline, tracker_done.wait()).await.is_err() {
            warn!(open = tracker_done.len(), "shutdown deadline passed with connections still open");
        }
        for s in servers {
            s.abort();
        }
        ticker.abort();
        // Peers whose clients did not come back here resume on another
        // node; what waits for them goes there first.
        if let Some(link) = link {
            link.leave().await;
        }
        if let Some(turn) = turn {
            turn.stop().await;
        }
    });
    let spaces = config.listeners.iter().map(ListenerConfig::space).collect();
    Ok(Running { addrs, spaces, hub, stop, done })
}

/// Runs the configured server until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let schemes: Vec<&str> =
        config.listeners.iter().map(|l| if l.tls_files().is_some() { "https" } else { "http" }).collect();
    let running = start(config).await?;
    for (addr, scheme) in running.addrs.iter().zip(schemes) {
        info!("open {scheme}://{addr}/");
    }
    shutdown.await;
    info!("shutting down");
    running.shutdown().await;
    Ok(())
}

fn bind_hint(l: &ListenerConfig) -> String {
    format!(
        "cannot listen on {} for the {} dialect: is another program using that port? Choose another with --listen",
        l.listen,
        l.dialect.as_str()
    )
}

fn router_for(l: &ListenerConfig, app: App) -> Router {
    let static_dir = l.static_dir.as_deref();
    let (routes, static_dir) = match l.dialect {
        DialectKind::Native => (routes::native::routes(app.clone()), static_dir),
        // Serves its own static files, behind its any-path WebSocket.
        DialectKind::Flutter => (routes::flutter::routes(app.clone(), static_dir), None),
        DialectKind::Peerjs => (routes::peerjs::routes(app.clone()), static_dir),
        DialectKind::Basic => (routes::basic::routes(app.clone()), static_dir),
        DialectKind::One2one => (routes::one2one::routes(app.clone()), static_dir),
        DialectKind::Matchbox => (routes::matchbox::routes(app.clone()), static_dir),
        // socket.io must wrap everything, static files included.
        DialectKind::Offers => return routes::offers::router(app, static_dir),
        DialectKind::Easyrtc => return routes::easyrtc::router(app, static_dir),
    };
    let router = routes::ops::with_common(routes, static_dir, app.clone());
    match l.dialect {
        // (`offers` returned above: its socket.io layer wraps everything.)
        DialectKind::Native
        | DialectKind::Flutter
        | DialectKind::Peerjs
        | DialectKind::Offers
        | DialectKind::Easyrtc => router,
        // Wraps the ops routes and static files too: every path upgrades.
        DialectKind::Basic => routes::basic::upgrade_any_path(router, app),
        DialectKind::One2one => routes::one2one::refuse_other_upgrades(router),
        // Wraps the ops routes too: a room may be called `ice` or `metrics`.
        DialectKind::Matchbox => routes::matchbox::upgrade_rooms(router, app),
    }
}
