//! Access tokens for the authentication tests: a server secret, tokens
//! signed with it (valid or expired) and with another, and a WebSocket
//! connect that reports an HTTP refusal instead of failing.

use std::time::{Duration, SystemTime};

use switchboard::Config;
use switchboard::auth::{Claims, Signer, Verifier};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::{Client, WAIT};

/// The secret the test servers check tokens with.
pub const SECRET: &str = "test-secret-of-the-auth-tests-0123456789";

/// Turns authentication on with [`SECRET`].
pub fn on(config: &mut Config) {
    config.auth = Some(Verifier::secret(SECRET));
}

fn rooms(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

/// A token for `sub` and `rooms`, valid for an hour.
pub fn token(sub: &str, rooms_: &[&str]) -> String {
    Signer::secret(SECRET)
        .mint(&Claims::new(sub, &rooms(rooms_), Duration::from_secs(3600), SystemTime::now()))
        .unwrap()
}

/// A token for `sub` signed with another secret.
pub fn wrong_signature(sub: &str) -> String {
    let claims = Claims::new(sub, &[], Duration::from_secs(3600), SystemTime::now());
    Signer::secret("not-the-server-secret-0123456789abcdef").mint(&claims).unwrap()
}

/// A token for `sub` that expired an hour ago.
pub fn expired(sub: &str) -> String {
    let claims =
        Claims::new(sub, &["*".to_string()], Duration::from_secs(60), SystemTime::now() - Duration::from_secs(3600));
    Signer::secret(SECRET).mint(&claims).unwrap()
}

/// Connects to `url` with extra request headers; `Err` holds the HTTP
/// status and body of a refused upgrade.
pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, (u16, String)> {
    let mut req = url.into_client_request().expect("a WebSocket URL");
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().expect("header name");
        req.headers_mut().append(name, HeaderValue::from_str(value).expect("header value"));
    }
    match tokio::time::timeout(WAIT, connect_async(req)).await.expect("an answer in time") {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(WsError::Http(resp)) => {
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap_or_default()).to_string();
            Err((resp.status().as_u16(), body))
        }
        Err(e) => panic!("connecting to {url}: {e}"),
    }
}

/// Connects and expects a refusal with `status`; returns its body.
pub async fn refused(url: &str, headers: &[(&str, &str)], status: u16) -> String {
    match connect(url, headers).await {
        Err((got, body)) => {
            assert_eq!(got, status, "refusal status for {url}: {body}");
            body
        }
        Ok(_) => panic!("{url} was admitted; expected {status}"),
    }
}

/// A plain HTTP/1.1 GET with extra header lines: status and body.
pub async fn get(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw)).await.expect("response in time").expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status");
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        super::unchunk(body)
    } else {
        body.into()
    };
    (status, body)
}
