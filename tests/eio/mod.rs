//! Raw Engine.IO v4 / socket.io v5-protocol clients (v3 / socket.io
//! protocol 4 in [`v3`]) for transcript tests:
//! long-polling over hand-written HTTP/1.1 (so batching is visible) and
//! websocket over tokio-tungstenite. Engine.IO pings (`2`) are answered and
//! skipped; everything else is returned as the exact packet text.
#![allow(dead_code, unreachable_pub)]

pub mod v3;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long a test waits for an expected packet before failing.
pub const WAIT: Duration = Duration::from_secs(5);
/// Engine.IO v4 separator of batched packets in one polling body.
pub const SEP: char = '\u{1e}';

/// One HTTP/1.1 exchange on a fresh connection: status and body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let fut = async {
        let mut tcp = TcpStream::connect(addr).await.expect("tcp connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(req.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(WAIT, fut).await.expect("an HTTP response in time");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head and body");
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    (status, if chunked { dechunk(body) } else { body.to_string() })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// Replaces the value of `"sid":"..."` with `SID`, for exact comparisons.
pub fn mask_sid(packet: &str) -> String {
    match packet.find(r#""sid":""#) {
        Some(i) => {
            let start = i + 7;
            let end = start + packet[start..].find('"').expect("sid end");
            format!("{}SID{}", &packet[..start], &packet[end..])
        }
        None => packet.to_string(),
    }
}

/// Extracts the sid from an open or CONNECT packet.
pub fn sid_of(packet: &str) -> String {
    let masked_at = packet.find(r#""sid":""#).expect("packet has a sid") + 7;
    let end = masked_at + packet[masked_at..].find('"').expect("sid end");
    packet[masked_at..end].to_string()
}

/// A long-polling Engine.IO client.
pub struct Polling {
    addr: SocketAddr,
    /// Engine.IO session id.
    pub sid: String,
    /// Packets received but not yet consumed.
    buf: VecDeque<String>,
}

impl Polling {
    /// Opens a session; returns the client and the exact open packet.
    pub async fn open(addr: SocketAddr) -> (Polling, String) {
        Polling::open_with(addr, "").await
    }

    /// Opens a session with `extra` appended to the handshake's query
    /// (`&name=value...`, as the client's `query` option sends).
    pub async fn open_with(addr: SocketAddr, extra: &str) -> (Polling, String) {
        let (status, body) = http(addr, "GET", &format!("/socket.io/?EIO=4&transport=polling{extra}"), "").await;
        assert_eq!(status, 200, "handshake: {body}");
        assert!(body.starts_with("0{"), "first packet is the open packet: {body}");
        (Polling { addr, sid: sid_of(&body), buf: VecDeque::new() }, body)
    }

    fn path(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    /// POSTs packets, batched in one body.
    pub async fn send(&self, packets: &[&str]) {
        let body = packets.join(&SEP.to_string());
        let (status, reply) = http(self.addr, "POST", &self.path(), &body).await;
        assert_eq!((status, reply.as_str()), (200, "ok"), "POST of {packets:?}");
    }

    /// One GET: the packets of one response, in order (pings included).
    pub async fn poll(&mut self) -> Vec<String> {
        let (status, body) = http(self.addr, "GET", &self.path(), "").await;
        assert_eq!(status, 200, "poll: {body}");
        body.split(SEP).map(str::to_string).collect()
    }

    /// The next packet that is not a ping (pings are answered).
    pub async fn next(&mut self) -> String {
        loop {
            if let Some(p) = self.buf.pop_front() {
                if p == "2" {
                    self.send(&["3"]).await;
                    continue;
                }
                return p;
            }
            let batch = self.poll().await;
            self.buf.extend(batch);
        }
    }

    /// Connects to the main namespace with this auth JSON; returns the
    /// CONNECT acknowledgement.
    pub async fn connect(&mut self, auth: &str) -> String {
        self.send(&[&format!("40{auth}")]).await;
        let ack = self.next().await;
        assert!(ack.starts_with("40{\"sid\":"), "CONNECT acknowledgement: {ack}");
        ack
    }

    /// Upgrades this session to websocket (`2probe`/`3probe`/`5`).
    pub async fn upgrade(self) -> Ws {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket&sid={}", self.addr, self.sid);
        let mut ws = Ws::dial(&url).await;
        ws.send("2probe").await;
        assert_eq!(ws.next().await, "3probe");
        ws.send("5").await;
        ws.pending.extend(self.buf);
        ws
    }
}

/// A websocket Engine.IO client.
pub struct Ws {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<String>,
}

impl Ws {
    async fn dial(url: &str) -> Ws {
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(url)).await.expect("connect in time").expect("connect");
        Ws { ws, pending: VecDeque::new() }
    }

    /// Opens a websocket-only session; returns the client and the open packet.
    pub async fn open(addr: SocketAddr) -> (Ws, String) {
        let mut ws = Ws::dial(&format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await;
        let open = ws.next().await;
        (ws, open)
    }

    /// Sends one packet (one frame).
    pub async fn send(&mut self, packet: &str) {
        self.ws.send(Message::Text(packet.to_string().into())).await.expect("send");
    }

    /// Sends packets in one go (one flush: as few TCP writes as possible).
    pub async fn send_burst(&mut self, packets: &[String]) {
        for p in packets {
            self.ws.feed(Message::Text(p.clone().into())).await.expect("feed");
        }
        self.ws.flush().await.expect("flush");
    }

    /// The next packet that is not a ping (pings are answered).
    pub async fn next(&mut self) -> String {
        while let Some(p) = self.pending.pop_front() {
            if p == "2" {
                self.send("3").await;
                continue;
            }
            return p;
        }
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a packet in time");
            match msg {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" => self.send("3").await,
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Connects to the main namespace; returns the CONNECT acknowledgement.
    pub async fn connect(&mut self, auth: &str) -> String {
        self.send(&format!("40{auth}")).await;
        let ack = self.next().await;
        assert!(ack.starts_with("40{\"sid\":"), "CONNECT acknowledgement: {ack}");
        ack
    }
}

impl Ws {
    /// Waits for the server to end the websocket; fails on any packet but
    /// pings and Engine.IO close (`1`).
    pub async fn expect_closed(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("the server closes in time") {
                Some(Ok(Message::Text(t))) if t.as_str() == "2" || t.as_str() == "1" => continue,
                Some(Ok(Message::Text(t))) => panic!("expected the transport to close, got packet {t}"),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(other)) => panic!("expected a close, got {other:?}"),
            }
        }
    }

    /// Closes the websocket (the transport ends; socket.io sees a disconnect).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        // Drain until the server's close (or EOF) so the close is processed.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }
}

/// Either transport, for transcripts run over both.
pub enum Sock {
    /// Long-polling only.
    Polling(Polling),
    /// Websocket (direct or upgraded).
    Ws(Box<Ws>),
}

impl Sock {
    /// Sends one packet.
    pub async fn send(&mut self, packet: &str) {
        match self {
            Sock::Polling(p) => p.send(&[packet]).await,
            Sock::Ws(w) => w.as_mut().send(packet).await,
        }
    }

    /// The next packet that is not a ping.
    pub async fn next(&mut self) -> String {
        match self {
            Sock::Polling(p) => p.next().await,
            Sock::Ws(w) => w.as_mut().next().await,
        }
    }
}
