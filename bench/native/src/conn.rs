//! One registered WebSocket connection to the server under test: the I/O
//! side of [`crate::proto`].

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::proto::{self, Kind, Proto, ServerMsg};

/// Where to connect: always 127.0.0.1 (this tool never leaves the machine).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub proto: Proto,
    pub port: u16,
    pub connect_timeout: Duration,
}

/// A relayed signal received from another connection.
pub struct Signal {
    pub from: String,
    pub payload: String,
}

pub struct Conn {
    ws: WebSocketStream<TcpStream>,
    proto: Proto,
    id: String,
}

static TOKEN: AtomicU64 = AtomicU64::new(0x5eed);

impl Conn {
    /// Connect and wait for registration (native: the welcome; floor: OPEN).
    /// `label` is the id a floor client asks for; it must be unique in the run.
    pub async fn open(t: Target, label: &str) -> Result<Conn> {
        let fut = async {
            let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, t.port));
            let stream = TcpStream::connect(addr)
                .await
                .with_context(|| format!("TCP connect to {addr} (is the server running?)"))?;
            stream.set_nodelay(true)?;
            let token = TOKEN.fetch_add(0x9E37_79B9, Ordering::Relaxed);
            let url = format!("ws://{addr}{}", t.proto.path(label, token));
            let mut cfg = WebSocketConfig::default();
            // tungstenite reads through a 128 KiB buffer by default; the idle
            // workload holds thousands of connections in this process.
            cfg.read_buffer_size = 8192;
            cfg.max_message_size = Some(16 << 20);
            let (ws, _) = tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(cfg))
                .await
                .with_context(|| format!("WebSocket upgrade at {url}"))?;
            let mut conn = Conn { ws, proto: t.proto, id: label.to_string() };
            loop {
                let text = conn.recv_text().await?.ok_or_else(|| anyhow!("server closed before registration"))?;
                match proto::decode(t.proto, &text)? {
                    ServerMsg::Registered { id } => {
                        if let Some(id) = id {
                            conn.id = id;
                        }
                        return Ok(conn);
                    }
                    ServerMsg::Refused(why) => bail!("registration refused: {why}"),
                    ServerMsg::Signal { .. } | ServerMsg::Other => continue,
                }
            }
        };
        tokio::time::timeout(t.connect_timeout, fut)
            .await
            .map_err(|_| anyhow!("no registration within {:?}", t.connect_timeout))?
    }

    /// Our id as the server knows it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Queue a signal without flushing.
    pub async fn feed_signal(&mut self, kind: Kind, dst: &str, payload: &str) -> Result<()> {
        let frame = proto::encode_signal(self.proto, kind, dst, payload);
        self.ws.feed(Message::text(frame)).await.context("sending a signal")
    }

    pub async fn flush(&mut self) -> Result<()> {
        self.ws.flush().await.context("flushing signals")
    }

    pub async fn send_signal(&mut self, kind: Kind, dst: &str, payload: &str) -> Result<()> {
        self.feed_signal(kind, dst, payload).await?;
        self.flush().await
    }

    /// Queue one text frame without flushing.
    pub async fn feed_text(&mut self, text: String) -> Result<()> {
        self.ws.feed(Message::text(text)).await.context("sending a frame")
    }

    /// Send one text frame.
    pub async fn send_text(&mut self, text: String) -> Result<()> {
        self.feed_text(text).await?;
        self.flush().await
    }

    /// Next relayed signal; other frames are skipped. `Ok(None)` when the
    /// server closed the connection. Cancel-safe (partial frames stay in
    /// the stream), so it can be raced against timers.
    pub async fn recv_signal(&mut self) -> Result<Option<Signal>> {
        loop {
            let Some(text) = self.recv_text().await? else { return Ok(None) };
            match proto::decode(self.proto, &text)? {
                ServerMsg::Signal { from, payload } => return Ok(Some(Signal { from, payload })),
                ServerMsg::Refused(why) => bail!("server error: {why}"),
                ServerMsg::Registered { .. } | ServerMsg::Other => continue,
            }
        }
    }

    /// Next text frame; `None` on close. Pings are answered by tungstenite.
    /// Cancel-safe, like [`Conn::recv_signal`].
    pub async fn recv_text(&mut self) -> Result<Option<Utf8Bytes>> {
        use tokio_tungstenite::tungstenite::Error as WsError;
        use tokio_tungstenite::tungstenite::error::ProtocolError;
        loop {
            match self.ws.next().await {
                None => return Ok(None),
                Some(Ok(Message::Text(t))) => return Ok(Some(t)),
                Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Ok(_)) => continue,
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => return Ok(None),
                Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => return Ok(None),
                Some(Err(e)) => return Err(e).context("reading from the server"),
            }
        }
    }

    /// Close politely: close frame, then wait up to 2 s for the server's.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.ws.next().await {} })
            .await;
    }
}
