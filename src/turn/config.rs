//! Flags, environment variables and the `[turn]` table of the config file for
//! TURN credentials, validated into an [`IceConfig`]. Flags win over the file.

use std::time::Duration;

use anyhow::bail;
use clap::Args;
use serde::Deserialize;

use crate::ice::{IceConfig, IceServer, Minted, Secret, is_ice_url};

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
}

impl TurnArgs {
    /// Flags first, then the file's `[turn]` table.
    fn merge(flags: &TurnArgs, file: &TurnArgs) -> TurnArgs {
        TurnArgs {
            secret: flags.secret.clone().or(file.secret.clone()),
            urls: if flags.urls.is_empty() { file.urls.clone() } else { flags.urls.clone() },
            credential_ttl: flags.credential_ttl.or(file.credential_ttl),
        }
    }
}

/// Validates the ICE settings: `fixed` entries (from `--ice-server` or the
/// file's `ice_servers`) and the TURN flags and table.
pub fn resolve(flags: &TurnArgs, file: &TurnArgs, fixed: Vec<IceServer>) -> anyhow::Result<IceConfig> {
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
    let minted = match (a.urls.is_empty(), a.secret) {
        (true, _) => None,
        (false, None) => bail!("--turn-url needs --turn-secret: the secret the TURN server checks credentials with"),
        (false, Some(secret)) => Some(Minted { urls: a.urls, secret, ttl }),
    };
    Ok(IceConfig { fixed, minted })
}
