//! Raw Engine.IO v3 clients (socket.io 1.x's wire) for transcript tests:
//! long-polling with v3 payload framing (`<length>:<packet>`, the length in
//! UTF-16 units; or the binary form: a type byte, the length's decimal
//! digits one byte each, byte 255, the packet) and websocket, direct or
//! upgraded from polling (`2probe`/`3probe`/`5`). Polling packets are
//! UTF-8-encoded once more both ways, as engine.io 1.x does. In v3 the
//! client pings; a test is short enough not to.

use std::collections::VecDeque;
use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use super::{WAIT, sid_of};

/// One HTTP/1.1 exchange on a fresh connection: status and raw body.
pub async fn http_bytes(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let fut = async {
        let mut tcp = TcpStream::connect(addr).await.expect("tcp connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.expect("write head");
        tcp.write_all(body).await.expect("write body");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(WAIT, fut).await.expect("an HTTP response in time");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP head and body");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&body[..eol]).expect("size").trim(), 16).expect("chunk size");
        if n == 0 {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + n]);
        body = &body[eol + 2 + n + 2..];
    }
    out
}

/// The packets of a v3 polling payload, text or binary form.
pub fn decode_payload(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if body.first().is_some_and(|b| *b <= 1) {
        let mut rest = body;
        while !rest.is_empty() {
            let sep = rest.iter().position(|b| *b == 255).expect("binary separator");
            let len: usize = rest[1..sep].iter().fold(0, |n, d| n * 10 + *d as usize);
            out.push(String::from_utf8(rest[sep + 1..sep + 1 + len].to_vec()).expect("utf-8 packet"));
            rest = &rest[sep + 1 + len..];
        }
        return out;
    }
    let text = String::from_utf8(body.to_vec()).expect("utf-8 payload");
    let mut rest = text.as_str();
    while let Some((len, tail)) = rest.split_once(':') {
        let units: usize = len.parse().expect("length");
        // Take `units` UTF-16 units.
        let mut taken = 0;
        let mut end = 0;
        for c in tail.chars() {
            if taken == units {
                break;
            }
            taken += c.len_utf16();
            end += c.len_utf8();
        }
        out.push(undouble(&tail[..end]));
        rest = &tail[end..];
    }
    out
}

/// One packet framed as a v3 text payload, as engine.io-client 1.x POSTs
/// it: UTF-8-encoded once more (a character per byte), then framed.
pub fn frame(packet: &str) -> String {
    let doubled: String = packet.bytes().map(char::from).collect();
    format!("{}:{doubled}", doubled.encode_utf16().count())
}

/// A received text packet decoded as engine.io-client 1.x decodes it (the
/// server encoded it once more); fails if it was not so encoded.
fn undouble(packet: &str) -> String {
    let bytes: Vec<u8> = packet.chars().map(|c| u8::try_from(u32::from(c)).expect("a byte-valued character")).collect();
    String::from_utf8(bytes).expect("a UTF-8-encoded packet")
}

/// A long-polling Engine.IO v3 client.
pub struct Polling3 {
    addr: SocketAddr,
    /// Engine.IO session id.
    pub sid: String,
    buf: VecDeque<String>,
}

impl Polling3 {
    /// Opens a session; returns the client and the exact open packet.
    pub async fn open(addr: SocketAddr) -> (Polling3, String) {
        let (status, body) = http_bytes(addr, "GET", "/socket.io/?EIO=3&transport=polling", b"").await;
        let packets = decode_payload(&body);
        assert_eq!(status, 200, "handshake: {packets:?}");
        let open = packets[0].clone();
        assert!(open.starts_with("0{"), "first packet is the open packet: {open}");
        let buf = packets.into_iter().skip(1).collect();
        (Polling3 { addr, sid: sid_of(&open), buf }, open)
    }

    fn path(&self) -> String {
        format!("/socket.io/?EIO=3&transport=polling&sid={}", self.sid)
    }

