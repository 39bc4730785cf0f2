//! Configuration: command-line flags (each also a `SWITCHBOARD_*` variable),
//! an optional TOML file, and defaults, validated once into a [`Config`].
//!
//! Precedence: flag or environment variable, then the file, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::auth::Verifier;
use crate::dialect::DialectKind;
use crate::hub::SpaceId;
use crate::ice::{IceConfig, IceServer, Secret};
use crate::transport::tls::TlsFiles;
use crate::transport::ws::ConnLimits;
use crate::turn::config::{TurnArgs, TurnConfig};

/// Command line of the `switchboard` binary.
#[derive(Parser, Debug)]
#[command(
    name = "switchboard",
    version,
    about = "WebRTC signaling server with a built-in call app.\n\nWith no arguments it serves the call app and the native protocol on http://127.0.0.1:8080: open it in two tabs and call."
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Cmd>,
    /// Server settings.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the server (the default).
    Serve,
    /// Create a local CA and a certificate for this machine (localhost,
    /// 127.0.0.1, ::1, LAN addresses) and print how to trust the CA.
    Cert(CertArgs),
    /// Print an access token (JWT) for testing a server started with
    /// --auth-secret (or --auth-public-key, given the private key).
    Token(TokenArgs),
}

/// Flags of `switchboard token`.
#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// Who the holder is: the one name it may claim.
    #[arg(long, value_name = "NAME")]
    pub sub: String,
    /// A room it may join; repeatable; `*` for any room.
    #[arg(long = "room", value_name = "ROOM")]
    pub rooms: Vec<String>,
    /// How long it is accepted at connect: 30s, 15m, 1h, 2d.
    #[arg(long, default_value = "1h", value_parser = crate::auth::parse_ttl)]
    pub ttl: Duration,
    /// Shared secret to sign with (HS256), as the server's --auth-secret.
    #[arg(long, env = "SWITCHBOARD_AUTH_SECRET", hide_env_values = true, value_name = "SECRET")]
    pub auth_secret: Option<Secret>,
    /// Private key (PEM) to sign with instead: ES256 (P-256) or RS256.
    #[arg(long, value_name = "FILE", conflicts_with = "auth_secret")]
    pub private_key: Option<PathBuf>,
    /// Config file to read `auth_secret` from.
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Flags of `switchboard cert`.
#[derive(Args, Debug, Clone)]
pub struct CertArgs {
    /// Directory to write ca.crt, ca.key, cert.crt, cert.key and
    /// ssl/server.{cert,key} into (an existing CA there is reused).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Extra host name or IP address the certificate must cover; repeatable.
    #[arg(long = "name", value_name = "NAME")]
    pub names: Vec<String>,
}

