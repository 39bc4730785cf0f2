//! The WebSocket upgrade (RFC 6455 opening handshake over HTTP/1.1) and the
//! socket every dialect's connection runs on.
//!
//! Ours rather than axum's `WebSocketUpgrade` for one reason: it puts a
//! [`Slurp`] between the socket and the WebSocket library, so that each
//! connection's read buffer can stay small (memory per idle connection)
//! while the kernel is still read in large gulps (system calls per relayed
//! message). See docs/performance.md.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocketConfig};

/// A connection's WebSocket.
pub type Socket = WebSocketStream<Slurp<TokioIo<Upgraded>>>;

/// Initial size of a connection's WebSocket read buffer, and the most the
/// library takes from [`Slurp`] at once. Small: it is kept for the life of
/// every connection, idle ones included, and a larger message grows it.
const READ_BUFFER: usize = 512;

/// How much one read from the kernel may take, per worker thread.
const GULP: usize = 16 * 1024;

/// A request that could not be upgraded, and why.
#[derive(Debug)]
pub struct NotUpgradable {
    status: StatusCode,
    why: &'static str,
}

impl IntoResponse for NotUpgradable {
    fn into_response(self) -> Response {
        (self.status, format!("not a WebSocket upgrade: {}\n", self.why)).into_response()
    }
}

/// A valid WebSocket upgrade request, not yet answered.
pub struct WsUpgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
    /// The subprotocol the response names, one the client offered.
    protocol: Option<HeaderValue>,
}

/// Whether the request asks for a WebSocket (whether or not it is a valid
/// upgrade: see [`WsUpgrade`] for that).
pub fn wants_websocket(headers: &HeaderMap) -> bool {
    has_token(headers, header::UPGRADE, "websocket")
}

/// Whether a comma-separated header holds `token` (in any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

impl<S: Send + Sync> FromRequestParts<S> for WsUpgrade {
    type Rejection = NotUpgradable;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotUpgradable> {
        let refuse = |status, why| Err(NotUpgradable { status, why });
        if parts.version > Version::HTTP_11 {
            return refuse(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "use HTTP/1.1 for WebSocket connections");
        }
        if parts.method != Method::GET {
            return refuse(StatusCode::METHOD_NOT_ALLOWED, "the request method must be GET");
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade") {
            return refuse(StatusCode::BAD_REQUEST, "the Connection header must include `upgrade`");
        }
        if !wants_websocket(&parts.headers) {
            return refuse(StatusCode::BAD_REQUEST, "the Upgrade header must be `websocket`");
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION).is_none_or(|v| v.as_bytes() != b"13") {
            return refuse(StatusCode::UPGRADE_REQUIRED, "Sec-WebSocket-Version must be 13");
        }
        // Any key string is accepted as given (some clients send non-base64 keys).
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return refuse(StatusCode::BAD_REQUEST, "the Sec-WebSocket-Key header is missing");
        };
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return refuse(StatusCode::UPGRADE_REQUIRED, "this connection cannot be upgraded");
        };
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        Ok(WsUpgrade { key, on_upgrade, config, protocol: None })
    }
}

impl WsUpgrade {
    /// Largest message and frame accepted, in bytes.
    pub fn max_message_size(mut self, max: usize) -> WsUpgrade {
        self.config = self.config.max_message_size(Some(max)).max_frame_size(Some(max));
        self
    }

    /// Names `protocol` (one the client offered) in the answer's
    /// `Sec-WebSocket-Protocol`.
    pub fn protocol(mut self, protocol: Option<&str>) -> WsUpgrade {
        self.protocol = protocol.and_then(|p| HeaderValue::from_str(p).ok());
        self
    }

    /// Answers `101 Switching Protocols` and runs `run` on the socket once
    /// the client's connection is handed over.
    pub fn on_upgrade<F, Fut>(self, run: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let WsUpgrade { key, on_upgrade, config, protocol } = self;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade failed");
                    return;
                }
            };
            let io = Slurp::new(TokioIo::new(upgraded));
            let socket = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
            run(socket).await;
        });
        let accept = derive_accept_key(key.as_bytes());
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if let Some(protocol) = protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

thread_local! {
    /// Where each worker thread reads from the kernel; what the connection
    /// cannot take yet moves to its own `pending`.
    static SCRATCH: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0; GULP].into_boxed_slice());
}

/// Reads the kernel's socket in gulps of up to [`GULP`] bytes through a
/// per-thread buffer, and hands them out in whatever sizes the reader asks
/// for. Bytes read but not yet taken wait in `pending`, which holds memory
/// only while they do. Writes pass straight through.
pub struct Slurp<T> {
    inner: T,
    pending: Vec<u8>,
    taken: usize,
}

impl<T> Slurp<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> Slurp<T> {
        Slurp { inner, pending: Vec::new(), taken: 0 }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Slurp<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.taken < this.pending.len() {
            let n = buf.remaining().min(this.pending.len() - this.taken);
            buf.put_slice(&this.pending[this.taken..this.taken + n]);
            this.taken += n;
            if this.taken == this.pending.len() {
                this.pending = Vec::new();
                this.taken = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= GULP {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        SCRATCH.with_borrow_mut(|scratch| {
            let mut gulp = ReadBuf::new(scratch);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut gulp))?;
            let got = gulp.filled();
            let n = buf.remaining().min(got.len());
            buf.put_slice(&got[..n]);
            this.pending.extend_from_slice(&got[n..]);
            Poll::Ready(Ok(()))
        })
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Slurp<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn hands_out_a_gulp_in_small_reads_in_order_then_frees_it() {
        let (mut far, near) = tokio::io::duplex(64 * 1024);
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        far.write_all(&data).await.expect("write");
        let mut slurp = Slurp::new(near);
        let mut got = Vec::new();
        let mut small = [0u8; 300];
        while got.len() < data.len() {
            let n = slurp.read(&mut small).await.expect("read");
            assert!(n > 0 && n <= small.len());
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, data);
        assert_eq!(slurp.pending.capacity(), 0, "nothing held once everything is taken");
        drop(far);
        assert_eq!(slurp.read(&mut small).await.expect("eof"), 0);
    }
}
