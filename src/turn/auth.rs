//! Checks TURN credentials the coturn REST way (`use-auth-secret`): the
//! username is `<expiry unix time>:<user>`, the password base64 of
//! HMAC-SHA1(secret, username). Expired or malformed usernames are refused
//! before any password is compared. Never logs a password or the secret.

use std::net::SocketAddr;
use std::time::SystemTime;

use tracing::debug;
use turn::auth::{AuthHandler, generate_auth_key};

use crate::ice::{CredentialError, Secret, check, rest_user};

/// The `turn` crate's authentication hook, for the REST scheme.
pub struct RestAuth {
    /// The secret credentials are minted with.
    secret: Secret,
}

impl RestAuth {
    /// Checks credentials minted with `secret`.
    pub fn new(secret: Secret) -> RestAuth {
        RestAuth { secret }
    }

    /// The long-term key (MD5 of `username:realm:password`, RFC 5389 §15.4)
    /// that MESSAGE-INTEGRITY of a request from `username` must be made with,
    /// if the username is well formed and has not expired at `now`.
    pub fn key(&self, username: &str, realm: &str, now: SystemTime) -> Result<Vec<u8>, CredentialError> {
        let password = check(&self.secret, username, now)?;
        Ok(generate_auth_key(username, realm, password.expose()))
    }
}

impl AuthHandler for RestAuth {
    fn auth_handle(&self, username: &str, realm: &str, src_addr: SocketAddr) -> Result<Vec<u8>, turn::Error> {
        self.key(username, realm, SystemTime::now()).map_err(|e| {
            debug!(user = rest_user(username), remote = %src_addr, reason = %e, "TURN credential refused");
            turn::Error::Other(e.to_string())
        })
    }
}