/// Flags of the server; each one can also be set by its environment variable.
#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// TOML configuration file (see examples/); flags override it.
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1 and the dialect's port: native 8080,
    /// basic 8888, one2one 8000 or $PORT, flutter 8086, matchbox 3536].
    #[arg(long, env = "SWITCHBOARD_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Wire protocol of that listener [default: native].
    #[arg(long, env = "SWITCHBOARD_DIALECT", value_name = "NAME")]
    pub dialect: Option<DialectKind>,
    /// Serve this directory's files at / (an app's own client files).
    #[arg(long = "static", env = "SWITCHBOARD_STATIC", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
    /// TLS certificate chain (PEM) for that listener: serve HTTPS/WSS.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) matching --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS/WSS even without --tls-cert, with a development certificate
    /// generated on demand (see `switchboard cert`).
    #[arg(long, env = "SWITCHBOARD_TLS", conflicts_with = "no_tls")]
    pub tls: bool,
    /// Serve plain HTTP/WS even for a dialect whose original used TLS
    /// (offers, flutter), e.g. behind a TLS-terminating proxy.
    #[arg(long, env = "SWITCHBOARD_NO_TLS")]
    pub no_tls: bool,
    /// STUN/TURN server URL handed to clients; repeat for several.
    #[arg(long = "ice-server", env = "SWITCHBOARD_ICE_SERVERS", value_delimiter = ',', value_name = "URL")]
    pub ice_servers: Vec<String>,
    /// Username for the TURN servers given with --ice-server.
    #[arg(long, env = "SWITCHBOARD_ICE_USERNAME")]
    pub ice_username: Option<String>,
    /// Credential for the TURN servers given with --ice-server.
    #[arg(long, env = "SWITCHBOARD_ICE_CREDENTIAL", hide_env_values = true)]
    pub ice_credential: Option<Secret>,
    /// Largest message accepted, in bytes [default: 65536].
    #[arg(long, env = "SWITCHBOARD_MAX_FRAME", value_name = "BYTES")]
    pub max_frame: Option<usize>,
    /// Messages per second one connection may send; 0 = unlimited [default: 2000].
    #[arg(long, env = "SWITCHBOARD_RATE")]
    pub rate: Option<u32>,
    /// Burst allowed above --rate [default: 4000].
    #[arg(long, env = "SWITCHBOARD_BURST")]
    pub burst: Option<u32>,
    /// Most simultaneous connections per process [default: 100000].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most simultaneous connections from one client address [default: 64].
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// New connections per second one client address may open (twice that
    /// in a burst) [default: 20].
    #[arg(long, env = "SWITCHBOARD_CONNECT_RATE")]
    pub connect_rate: Option<u32>,
    /// Address of a proxy in front of switchboard whose `X-Forwarded-For`
    /// names the client (repeatable); without it the header is ignored.
    #[arg(long = "trusted-proxy", env = "SWITCHBOARD_TRUSTED_PROXY", value_name = "IP", value_delimiter = ',')]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Origins whose pages may connect (e.g. https://app.example.com;
    /// repeatable); requests from browsers on other origins are refused.
    /// Default: any origin.
    #[arg(long = "allowed-origin", env = "SWITCHBOARD_ALLOWED_ORIGINS", value_name = "ORIGIN", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Seconds a dropped peer may resume with its token [default: 30].
    #[arg(long, env = "SWITCHBOARD_GRACE", value_name = "SECS")]
    pub grace: Option<u64>,
    /// Seconds a call rings before it times out [default: 30].
    #[arg(long, env = "SWITCHBOARD_RING_TIMEOUT", value_name = "SECS")]
    pub ring_timeout: Option<u64>,
    /// Most members of a room (mesh call) [default: 4].
    #[arg(long, env = "SWITCHBOARD_ROOM_MAX")]
    pub room_max: Option<usize>,
    /// Bytes waiting for one client before whoever sends to it must wait
    /// (it may hold twice this) [default: 1048576].
    #[arg(long, env = "SWITCHBOARD_QUEUE_BYTES", value_name = "BYTES")]
    pub queue_bytes: Option<usize>,
    /// Bytes waiting for all clients together, past which sends are refused
    /// [default: 1073741824].
    #[arg(long, env = "SWITCHBOARD_QUEUE_TOTAL_BYTES", value_name = "BYTES")]
    pub queue_total_bytes: Option<usize>,
    /// Seconds a client's full queue may go unread before it is closed as
    /// too slow [default: 10].
    #[arg(long, env = "SWITCHBOARD_SLOW_AFTER", value_name = "SECS")]
    pub slow_after: Option<u64>,
    /// socket.io client bundle served at /socket.io/socket.io.js (`offers`);
    /// by default node_modules/socket.io-client is searched in --static and
    /// the current directory.
    #[arg(long, env = "SWITCHBOARD_SOCKETIO_CLIENT", value_name = "FILE")]
    pub socketio_client: Option<PathBuf>,
    /// socket.io 1.x client bundle served at /socket.io/socket.io.js
    /// (`easyrtc`); by default node_modules/socket.io-client (1.x) is
    /// searched in --static and the current directory.
    #[arg(long, env = "SWITCHBOARD_SOCKETIO1_CLIENT", value_name = "FILE")]
    pub socketio1_client: Option<PathBuf>,
    /// Folder of EasyRTC's browser API (`api/` of the npm package `easyrtc`),
    /// served at /easyrtc/ (`easyrtc`); by default node_modules/easyrtc/api
    /// is searched in --static and the current directory.
    #[arg(long, env = "SWITCHBOARD_EASYRTC_API", value_name = "DIR")]
    pub easyrtc_api: Option<PathBuf>,
    /// Seconds to wait for connections to close on shutdown [default: 5].
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_DEADLINE", value_name = "SECS")]
    pub shutdown_deadline: Option<u64>,
    /// Join a cluster of nodes through this Redis (`redis://host:port`,
    /// `rediss://` for TLS); see docs/cluster.md. Without it, this node
    /// works alone.
    #[arg(long, env = "SWITCHBOARD_REDIS", value_name = "URL", help_heading = "Cluster")]
    pub redis: Option<String>,
    /// Name of the cluster: nodes on one Redis with the same name act as
    /// one server [default: switchboard].
    #[arg(long, env = "SWITCHBOARD_CLUSTER", value_name = "NAME", help_heading = "Cluster")]
    pub cluster: Option<String>,
    /// Seconds after which a silent node counts as dead: its peers are away
    /// and may resume on another node [default: 5; at most 10].
    #[arg(long, env = "SWITCHBOARD_NODE_TIMEOUT", value_name = "SECS", help_heading = "Cluster")]
    pub node_timeout: Option<u64>,
    /// Require an access token (JWT, HS256 signed with this secret) on every
    /// connection and on the endpoints that reveal state (docs/security.md).
    #[arg(
        long,
        env = "SWITCHBOARD_AUTH_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Authentication"
    )]
    pub auth_secret: Option<Secret>,
    /// Require an access token signed with the private half of this public
    /// key (PEM: RSA for RS256, EC for ES256, or Ed25519) instead.
    #[arg(
        long,
        env = "SWITCHBOARD_AUTH_PUBLIC_KEY",
        value_name = "FILE",
        conflicts_with = "auth_secret",
        help_heading = "Authentication"
    )]
    pub auth_public_key: Option<PathBuf>,
    /// Bearer token that /metrics requires (Authorization: Bearer TOKEN);
    /// without it, /metrics takes an access token when auth is on.
    #[arg(
        long,
        env = "SWITCHBOARD_METRICS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = "Authentication"
    )]
    pub metrics_token: Option<Secret>,
    /// Settings of the peerjs dialect.
    #[command(flatten)]
    pub peerjs: PeerjsArgs,
    /// TURN credentials and the embedded TURN server.
    #[command(flatten)]
    pub turn: TurnArgs,
}

