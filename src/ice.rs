//! The ICE servers handed to clients, decided in one place: fixed STUN/TURN
//! entries (with static credentials), and TURN credentials minted per client
//! from a shared secret in the coturn REST format (`use-auth-secret`).
//!
//! Pure: no I/O, and time is an input. It must not log: what it returns holds
//! credentials, and [`Secret`] is how they stay out of `Debug` output.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::hmac;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// A secret (a TURN shared secret, a static TURN credential): `Debug` prints
/// `MASKED`, so a secret never reaches a log line through `{:?}`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// A random secret (32 hex digits) for a process that mints and checks
    /// its own credentials and shares them with nobody.
    pub fn random() -> Secret {
        Secret(format!("{:032x}", rand::random::<u128>()))
    }

    /// The secret itself: only for computing a MAC or handing a credential
    /// to the client it was minted for.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MASKED")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// One `RTCIceServer`: as given in a config file (`urls` a string or a list)
/// or minted.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs.
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default)]
    pub username: Option<String>,
    /// TURN password.
    #[serde(default)]
    pub credential: Option<Secret>,
}

impl IceServer {
    /// The `RTCIceServer` JSON object handed to a client (with its credential).
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "urls": self.urls });
        if let Some(u) = &self.username {
            v["username"] = json!(u);
        }
        if let Some(c) = &self.credential {
            v["credential"] = json!(c.expose());
        }
        v
    }

    /// Whether any URL is a TURN one (`turn:` or `turns:`).
    pub fn has_turn(&self) -> bool {
        self.urls.iter().any(|u| is_turn(u))
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Whether `url` names a TURN server (which needs credentials).
pub fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// Whether `url` has a scheme an `RTCIceServer` accepts.
pub fn is_ice_url(url: &str) -> bool {
    ["stun:", "stuns:", "turn:", "turns:"].iter().any(|s| url.starts_with(s) && url.len() > s.len())
}

/// TURN credentials minted for every client from a shared secret.
#[derive(Clone, Debug, PartialEq)]
pub struct Minted {
    /// URLs the credentials are for; `stun:` ones are handed out without them.
    pub urls: Vec<String>,
    /// The secret shared with the TURN server (coturn `static-auth-secret`).
    pub secret: Secret,
    /// How long a minted credential stays valid.
    pub ttl: Duration,
}

/// Everything clients are told about ICE servers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IceConfig {
    /// Entries handed out as they are.
    pub fixed: Vec<IceServer>,
    /// Entries whose credentials are minted per client.
    pub minted: Option<Minted>,
}

/// What the configured servers can do for a call between two networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// No server: only peers that can reach each other directly connect.
    Nothing,
    /// STUN only: peers behind symmetric NATs or strict firewalls fail.
    StunOnly,
    /// At least one TURN server.
    Turn,
}

impl IceConfig {
    /// The servers for `user` at `now`: the fixed ones, then the minted ones
    /// (`stun:` URLs in an entry of their own, without credentials).
    pub fn servers_for(&self, user: &str, now: SystemTime) -> Vec<IceServer> {
        let mut out = self.fixed.clone();
        if let Some(m) = &self.minted {
            let (stun, turn): (Vec<String>, Vec<String>) = m.urls.iter().cloned().partition(|u| !is_turn(u));
            if !stun.is_empty() {
                out.push(IceServer { urls: stun, username: None, credential: None });
            }
            if !turn.is_empty() {
                let (username, credential) = mint(&m.secret, user, now, m.ttl);
                out.push(IceServer { urls: turn, username: Some(username), credential: Some(credential) });
            }
        }
        out
    }

    /// [`IceConfig::servers_for`] as a JSON array of `RTCIceServer` objects.
    pub fn json_for(&self, user: &str, now: SystemTime) -> Value {
        Value::Array(self.servers_for(user, now).iter().map(IceServer::to_json).collect())
    }

    /// What the configured servers cover.
    pub fn coverage(&self) -> Coverage {
        let minted = self.minted.iter().flat_map(|m| m.urls.iter());
        let mut urls = self.fixed.iter().flat_map(|s| s.urls.iter()).chain(minted).peekable();
        if urls.peek().is_none() {
            Coverage::Nothing
        } else if urls.any(|u| is_turn(u)) {
            Coverage::Turn
        } else {
            Coverage::StunOnly
        }
    }