    /// POSTs packets in one payload.
    pub async fn send(&self, packets: &[&str]) {
        let body: String = packets.iter().map(|p| frame(p)).collect();
        let (status, reply) = http_bytes(self.addr, "POST", &self.path(), body.as_bytes()).await;
        assert_eq!((status, String::from_utf8_lossy(&reply).as_ref()), (200, "ok"), "POST of {packets:?}");
    }

    /// The next packet (one GET when none is buffered).
    pub async fn next(&mut self) -> String {
        loop {
            if let Some(p) = self.buf.pop_front() {
                return p;
            }
            let (status, body) = http_bytes(self.addr, "GET", &self.path(), b"").await;
            assert_eq!(status, 200, "poll: {}", String::from_utf8_lossy(&body));
            self.buf.extend(decode_payload(&body));
        }
    }

    /// Upgrades this session to websocket (`2probe`/`3probe`/`5`).
    pub async fn upgrade(self) -> Ws3 {
        let url = format!("ws://{}/socket.io/?EIO=3&transport=websocket&sid={}", self.addr, self.sid);
        let mut ws = Ws3::dial(&url).await;
        ws.send("2probe").await;
        assert_eq!(ws.next().await, "3probe");
        ws.send("5").await;
        ws.pending.extend(self.buf);
        ws
    }
}

/// A websocket Engine.IO v3 client.
pub struct Ws3 {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<String>,
}

impl Ws3 {
    async fn dial(url: &str) -> Ws3 {
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(url)).await.expect("connect in time").expect("connect");
        Ws3 { ws, pending: VecDeque::new() }
    }

    /// Opens a websocket-only session; returns the client and the open packet.
    pub async fn open(addr: SocketAddr) -> (Ws3, String) {
        Ws3::open_with(addr, "").await
    }

    /// Opens a websocket-only session with `extra` appended to the query.
    pub async fn open_with(addr: SocketAddr, extra: &str) -> (Ws3, String) {
        let mut ws = Ws3::dial(&format!("ws://{addr}/socket.io/?EIO=3&transport=websocket{extra}")).await;
        let open = ws.next().await;
        (ws, open)
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: &str) {
        self.ws.send(Message::Text(packet.to_string().into())).await.expect("send");
    }

    /// The next packet.
    pub async fn next(&mut self) -> String {
        if let Some(p) = self.pending.pop_front() {
            return p;
        }
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("a packet in time");
            match msg {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Waits for the server to end the websocket; packets before the end
    /// are returned.
    pub async fn until_closed(&mut self) -> Vec<String> {
        let mut seen: Vec<String> = self.pending.drain(..).collect();
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("the server closes in time") {
                Some(Ok(Message::Text(t))) => seen.push(t.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return seen,
                Some(Ok(other)) => panic!("expected a close, got {other:?}"),
            }
        }
    }

    /// Closes the websocket (socket.io sees a disconnect).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }
}

/// Either transport.
pub enum Sock3 {
    /// Long-polling only.
    Polling(Polling3),
    /// Websocket (direct or upgraded).
    Ws(Box<Ws3>),
}

impl Sock3 {
    /// Sends one packet.
    pub async fn send(&mut self, packet: &str) {
        match self {
            Sock3::Polling(p) => p.send(&[packet]).await,
            Sock3::Ws(w) => w.send(packet).await,
        }
    }

    /// The next packet.
    pub async fn next(&mut self) -> String {
        match self {
            Sock3::Polling(p) => p.next().await,
            Sock3::Ws(w) => w.next().await,
        }
    }
}

/// One HTTP/1.1 request with `extra` header lines (each ending in CRLF);
/// the status and the response head (lower-cased).
pub async fn http_head(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String) {
    let fut = async {
        let mut tcp = TcpStream::connect(addr).await.expect("tcp connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.expect("read response");
        raw
    };
    let raw = tokio::time::timeout(WAIT, fut).await.expect("an HTTP response in time");
    let text = String::from_utf8_lossy(&raw).to_string();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    (status, head)
}