/// Flags of the peerjs dialect, named as the PeerJS server (`peer`) names
/// them; its underscore spellings are accepted too. In the config file they
/// form the `[peerjs]` table (with underscores: `expire_timeout = 5000`).
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "PeerJS dialect")]
pub struct PeerjsArgs {
    /// PeerJS key clients must give [default: peerjs].
    #[arg(long, env = "SWITCHBOARD_PEERJS_KEY")]
    pub key: Option<String>,
    /// Path the PeerJS API is served under; the WebSocket is {path}peerjs [default: /].
    #[arg(long, env = "SWITCHBOARD_PEERJS_PATH")]
    pub path: Option<String>,
    /// Serve the list of connected ids at {path}{key}/peers.
    #[arg(long, alias = "allow_discovery", env = "SWITCHBOARD_PEERJS_ALLOW_DISCOVERY")]
    pub allow_discovery: bool,
    /// Milliseconds a message for an id that is not connected is held before its sender gets EXPIRE [default: 5000].
    #[arg(long, alias = "expire_timeout", env = "SWITCHBOARD_PEERJS_EXPIRE_TIMEOUT", value_name = "MS")]
    pub expire_timeout: Option<u64>,
    /// Milliseconds a connection may stay silent (no message, heartbeat or pong) before it is dropped [default: 60000].
    #[arg(long, alias = "alive_timeout", env = "SWITCHBOARD_PEERJS_ALIVE_TIMEOUT", value_name = "MS")]
    pub alive_timeout: Option<u64>,
    /// Most PeerJS clients connected at once [default: 5000].
    #[arg(long, alias = "concurrent_limit", env = "SWITCHBOARD_PEERJS_CONCURRENT_LIMIT")]
    pub concurrent_limit: Option<usize>,
}

