//! Flags, environment variables and the `[turn]` table of the config file for
//! TURN credentials and the embedded TURN server, validated into an
//! [`IceConfig`] and a [`TurnConfig`]. Flags win over the file.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use crate::ice::{IceConfig, IceServer, Minted, Secret, is_ice_url};
use crate::turn::peers::PeerPolicy;

/// How long minted TURN credentials stay valid by default: a day, so a call
/// started in the evening still has them the next morning.
pub const DEFAULT_CREDENTIAL_TTL: Duration = Duration::from_secs(86_400);

/// TURN flags. In the config file they form the `[turn]` table, without the
/// `turn-` prefix and with underscores (`credential_ttl = 3600`).
#[derive(Args, Deserialize, Debug, Default, Clone)]
#[serde(default, deny_unknown_fields)]
#[command(next_help_heading = "TURN")]
pub struct TurnArgs {
    /// Shared secret for time-limited TURN credentials (coturn `use-auth-secret`
    /// / `static-auth-secret`): each client gets its own `<expiry>:<user>` username.
    #[arg(id = "turn_secret", long = "turn-secret", env = "SWITCHBOARD_TURN_SECRET", hide_env_values = true)]
    pub secret: Option<Secret>,
    /// TURN (or STUN) URL of a server that shares --turn-secret, e.g. an
    /// external coturn; clients get credentials minted for it. Repeatable.
    #[arg(
        id = "turn_urls",
        long = "turn-url",
        env = "SWITCHBOARD_TURN_URLS",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub urls: Vec<String>,
    /// Seconds a minted TURN credential stays valid [default: 86400].
    #[arg(
        id = "turn_credential_ttl",
        long = "turn-credential-ttl",
        env = "SWITCHBOARD_TURN_CREDENTIAL_TTL",
        value_name = "SECS"
    )]
    pub credential_ttl: Option<u64>,
    /// Run the embedded STUN/TURN server on this UDP address (e.g. 0.0.0.0:3478).
    #[arg(id = "turn_listen", long = "turn-listen", env = "SWITCHBOARD_TURN_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// UDP ports the embedded server relays on, LOW-HIGH [default: 49152-65535].
    #[arg(
        id = "turn_relay_ports",
        long = "turn-relay-ports",
        env = "SWITCHBOARD_TURN_RELAY_PORTS",
        value_name = "LOW-HIGH"
    )]
    pub relay_ports: Option<String>,
    /// Public address of this machine, put in relayed candidates and in the
    /// URLs handed to clients [default: the --turn-listen IP, or a guess from
    /// the network interfaces when that is 0.0.0.0].
    #[arg(id = "turn_public_ip", long = "turn-public-ip", env = "SWITCHBOARD_TURN_PUBLIC_IP", value_name = "IP")]
    pub public_ip: Option<IpAddr>,
    /// Realm of the embedded server [default: switchboard].
    #[arg(id = "turn_realm", long = "turn-realm", env = "SWITCHBOARD_TURN_REALM")]
    pub realm: Option<String>,
    /// Most allocations one user (one minted credential) may hold at once on
    /// the embedded server [default: 16].
    #[arg(id = "turn_max_allocations", long = "turn-max-allocations", env = "SWITCHBOARD_TURN_MAX_ALLOCATIONS")]
    pub max_allocations: Option<usize>,
    /// Seconds an allocation on the embedded server may relay nothing before
    /// it is closed [default: 300].
    #[arg(
        id = "turn_idle_timeout",
        long = "turn-idle-timeout",
        env = "SWITCHBOARD_TURN_IDLE_TIMEOUT",
        value_name = "SECS"
    )]
    pub idle_timeout: Option<u64>,
    /// Let the embedded server relay to loopback peers (127.0.0.1, ::1): for
    /// testing with both ends on this machine. Private, link-local, multicast
    /// and unspecified peers stay refused.
    #[arg(
        id = "turn_allow_loopback_peers",
        long = "turn-allow-loopback-peers",
        env = "SWITCHBOARD_TURN_ALLOW_LOOPBACK_PEERS"
    )]
    pub allow_loopback_peers: bool,
}

/// Settings of the embedded STUN/TURN server.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnConfig {
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// Secret credentials are checked with (shared with the minted ones).
    pub secret: Secret,
    /// Realm announced to clients.
    pub realm: String,
    /// Ports relay sockets may use.
    pub relay_ports: RangeInclusive<u16>,
    /// Address put in relayed candidates and in the URLs handed out.
    pub public_ip: IpAddr,
    /// Most live allocations per user.
    pub max_allocations: usize,
    /// An allocation relaying nothing this long is closed.
    pub idle_timeout: Duration,
    /// Which peers may be relayed to.
    pub peers: PeerPolicy,
    /// Whether clients are handed this server's URLs (when no other ICE
    /// server is configured); filled in once its port is known.
    pub advertise: bool,
}

/// Default relay ports: the IANA dynamic range, as coturn uses.
pub const DEFAULT_RELAY_PORTS: RangeInclusive<u16> = 49152..=65535;

