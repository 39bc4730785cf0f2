//! Test harness: the real server on 127.0.0.1:0 and a small WebSocket client.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::Config;
use switchboard::dialect::DialectKind;
use switchboard::server::{Running, start};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running server for one test.
pub struct TestServer {
    pub running: Running,
}

impl TestServer {
    /// Starts a native server with default settings on a free port.
    pub async fn native() -> TestServer {
        TestServer::with(|_| {}).await
    }

    /// Starts a native server after `tweak` adjusts the config.
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = Config::single(DialectKind::Native, "127.0.0.1:0".parse().unwrap());
        tweak(&mut config);
        TestServer::start(config).await
    }

    /// Starts a server from a full config (listen addresses should use port 0).
    pub async fn start(config: Config) -> TestServer {
        TestServer { running: start(config).await.expect("server starts") }
    }

    /// Address of listener `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.running.addrs[i]
    }

    /// ws:// URL of listener 0 with `path`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr(0), path)
    }

    /// Connects a client to `/ws` and reads its welcome.
    pub async fn client(&self) -> (Client, Value) {
        let mut c = Client::connect(&self.ws_url("/ws")).await;
        let welcome = c.recv().await;
        assert_eq!(welcome["type"], "welcome", "first frame is the welcome: {welcome}");
        (c, welcome)
    }

    /// Connects and takes a display name; returns the client and its id.
    pub async fn named(&self, name: &str) -> (Client, String) {
        let (mut c, welcome) = self.client().await;
        c.send(&serde_json::json!({"type": "name", "name": name, "ref": "n"})).await;
        let reply = c.recv_type("ok").await;
        assert_eq!(reply["ref"], "n");
        (c, welcome["id"].as_str().unwrap().to_string())
    }
}

/// A WebSocket client speaking JSON text frames.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(url)).await.expect("connect in time").expect("connect");
        Client { ws }
    }

    pub async fn send(&mut self, v: &Value) {
        self.ws.send(Message::Text(v.to_string().into())).await.expect("send");
    }

    pub async fn send_text(&mut self, s: &str) {
        self.ws.send(Message::Text(s.to_string().into())).await.expect("send");
    }

    /// Next text frame as raw text (panics on timeout or close).
    pub async fn recv_text(&mut self) -> String {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Next text frame, parsed.
    pub async fn recv(&mut self) -> Value {
        let t = self.recv_text().await;
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("server sent invalid JSON {t:?}: {e}"))
    }

    /// Next frame, which must have this `type`.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], ty, "expected a '{ty}' frame, got {v}");
        v
    }

    /// Asserts nothing arrives for a short while.
    pub async fn expect_silence(&mut self, for_: Duration) {
        match tokio::time::timeout(for_, self.ws.next()).await {
            Err(_) => {}
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }

    /// Waits for the server to close; returns the close code and reason.
    pub async fn recv_close(&mut self) -> (u16, String) {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("close in time");
            match msg {
                Some(Ok(Message::Close(Some(f)))) => return (f.code.into(), f.reason.to_string()),
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Drops the TCP connection without a close frame.
    pub async fn drop_abruptly(self) {
        let stream = self.ws.into_inner();
        drop(stream);
    }
}