/// Settings of the peerjs dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerjsConfig {
    /// Key clients must give.
    pub key: String,
    /// API path, starting and ending with `/`.
    pub path: String,
    /// Whether `{path}{key}/peers` lists connected ids.
    pub allow_discovery: bool,
    /// How long messages for an absent id are held.
    pub expire_timeout: Duration,
    /// How long a silent connection lives.
    pub alive_timeout: Duration,
    /// Most clients at once.
    pub concurrent_limit: usize,
}

impl Default for PeerjsConfig {
    fn default() -> Self {
        PeerjsConfig {
            key: "peerjs".into(),
            path: "/".into(),
            allow_discovery: false,
            expire_timeout: Duration::from_millis(5000),
            alive_timeout: Duration::from_millis(60_000),
            concurrent_limit: 5000,
        }
    }
}

impl PeerjsConfig {
    /// Flags first, then the file's `[peerjs]` table, then the defaults.
    fn from_args(flags: &PeerjsArgs, file: &PeerjsArgs) -> anyhow::Result<PeerjsConfig> {
        let a = PeerjsArgs {
            key: flags.key.clone().or(file.key.clone()),
            path: flags.path.clone().or(file.path.clone()),
            allow_discovery: flags.allow_discovery || file.allow_discovery,
            expire_timeout: flags.expire_timeout.or(file.expire_timeout),
            alive_timeout: flags.alive_timeout.or(file.alive_timeout),
            concurrent_limit: flags.concurrent_limit.or(file.concurrent_limit),
        };
        let d = PeerjsConfig::default();
        let path = a.path.clone().unwrap_or(d.path);
        if !path.starts_with('/') || path.contains(['?', '#', '{', '}', '*']) {
            bail!("--path must start with '/' and hold no '?', '#', '{{', '}}' or '*' (got {path:?})");
        }
        let path = if path.ends_with('/') { path } else { format!("{path}/") };
        let key = a.key.clone().unwrap_or(d.key);
        if key.is_empty() || key.contains(['/', '?', '#']) {
            bail!("--key must be non-empty and hold no '/', '?' or '#' (got {key:?})");
        }
        let config = PeerjsConfig {
            key,
            path,
            allow_discovery: a.allow_discovery,
            expire_timeout: a.expire_timeout.map(Duration::from_millis).unwrap_or(d.expire_timeout),
            alive_timeout: a.alive_timeout.map(Duration::from_millis).unwrap_or(d.alive_timeout),
            concurrent_limit: a.concurrent_limit.unwrap_or(d.concurrent_limit),
        };
        if config.alive_timeout < Duration::from_secs(1) {
            bail!("--alive-timeout is in milliseconds and must be at least 1000");
        }
        Ok(config)
    }
}

/// Settings of a node of a cluster (`--redis`; docs/cluster.md).
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// Redis URL.
    pub redis: String,
    /// Cluster name: the prefix of every key and channel.
    pub name: String,
    /// How long a node may be silent before it counts as dead.
    pub node_timeout: Duration,
}

impl ClusterConfig {
    /// Default of [`ClusterConfig::node_timeout`].
    pub const NODE_TIMEOUT: Duration = Duration::from_secs(5);
}