impl TurnArgs {
    /// Flags first, then the file's `[turn]` table.
    fn merge(flags: &TurnArgs, file: &TurnArgs) -> TurnArgs {
        TurnArgs {
            secret: flags.secret.clone().or(file.secret.clone()),
            urls: if flags.urls.is_empty() { file.urls.clone() } else { flags.urls.clone() },
            credential_ttl: flags.credential_ttl.or(file.credential_ttl),
            listen: flags.listen.or(file.listen),
            relay_ports: flags.relay_ports.clone().or(file.relay_ports.clone()),
            public_ip: flags.public_ip.or(file.public_ip),
            realm: flags.realm.clone().or(file.realm.clone()),
            max_allocations: flags.max_allocations.or(file.max_allocations),
            idle_timeout: flags.idle_timeout.or(file.idle_timeout),
            allow_loopback_peers: flags.allow_loopback_peers || file.allow_loopback_peers,
        }
    }
}

/// Validates the ICE settings: `fixed` entries (from `--ice-server` or the
/// file's `ice_servers`) and the TURN flags and table.
pub fn resolve(
    flags: &TurnArgs,
    file: &TurnArgs,
    fixed: Vec<IceServer>,
) -> anyhow::Result<(IceConfig, Option<TurnConfig>)> {
    let a = TurnArgs::merge(flags, file);
    for url in fixed.iter().flat_map(|s| s.urls.iter()).chain(&a.urls) {
        if !is_ice_url(url) {
            bail!("ICE server URL {url:?} must start with stun:, stuns:, turn: or turns:");
        }
    }
    let ttl = Duration::from_secs(a.credential_ttl.unwrap_or(DEFAULT_CREDENTIAL_TTL.as_secs()));
    if ttl < Duration::from_secs(60) {
        bail!("--turn-credential-ttl must be at least 60 seconds (got {})", ttl.as_secs());
    }
    if !a.urls.is_empty() && a.secret.is_none() {
        bail!("--turn-url needs --turn-secret: the secret the TURN server checks credentials with");
    }
    let turn = match a.listen {
        None => {
            if a.relay_ports.is_some() || a.public_ip.is_some() || a.allow_loopback_peers {
                bail!("--turn-relay-ports, --turn-public-ip and --turn-allow-loopback-peers need --turn-listen");
            }
            None
        }
        Some(listen) => Some(embedded(&a, listen, fixed.is_empty() && a.urls.is_empty())?),
    };
    if a.secret.is_some() && a.urls.is_empty() && turn.is_none() {
        tracing::warn!(
            "--turn-secret is unused: give --turn-url (an external TURN server) or --turn-listen (the embedded one)"
        );
    }
    // Without --turn-secret the embedded server makes up its own, shared with nobody.
    let secret = a.secret.or_else(|| turn.as_ref().map(|t| t.secret.clone()));
    let minted = match secret {
        Some(secret) if !a.urls.is_empty() || turn.as_ref().is_some_and(|t| t.advertise) => {
            // The embedded server's URLs are added once it is bound.
            Some(Minted { urls: a.urls, secret, ttl })
        }
        _ => None,
    };
    Ok((IceConfig { fixed, minted }, turn))
}

fn embedded(a: &TurnArgs, listen: SocketAddr, advertise: bool) -> anyhow::Result<TurnConfig> {
    let relay_ports = match &a.relay_ports {
        None => DEFAULT_RELAY_PORTS,
        Some(text) => parse_ports(text).with_context(|| format!("--turn-relay-ports {text:?}"))?,
    };
    let public_ip = match a.public_ip {
        Some(ip) => ip,
        None if !listen.ip().is_unspecified() => listen.ip(),
        None => guess_public_ip(listen.ip().is_ipv4()).context(
            "--turn-listen is a wildcard address and no interface has an address to announce: give --turn-public-ip",
        )?,
    };
    if public_ip.is_unspecified() {
        bail!("--turn-public-ip must be an address clients can reach, not {public_ip}");
    }
    let realm = a.realm.clone().unwrap_or_else(|| "switchboard".into());
    if realm.is_empty() || realm.len() > 127 {
        bail!("--turn-realm must be 1 to 127 characters");
    }
    let max_allocations = a.max_allocations.unwrap_or(16);
    if max_allocations == 0 {
        bail!("--turn-max-allocations must be at least 1");
    }
    let idle_timeout = Duration::from_secs(a.idle_timeout.unwrap_or(300));
    if idle_timeout < Duration::from_secs(1) {
        bail!("--turn-idle-timeout must be at least 1 second");
    }
    Ok(TurnConfig {
        listen,
        secret: a.secret.clone().unwrap_or_else(Secret::random),
        realm,
        relay_ports,
        public_ip,
        max_allocations,
        idle_timeout,
        peers: PeerPolicy { allow_loopback: a.allow_loopback_peers },
        advertise,
    })
}

/// `LOW-HIGH`, both non-zero, LOW <= HIGH.
fn parse_ports(text: &str) -> anyhow::Result<RangeInclusive<u16>> {
    let (low, high) = text.split_once('-').context("expected LOW-HIGH, e.g. 49152-65535")?;
    let low: u16 = low.trim().parse().context("LOW is not a port number")?;
    let high: u16 = high.trim().parse().context("HIGH is not a port number")?;
    if low == 0 || low > high {
        bail!("expected 1 <= LOW <= HIGH");
    }
    Ok(low..=high)
}

/// The first address of a non-loopback interface in the listener's family.
fn guess_public_ip(ipv4: bool) -> Option<IpAddr> {
    let addrs = if_addrs::get_if_addrs().ok()?;
    let ip = addrs.iter().map(|i| i.ip()).find(|ip| !ip.is_loopback() && ip.is_ipv4() == ipv4)?;
    tracing::warn!(
        "--turn-listen is a wildcard address: announcing relays on {ip}; give --turn-public-ip if clients reach this machine by another address"
    );
    Some(ip)
}