    /// One line per URL saying what clients get for it, without any secret.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for s in &self.fixed {
            for u in &s.urls {
                lines.push(match (&s.username, &s.credential, is_turn(u)) {
                    (Some(name), Some(_), true) => format!("{u} (static credentials, username {name:?})"),
                    (_, _, true) => format!("{u} (no credentials: most TURN servers will refuse)"),
                    _ => u.clone(),
                });
            }
        }
        if let Some(m) = &self.minted {
            for u in &m.urls {
                lines.push(if is_turn(u) {
                    format!("{u} (credentials minted per client, valid {}s)", m.ttl.as_secs())
                } else {
                    u.clone()
                });
            }
        }
        lines
    }
}

/// A fresh name for the user part of minted credentials: one per connection
/// or per `/ice` request, so a credential's allocations can be told apart.
pub fn fresh_user() -> String {
    format!("{:012x}", rand::random::<u64>() >> 16)
}

/// The TURN REST username valid until `expires` (Unix seconds): `<expires>:<user>`.
pub fn rest_username(expires: u64, user: &str) -> String {
    format!("{expires}:{user}")
}

/// The TURN REST password of `username`: base64 of HMAC-SHA1(secret, username).
pub fn rest_password(secret: &Secret, username: &str) -> Secret {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.expose().as_bytes());
    Secret(BASE64.encode(hmac::sign(&key, username.as_bytes()).as_ref()))
}

/// Username and password for `user`, valid for `ttl` from `now`.
pub fn mint(secret: &Secret, user: &str, now: SystemTime, ttl: Duration) -> (String, Secret) {
    let expires = unix_secs(now).saturating_add(ttl.as_secs());
    let username = rest_username(expires, user);
    let password = rest_password(secret, &username);
    (username, password)
}

/// Why a TURN REST username is refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not `<expiry>:<user>` (or a bare `<expiry>`).
    #[error("the username is not <expiry unix time>:<user>")]
    Malformed,
    /// The expiry time has passed.
    #[error("the credential expired {0} s ago")]
    Expired(u64),
}

/// The password a client must prove for `username` at `now`, if `username`
/// is well formed and has not expired. The caller compares it (as TURN does,
/// through MESSAGE-INTEGRITY); this only derives it.
pub fn check(secret: &Secret, username: &str, now: SystemTime) -> Result<Secret, CredentialError> {
    let expiry = username.split_once(':').map_or(username, |(t, _)| t);
    let expiry: u64 = expiry.parse().map_err(|_| CredentialError::Malformed)?;
    let now = unix_secs(now);
    if expiry <= now {
        return Err(CredentialError::Expired(now - expiry));
    }
    Ok(rest_password(secret, username))
}