/// The TOML file. Every key is optional; unknown keys are an error.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listeners; if absent, one from the flags.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// `RTCIceServer` objects handed to clients.
    #[serde(default)]
    pub ice_servers: Vec<IceServer>,
    max_frame: Option<usize>,
    rate: Option<u32>,
    burst: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    connect_rate: Option<u32>,
    #[serde(default)]
    trusted_proxies: Vec<std::net::IpAddr>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    grace: Option<u64>,
    ring_timeout: Option<u64>,
    room_max: Option<usize>,
    queue_bytes: Option<usize>,
    queue_total_bytes: Option<usize>,
    slow_after: Option<u64>,
    shutdown_deadline: Option<u64>,
    socketio_client: Option<PathBuf>,
    socketio1_client: Option<PathBuf>,
    easyrtc_api: Option<PathBuf>,
    /// HS256 secret of access tokens (`--auth-secret`).
    auth_secret: Option<Secret>,
    /// Public key file of access tokens (`--auth-public-key`).
    auth_public_key: Option<PathBuf>,
    /// Bearer token of `/metrics` (`--metrics-token`).
    metrics_token: Option<Secret>,
    /// Settings of the peerjs dialect (`[peerjs]`).
    #[serde(default)]
    peerjs: PeerjsArgs,
    /// TURN settings (`[turn]`).
    #[serde(default)]
    turn: TurnArgs,
    /// Redis of the cluster (`--redis`).
    redis: Option<String>,
    /// Name of the cluster (`--cluster`).
    cluster: Option<String>,
    /// Seconds before a silent node counts as dead (`--node-timeout`).
    node_timeout: Option<u64>,
}

/// One listening socket and the dialect it speaks.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Wire protocol.
    pub dialect: DialectKind,
    /// Name of the listener's namespace (its names and rooms): listeners of
    /// the same name on every node of a cluster share one. Default: the
    /// dialect's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Address and port.
    pub listen: SocketAddr,
    /// Directory of static files to serve at `/`.
    #[serde(default, rename = "static")]
    pub static_dir: Option<PathBuf>,
    /// Serve HTTPS/WSS with these files (both or neither).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// Private key matching `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// `true`: serve HTTPS/WSS (with a development certificate when no files
    /// are given); `false`: plain; absent: as the dialect's original did.
    #[serde(default)]
    pub tls: Option<bool>,
}

impl ListenerConfig {
    /// A plain listener.
    pub fn plain(dialect: DialectKind, listen: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            dialect,
            name: None,
            listen,
            static_dir: None,
            tls_cert: None,
            tls_key: None,
            tls: Some(false),
        }
    }

    /// The listener's namespace: from its name (or dialect), never from its
    /// place in the config, so every node of a cluster agrees on it.
    pub fn space(&self) -> SpaceId {
        let name = self.name.as_deref().unwrap_or(self.dialect.as_str());
        // FNV-1a: stable across builds and platforms.
        let hash = name.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
        SpaceId(hash)
    }

    /// The TLS files, once resolved.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
            _ => None,
        }
    }

    /// Fills in certificate files for a listener that wants TLS: given ones,
    /// else the demo systems' conventional names in the working directory
    /// (`cert.crt`/`cert.key`, `ssl/server.cert`/`ssl/server.key`), else a
    /// development certificate generated on demand.
    fn resolve_tls(&mut self) -> anyhow::Result<()> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("listener {}: give both tls_cert and tls_key, or neither", self.listen);
        }
        if self.tls_cert.is_some() || !self.tls.unwrap_or(self.dialect.wants_tls()) {
            return Ok(());
        }
        for (cert, key) in [("cert.crt", "cert.key"), ("ssl/server.cert", "ssl/server.key")] {
            if Path::new(cert).is_file() && Path::new(key).is_file() {
                tracing::info!(cert, key, "using the TLS files found in the working directory");
                (self.tls_cert, self.tls_key) = (Some(cert.into()), Some(key.into()));
                return Ok(());
            }
        }
        let files = dev_certificate()?;
        (self.tls_cert, self.tls_key) = (Some(files.cert), Some(files.key));
        Ok(())
    }
}

/// The development certificate in the user's data directory, made on first use.
fn dev_certificate() -> anyhow::Result<TlsFiles> {
    let dir = match std::env::var_os("SWITCHBOARD_CERT_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            let base = std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
            base.context("cannot find a directory for the development certificate: set SWITCHBOARD_CERT_DIR")?
                .join("switchboard/certs")
        }
    };
    let files = TlsFiles { cert: dir.join("cert.crt"), key: dir.join("cert.key") };
    if files.cert.is_file() && files.key.is_file() {
        return Ok(files);
    }
    let made = crate::cert::generate(&dir, &crate::cert::machine_names(&[]))?;
    tracing::warn!(
        "no TLS certificate given: generated a development certificate in {}.\n{}",
        dir.display(),
        crate::cert::trust_instructions(&made.ca_cert)
    );
    Ok(made.leaf)
}

