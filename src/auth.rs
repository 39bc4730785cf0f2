//! Access tokens: the signed tokens (JWT) that say who a client is, which
//! rooms it may join and until when; checked by [`admission`](crate::admission)
//! for every entry point, and minted here for `switchboard token`.
//!
//! A token's claims: `sub`, the one name its holder may claim (and who it
//! is); `rooms`, the rooms it may join (`"*"`: any; absent: none); `exp`,
//! when it stops being accepted at connect (seconds since 1970). Signed with
//! HS256 and `--auth-secret`, or RS256/ES256 (and their larger siblings,
//! EdDSA) verified with the public key of `--auth-public-key`. Nothing here
//! does I/O but reading a key file when the settings are loaded.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::hub::{Grant, Name, Rooms};

/// Query parameter that carries a token (`?access_token=`).
pub const QUERY_PARAM: &str = "access_token";
/// Cookie that carries a token.
pub const COOKIE: &str = "switchboard_token";
/// A `Sec-WebSocket-Protocol` entry that carries a token: this prefix, then
/// the token (`access_token.eyJ...`). The upgrade echoes the entry.
pub const PROTOCOL_PREFIX: &str = "access_token.";
/// In `rooms`: any room.
pub const ANY_ROOM: &str = "*";

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the holder is: the one name it may claim.
    pub sub: String,
    /// Rooms it may join; `"*"` stands for any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rooms: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, seconds since the Unix epoch (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

impl Claims {
    /// Claims for `sub` and `rooms`, issued at `now`, valid for `ttl`.
    pub fn new(sub: &str, rooms: &[String], ttl: Duration, now: SystemTime) -> Claims {
        let iat = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Claims { sub: sub.to_string(), rooms: rooms.to_vec(), exp: iat.saturating_add(ttl.as_secs()), iat: Some(iat) }
    }
}

/// Who a verified token says its holder is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The name it may claim.
    pub sub: Name,
    /// The rooms it may join.
    pub rooms: Rooms,
    /// When the token expires (seconds since the Unix epoch). Checked at
    /// connect only: a live connection is not cut when it passes.
    pub exp: u64,
}

impl Identity {
    /// What the hub lets this identity claim.
    pub fn grant(&self) -> Grant {
        Grant { name: self.sub.clone(), rooms: self.rooms.clone() }
    }
}

/// Why a token was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Its `exp` has passed.
    #[error("the access token has expired; get a new one")]
    Expired,
    /// Anything else: not a JWT, wrong signature or algorithm, bad claims.
    #[error("the access token is not valid: {0}; get a new one")]
    Invalid(String),
}

/// Checks tokens against the server's key.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key: an HS256 secret must not reach the logs.
        write!(f, "Verifier({:?}, key MASKED)", self.validation.algorithms)
    }
}

impl Verifier {
    /// Tokens signed with HS256 and `secret`.
    pub fn secret(secret: &str) -> Verifier {
        Verifier::new(DecodingKey::from_secret(secret.as_bytes()), &[Algorithm::HS256])
    }

    /// Tokens signed with the private half of a public key in PEM: RSA
    /// (RS256, RS384, RS512, PS256...), EC (ES256, ES384) or Ed25519 (EdDSA).
    pub fn public_key_pem(pem: &[u8]) -> anyhow::Result<Verifier> {
        use Algorithm::*;
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            return Ok(Verifier::new(key, &[ES256, ES384]));
        }
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Verifier::new(key, &[RS256, RS384, RS512, PS256, PS384, PS512]));
        }
        if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            return Ok(Verifier::new(key, &[EdDSA]));
        }
        bail!("not an RSA, EC or Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----)")
    }

    /// [`Verifier::public_key_pem`] of a file.
    pub fn public_key_file(path: &Path) -> anyhow::Result<Verifier> {
        let pem = std::fs::read(path).with_context(|| format!("reading the public key {}", path.display()))?;
        Verifier::public_key_pem(&pem).with_context(|| format!("--auth-public-key {}", path.display()))
    }

    fn new(key: DecodingKey, algorithms: &[Algorithm]) -> Verifier {
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms.to_vec();
        // Expired means expired: no grace beyond `exp`.
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Verifier { key, validation }
    }

    /// The identity `token` proves, if its signature, algorithm and expiry
    /// are good.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            ErrorKind::InvalidSignature => TokenError::Invalid("its signature does not match this server's key".into()),
            ErrorKind::InvalidAlgorithm => {
                TokenError::Invalid(format!("this server accepts only {:?} signatures", self.validation.algorithms))
            }
            ErrorKind::MissingRequiredClaim(c) => TokenError::Invalid(format!("it has no '{c}' claim")),
            ErrorKind::Json(e) => TokenError::Invalid(format!("its claims are not as expected ({e})")),
            _ => TokenError::Invalid("it is not a well-formed JWT".into()),
        })?;
        let Claims { sub, rooms, exp, .. } = data.claims;
        if sub.is_empty() {
            return Err(TokenError::Invalid("its 'sub' claim is empty".into()));
        }
        let rooms = if rooms.iter().any(|r| r == ANY_ROOM) {
            Rooms::Any
        } else {
            Rooms::Only(rooms.iter().map(|r| Name::from(r.as_str())).collect())
        };
        Ok(Identity { sub: Name::from(sub), rooms, exp })
    }
}