/// The user part of a TURN REST username (`p7` in `1700000000:p7`).
pub fn rest_user(username: &str) -> &str {
    username.split_once(':').map_or("", |(_, u)| u)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    // Expected values computed independently:
    // python3 -c "import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b'north', b'1700000000:p7', hashlib.sha1).digest()).decode())"
    // and: echo -n '1700000000:p7' | openssl dgst -sha1 -hmac north -binary | base64
    #[test]
    fn password_is_base64_of_hmac_sha1_of_the_username() {
        assert_eq!(rest_password(&Secret::new("north"), "1700000000:p7").expose(), "tjK/TfZA5vnYb1ueK8XYPggLFec=");
        assert_eq!(rest_password(&Secret::new("s3cret"), "1893456000:alice").expose(), "6zlfmlvWfWDvDds1Zc+zxTmSW8w=");
        // RFC 2202 test case 2 (HMAC-SHA1 "Jefe"), digest effcdf6a...9a7c79 in base64.
        assert_eq!(
            rest_password(&Secret::new("Jefe"), "what do ya want for nothing?").expose(),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn minted_username_is_expiry_colon_user() {
        let (username, password) = mint(&Secret::new("north"), "p7", at(1_699_913_600), Duration::from_secs(86_400));
        assert_eq!(username, "1700000000:p7");
        assert_eq!(password.expose(), "tjK/TfZA5vnYb1ueK8XYPggLFec=");
        assert_eq!(rest_user(&username), "p7");
    }

    #[test]
    fn check_accepts_until_expiry_and_refuses_after() {
        let secret = Secret::new("north");
        let ok = check(&secret, "1700000000:p7", at(1_699_999_999)).expect("one second left");
        assert_eq!(ok.expose(), "tjK/TfZA5vnYb1ueK8XYPggLFec=");
        assert_eq!(check(&secret, "1700000000:p7", at(1_700_000_000)), Err(CredentialError::Expired(0)));
        assert_eq!(check(&secret, "1700000000:p7", at(1_700_000_090)), Err(CredentialError::Expired(90)));
        assert_eq!(check(&secret, "soon:p7", at(0)), Err(CredentialError::Malformed));
        assert_eq!(check(&secret, "", at(0)), Err(CredentialError::Malformed));
        assert!(check(&secret, "1700000000", at(0)).is_ok(), "a bare expiry is a valid REST username");
    }

    #[test]
    fn a_minted_credential_checks_until_its_ttl_ends() {
        let secret = Secret::new("s");
        let (username, password) = mint(&secret, "u", at(1000), Duration::from_secs(60));
        assert_eq!(check(&secret, &username, at(1059)), Ok(password));
        assert_eq!(check(&secret, &username, at(1060)), Err(CredentialError::Expired(0)));
    }

    #[test]
    fn servers_for_puts_fixed_first_then_stun_then_minted_turn() {
        let ice = IceConfig {
            fixed: vec![IceServer { urls: vec!["stun:stun.example.org".into()], username: None, credential: None }],
            minted: Some(Minted {
                urls: vec!["stun:127.0.0.1:3478".into(), "turn:127.0.0.1:3478?transport=udp".into()],
                secret: Secret::new("north"),
                ttl: Duration::from_secs(86_400),
            }),
        };
        assert_eq!(
            ice.json_for("p7", at(1_699_913_600)),
            json!([
                {"urls": ["stun:stun.example.org"]},
                {"urls": ["stun:127.0.0.1:3478"]},
                {"urls": ["turn:127.0.0.1:3478?transport=udp"], "username": "1700000000:p7", "credential": "tjK/TfZA5vnYb1ueK8XYPggLFec="},
            ])
        );
        assert_eq!(ice.coverage(), Coverage::Turn);
    }

    #[test]
    fn coverage_tells_nothing_from_stun_only() {
        assert_eq!(IceConfig::default().coverage(), Coverage::Nothing);
        let stun = IceConfig {
            fixed: vec![IceServer { urls: vec!["stun:a".into()], username: None, credential: None }],
            minted: None,
        };
        assert_eq!(stun.coverage(), Coverage::StunOnly);
    }

    #[test]
    fn secrets_are_masked_in_debug_output() {
        let ice = IceConfig {
            fixed: vec![IceServer {
                urls: vec!["turn:a".into()],
                username: Some("u".into()),
                credential: Some(Secret::new("static-pass")),
            }],
            minted: Some(Minted {
                urls: vec!["turn:b".into()],
                secret: Secret::new("shared-key"),
                ttl: Duration::ZERO,
            }),
        };
        let debug = format!("{ice:?}");
        assert!(!debug.contains("static-pass") && !debug.contains("shared-key"), "{debug}");
        assert!(debug.contains("MASKED"), "{debug}");
        let described = ice.describe().join("\n");
        assert!(!described.contains("static-pass") && !described.contains("shared-key"), "{described}");
    }

    #[test]
    fn file_entries_take_a_url_or_a_list() {
        let one: IceServer = serde_json::from_value(json!({"urls": "stun:a"})).expect("a string");
        assert_eq!(one.urls, vec!["stun:a"]);
        let many: IceServer =
            serde_json::from_value(json!({"urls": ["turn:a", "turn:b"], "username": "u", "credential": "c"}))
                .expect("a list");
        assert_eq!(many.to_json(), json!({"urls": ["turn:a", "turn:b"], "username": "u", "credential": "c"}));
    }
}