/// Validated settings of the whole process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listeners, at least one.
    pub listeners: Vec<ListenerConfig>,
    /// The ICE servers handed to clients (see [`crate::ice`]).
    pub ice: IceConfig,
    /// The embedded STUN/TURN server, if `--turn-listen` asks for one.
    pub turn: Option<TurnConfig>,
    /// Per-connection limits.
    pub conn: ConnLimits,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// Who may connect, from where, how fast.
    pub entry: EntryLimits,
    /// Resume grace.
    pub grace: Duration,
    /// Ring timeout.
    pub ring_timeout: Duration,
    /// Most members of a room.
    pub room_max: usize,
    /// Bytes waiting for one client before its senders must wait.
    pub queue_bytes: usize,
    /// Bytes waiting for all clients together.
    pub queue_total_bytes: usize,
    /// How long a full queue may go unread before its client is dropped.
    pub slow_after: Duration,
    /// Events kept for a dropped peer until it resumes.
    pub away_queue: usize,
    /// How long shutdown waits for connections to close.
    pub shutdown_deadline: Duration,
    /// Settings of the peerjs dialect.
    pub peerjs: PeerjsConfig,
    /// socket.io client bundle to serve (`offers`), if given.
    pub socketio_client: Option<PathBuf>,
    /// socket.io 1.x client bundle to serve (`easyrtc`), if given.
    pub socketio1_client: Option<PathBuf>,
    /// EasyRTC's browser API folder to serve at /easyrtc/, if given.
    pub easyrtc_api: Option<PathBuf>,
    /// Checks access tokens; `None`: authentication is off.
    pub auth: Option<Verifier>,
    /// Bearer token `/metrics` requires, if set.
    pub metrics_token: Option<Secret>,
    /// Node of a cluster over Redis, if any.
    pub cluster: Option<ClusterConfig>,
}

/// Limits applied at admission, before a connection is accepted.
#[derive(Clone, Debug)]
pub struct EntryLimits {
    /// Most simultaneous connections from one client address.
    pub per_ip: usize,
    /// New connections per second from one client address (0 = unlimited).
    pub connect_rate: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Origins allowed to connect; empty: any.
    pub allowed_origins: Vec<String>,
}

impl Default for EntryLimits {
    fn default() -> Self {
        // A household or office behind one NAT: a few dozen tabs at once.
        EntryLimits { per_ip: 64, connect_rate: 20, trusted_proxies: Vec::new(), allowed_origins: Vec::new() }
    }
}

/// Outbox size: far above one call's burst of ICE candidates and presence
/// updates, small enough that a stuck client costs little memory.
pub const OUTBOX_CAP: usize = 256;

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![ListenerConfig::plain(DialectKind::Native, SocketAddr::from(([127, 0, 0, 1], 8080)))],
            ice: IceConfig::default(),
            turn: None,
            conn: ConnLimits::default(),
            max_connections: 100_000,
            entry: EntryLimits::default(),
            grace: Duration::from_secs(30),
            ring_timeout: Duration::from_secs(30),
            room_max: 4,
            queue_bytes: 1 << 20,
            queue_total_bytes: 1 << 30,
            slow_after: Duration::from_secs(10),
            away_queue: OUTBOX_CAP,
            shutdown_deadline: Duration::from_secs(5),
            peerjs: PeerjsConfig::default(),
            socketio_client: None,
            socketio1_client: None,
            easyrtc_api: None,
            auth: None,
            metrics_token: None,
            cluster: None,
        }
    }
}

impl Config {
    /// A config for tests and embedding: one listener of `dialect` on `listen`.
    pub fn single(dialect: DialectKind, listen: SocketAddr) -> Config {
        Config { listeners: vec![ListenerConfig::plain(dialect, listen)], ..Config::default() }
    }