/// Signs tokens (`switchboard token`, tests).
pub struct Signer {
    key: EncodingKey,
    alg: Algorithm,
}

impl Signer {
    /// HS256 with `secret`.
    pub fn secret(secret: &str) -> Signer {
        Signer { key: EncodingKey::from_secret(secret.as_bytes()), alg: Algorithm::HS256 }
    }

    /// ES256 with a P-256 private key, or RS256 with an RSA one (PEM).
    pub fn private_key_pem(pem: &[u8]) -> anyhow::Result<Signer> {
        if let Ok(key) = EncodingKey::from_ec_pem(pem) {
            return Ok(Signer { key, alg: Algorithm::ES256 });
        }
        if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            return Ok(Signer { key, alg: Algorithm::RS256 });
        }
        bail!("not a P-256 EC (PKCS#8) or RSA private key in PEM")
    }

    /// The signed token for `claims`.
    pub fn mint(&self, claims: &Claims) -> anyhow::Result<String> {
        jsonwebtoken::encode(&Header::new(self.alg), claims, &self.key).context("signing the token")
    }
}

/// A token lifetime: seconds, or a number with `s`, `m`, `h` or `d`
/// (`30s`, `15m`, `1h`, `2d`).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a duration like 30s, 15m, 1h or 2d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d (as in 30s, 15m, 1h, 2d)")),
    };
    if n == 0 {
        return Err("a token lifetime must be more than zero".into());
    }
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(|| format!("{s:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn a_minted_token_verifies_to_its_claims() {
        let claims = Claims::new("alice", &["r1".into()], Duration::from_secs(60), now());
        let token = Signer::secret("s3cret").mint(&claims).expect("mint");
        let id = Verifier::secret("s3cret").verify(&token).expect("valid");
        assert_eq!(id.sub.as_ref(), "alice");
        assert_eq!(id.rooms, Rooms::Only(vec![Name::from("r1")]));
        assert_eq!(id.exp, claims.exp);
        let any = Signer::secret("s3cret").mint(&Claims::new("a", &["*".into()], Duration::from_secs(60), now()));
        assert_eq!(Verifier::secret("s3cret").verify(&any.expect("mint")).map(|i| i.rooms), Ok(Rooms::Any));
    }

    #[test]
    fn wrong_secret_expired_and_garbage_are_refused() {
        let claims = Claims::new("alice", &[], Duration::from_secs(60), now());
        let token = Signer::secret("other").mint(&claims).expect("mint");
        assert!(matches!(Verifier::secret("s3cret").verify(&token), Err(TokenError::Invalid(_))));
        let old = Claims { exp: 1_000_000, iat: Some(999_000), ..claims };
        let token = Signer::secret("s3cret").mint(&old).expect("mint");
        assert_eq!(Verifier::secret("s3cret").verify(&token), Err(TokenError::Expired));
        assert!(matches!(Verifier::secret("s3cret").verify("not.a.jwt"), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn es256_tokens_verify_with_the_public_key() {
        let pair = rcgen::KeyPair::generate().expect("P-256 key");
        let signer = Signer::private_key_pem(pair.serialize_pem().as_bytes()).expect("signer");
        let token = signer.mint(&Claims::new("bob", &[], Duration::from_secs(60), now())).expect("mint");
        let verifier = Verifier::public_key_pem(pair.public_key_pem().as_bytes()).expect("verifier");
        assert_eq!(verifier.verify(&token).map(|i| i.sub), Ok(Name::from("bob")));
        let hs = Signer::secret("s3cret").mint(&Claims::new("bob", &[], Duration::from_secs(60), now()));
        assert!(
            matches!(verifier.verify(&hs.expect("mint")), Err(TokenError::Invalid(_))),
            "no HS256 with a public key"
        );
    }

    #[test]
    fn ttl_takes_seconds_minutes_hours_and_days() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("0s").is_err());
    }
}