    /// Builds the config from flags (and env), reading `--config` if given.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let d = Config::default();
        let mut listeners = if !file.listeners.is_empty() && args.listen.is_none() && args.dialect.is_none() {
            file.listeners.clone()
        } else {
            let dialect = args.dialect.unwrap_or(DialectKind::Native);
            vec![ListenerConfig {
                dialect,
                name: None,
                listen: match args.listen {
                    Some(addr) => addr,
                    None => default_listen(dialect, std::env::var("PORT").ok().as_deref())?,
                },
                static_dir: args.static_dir.clone(),
                tls_cert: args.tls_cert.clone(),
                tls_key: args.tls_key.clone(),
                tls: if args.tls {
                    Some(true)
                } else if args.no_tls {
                    Some(false)
                } else {
                    None
                },
            }]
        };
        for l in &mut listeners {
            l.resolve_tls()?;
        }
        let fixed_ice = if args.ice_servers.is_empty() {
            file.ice_servers.clone()
        } else {
            vec![IceServer {
                urls: args.ice_servers.clone(),
                username: args.ice_username.clone(),
                credential: args.ice_credential.clone(),
            }]
        };
        let (ice, turn) = crate::turn::config::resolve(&args.turn, &file.turn, fixed_ice)?;
        let secs = |flag: Option<u64>, file: Option<u64>, default: Duration| {
            flag.or(file).map(Duration::from_secs).unwrap_or(default)
        };
        let config = Config {
            listeners,
            ice,
            turn,
            conn: ConnLimits {
                max_frame: args.max_frame.or(file.max_frame).unwrap_or(d.conn.max_frame),
                rate: args.rate.or(file.rate).unwrap_or(d.conn.rate),
                burst: args.burst.or(file.burst).unwrap_or(d.conn.burst),
                ..d.conn.clone()
            },
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(d.max_connections),
            entry: EntryLimits {
                per_ip: args.max_connections_per_ip.or(file.max_connections_per_ip).unwrap_or(d.entry.per_ip),
                connect_rate: args.connect_rate.or(file.connect_rate).unwrap_or(d.entry.connect_rate),
                trusted_proxies: if args.trusted_proxies.is_empty() {
                    file.trusted_proxies.clone()
                } else {
                    args.trusted_proxies.clone()
                },
                allowed_origins: if args.allowed_origins.is_empty() {
                    file.allowed_origins.clone()
                } else {
                    args.allowed_origins.clone()
                },
            },
            grace: secs(args.grace, file.grace, d.grace),
            ring_timeout: secs(args.ring_timeout, file.ring_timeout, d.ring_timeout),
            room_max: args.room_max.or(file.room_max).unwrap_or(d.room_max),
            queue_bytes: args.queue_bytes.or(file.queue_bytes).unwrap_or(d.queue_bytes),
            queue_total_bytes: args.queue_total_bytes.or(file.queue_total_bytes).unwrap_or(d.queue_total_bytes),
            slow_after: secs(args.slow_after, file.slow_after, d.slow_after),
            away_queue: d.away_queue,
            shutdown_deadline: secs(args.shutdown_deadline, file.shutdown_deadline, d.shutdown_deadline),
            peerjs: PeerjsConfig::from_args(&args.peerjs, &file.peerjs)?,
            socketio_client: args.socketio_client.clone().or(file.socketio_client.clone()),
            socketio1_client: args.socketio1_client.clone().or(file.socketio1_client.clone()),
            easyrtc_api: args.easyrtc_api.clone().or(file.easyrtc_api.clone()),
            auth: auth_verifier(args, &file)?,
            metrics_token: args.metrics_token.clone().or(file.metrics_token.clone()),
            cluster: match args.redis.clone().or(file.redis.clone()) {
                None => None,
                Some(redis) => Some(ClusterConfig {
                    redis,
                    name: args.cluster.clone().or(file.cluster.clone()).unwrap_or_else(|| "switchboard".into()),
                    node_timeout: secs(args.node_timeout, file.node_timeout, ClusterConfig::NODE_TIMEOUT),
                }),
            },
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.listeners.is_empty() {
            bail!("no listener configured: give --listen or a [[listener]] table in the config file");
        }
        if self.conn.max_frame < 1024 {
            bail!("--max-frame must be at least 1024 bytes (got {})", self.conn.max_frame);
        }
        if self.conn.rate > 0 && self.conn.burst == 0 {
            bail!("--burst must be at least 1 when --rate is set");
        }
        if self.room_max < 2 {
            bail!("--room-max must be at least 2");
        }
        let mut spaces = std::collections::HashMap::new();
        for l in &self.listeners {
            if let Some(other) = spaces.insert(l.space(), l) {
                bail!(
                    "listeners on {} and {} share the namespace '{}': give each a distinct `name` in its [[listener]] table",
                    other.listen,
                    l.listen,
                    l.name.as_deref().unwrap_or(l.dialect.as_str())
                );
            }
        }
        if let Some(c) = &self.cluster {
            if !(c.redis.starts_with("redis://") || c.redis.starts_with("rediss://") || c.redis.starts_with("unix://"))
            {
                bail!("--redis {}: give a URL such as redis://127.0.0.1:6379 (rediss:// for TLS)", c.redis);
            }
            if c.node_timeout.is_zero() || c.node_timeout > Duration::from_secs(10) {
                bail!("--node-timeout must be 1 to 10 seconds");
            }
        }
        for l in &self.listeners {
            if let Some(dir) = &l.static_dir
                && !dir.is_dir()
            {
                bail!("--static {}: not a directory; give the folder holding the app's index.html", dir.display());
            }
        }
        if let Some(file) = &self.socketio_client
            && !file.is_file()
        {
            bail!(
                "--socketio-client {}: no such file; give the path of socket.io.js from the npm package socket.io-client (node_modules/socket.io-client/dist/socket.io.js)",
                file.display()
            );
        }
        if let Some(file) = &self.socketio1_client
            && !file.is_file()
        {
            bail!(
                "--socketio1-client {}: no such file; give the path of socket.io.js from the npm package socket.io-client 1.x (node_modules/socket.io-client/socket.io.js)",
                file.display()
            );
        }
        if let Some(dir) = &self.easyrtc_api
            && !dir.join("easyrtc.js").is_file()
        {
            bail!(
                "--easyrtc-api {}: no easyrtc.js there; give the api folder of the npm package easyrtc (node_modules/easyrtc/api)",
                dir.display()
            );
        }
        Ok(())
    }
}

/// Where a listener of `dialect` listens when no address is given: loopback
/// on the original system's port. `one2one` honours `port_env` (the `PORT`
/// variable) as the original does.
pub fn default_listen(dialect: DialectKind, port_env: Option<&str>) -> anyhow::Result<SocketAddr> {
    let port = match (dialect, port_env) {
        (DialectKind::One2one, Some(p)) if !p.trim().is_empty() => p.trim().parse::<u16>().map_err(|_| {
            anyhow::anyhow!("PORT={p:?} is not a port number; set PORT to 1-65535 or give --listen ADDR:PORT")
        })?,
        _ => return Ok(dialect.default_listen()),
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The token verifier the flags or the file ask for (flags win), if any.
fn auth_verifier(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Option<Verifier>> {
    let (secret, public_key) = if args.auth_secret.is_some() || args.auth_public_key.is_some() {
        (args.auth_secret.as_ref(), args.auth_public_key.as_ref())
    } else {
        (file.auth_secret.as_ref(), file.auth_public_key.as_ref())
    };
    match (secret, public_key) {
        (Some(_), Some(_)) => bail!("give auth_secret or auth_public_key, not both"),
        (Some(secret), None) => {
            if secret.expose().is_empty() {
                bail!("--auth-secret is empty; give a long random string (e.g. `openssl rand -hex 32`)");
            }
            if secret.expose().len() < 32 {
                tracing::warn!("--auth-secret is shorter than 32 bytes: easy to guess; use `openssl rand -hex 32`");
            }
            Ok(Some(Verifier::secret(secret.expose())))
        }
        (None, Some(path)) => Verifier::public_key_file(path).map(Some),
        (None, None) => Ok(None),
    }
}

/// The `auth_secret` of a config file, for `switchboard token --config`.
pub fn file_auth_secret(path: &Path) -> anyhow::Result<Option<Secret>> {
    Ok(load_file(path)?.auth_secret)
}

fn load_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}
