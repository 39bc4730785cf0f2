//! Test harness: the real server on 127.0.0.1:0, a small WebSocket client,
//! and plain HTTP over a `TcpStream` for the operational routes.
#![allow(dead_code, unreachable_pub)]

pub mod auth;
pub mod redis;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard::Config;
use switchboard::dialect::DialectKind;
use switchboard::server::{Running, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// Moves the clock the server reads (Tokio's) forward by `by` at once,
/// firing every timer due meanwhile, then lets time run on for real. For
/// timeouts (ring, grace, expiry, keep-alive) without waiting for them. The
/// clock is paused only for the jump: with a paused clock Tokio also jumps
/// whenever it is idle, before loopback sockets have delivered, so sockets
/// are used in real time.
pub async fn fast_forward(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

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

    /// Connects with `/ws?resume=TOKEN`; returns the client and the frames
    /// up to and including the welcome (an error may come first).
    pub async fn resume(&self, token: &str) -> (Client, Vec<Value>) {
        let mut c = Client::connect(&self.ws_url(&format!("/ws?resume={token}"))).await;
        let mut frames = Vec::new();
        loop {
            let v = c.recv().await;
            let done = v["type"] == "welcome";
            frames.push(v);
            if done {
                return (c, frames);
            }
        }
    }

    /// `GET path` on listener 0: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr(0), path).await
    }

    /// The value of one series of `/metrics`, e.g. `switchboard_peers` or
    /// `switchboard_errors_total{code="bad_json"}`; 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "metrics answer: {body}");
        metric_in(&body, series)
    }

    /// Polls `/metrics` until `series` satisfies `ok` (fails after [`WAIT`]).
    pub async fn wait_metric(&self, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
        let give_up = tokio::time::Instant::now() + WAIT;
        loop {
            let v = self.metric(series).await;
            if ok(v) {
                return v;
            }
            assert!(tokio::time::Instant::now() < give_up, "{series} stayed at {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The value of one series in a Prometheus text body; 0 when absent.
pub fn metric_in(body: &str, series: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{series} value {v:?}: {e}")))
        .unwrap_or(0.0)
}

/// A plain HTTP/1.1 GET: status and body (the server closes after it).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw)).await.expect("response in time").expect("read response");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("bad response {head:?}"));
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { unchunk(body) } else { body.into() };
    (status, body)
}

pub fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// How a connection ended, seen from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// A close frame with code and reason.
    Close(u16, String),
    /// The TCP connection ended without a close frame.
    Dropped,
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

    /// Reads for `for_` as a live client does, answering pings; fails on
    /// any frame but pings and pongs.
    pub async fn answer_pings_for(&mut self, for_: Duration) {
        let until = tokio::time::Instant::now() + for_;
        while let Ok(msg) = tokio::time::timeout_at(until, self.ws.next()).await {
            match msg {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected only pings, got {other:?}"),
            }
        }
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

    /// Reads until the connection ends; returns the text frames read before.
    pub async fn read_to_end(&mut self) -> (Vec<Value>, Ending) {
        let mut frames = Vec::new();
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("the connection ends in time");
            match msg {
                Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(&t).expect("server sends JSON")),
                Some(Ok(Message::Close(Some(f)))) => {
                    return (frames, Ending::Close(f.code.into(), f.reason.to_string()));
                }
                Some(Ok(Message::Close(None))) => return (frames, Ending::Close(1005, String::new())),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (frames, Ending::Dropped),
            }
        }
    }

    /// Sends a raw WebSocket message (binary, ping...).
    pub async fn send_msg(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// Closes cleanly with a close frame and waits for the server's answer.
    pub async fn close(mut self) {
        self.ws.close(None).await.expect("close");
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }

    /// Drops the TCP connection without a close frame.
    pub async fn drop_abruptly(self) {
        let stream = self.ws.into_inner();
        drop(stream);
    }
}

/// The built `switchboard` binary running as a child process.
pub struct Bin {
    pub child: std::process::Child,
    /// Stderr lines, as they come.
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Bin {
    /// Starts the binary with `args` and extra environment variables;
    /// logs at info level without colours.
    pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Bin {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.args(args)
            .env("RUST_LOG", "switchboard=info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(strip_ansi(&line)).is_err() {
                    break;
                }
            }
        });
        Bin { child, lines }
    }

    /// Waits for a stderr line containing `needle`.
    pub fn wait_line(&self, needle: &str) -> String {
        let give_up = std::time::Instant::now() + WAIT;
        loop {
            let left = give_up.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    }

    /// The address of the first listener, from its `listening ... addr=` log line.
    pub fn addr(&self) -> SocketAddr {
        let line = self.wait_line("listening");
        let addr = line.split("addr=").nth(1).and_then(|s| s.split_whitespace().next()).expect("addr= in the line");
        addr.parse().unwrap_or_else(|e| panic!("{addr:?} in {line:?}: {e}"))
    }

    /// Sends a signal with `kill`.
    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit (failing after [`WAIT`]).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let give_up = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(std::time::Instant::now() < give_up, "the process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the binary to completion: exit status, stdout, stderr.
    pub fn run(args: &[&str]) -> (std::process::ExitStatus, String, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("the binary runs");
        (out.status, String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes ANSI colour sequences from a log line.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A TLS connector (ring provider) that trusts only the CA in `ca` (PEM).
pub fn tls_connector(ca: &std::path::Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("switchboard-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Sample signaling payloads used by the dialect transcripts.
pub mod samples {
    /// An offer as browsers serialise an RTCSessionDescription.
    pub const OFFER: &str = r#"{"type":"offer","sdp":"v=0..."}"#;
    /// An answer.
    pub const ANSWER: &str = r#"{"type":"answer","sdp":"v=0..."}"#;
    /// A host candidate as RTCIceCandidate.toJSON() gives it.
    pub const CANDIDATE: &str =
        r#"{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}"#;
}

/// Receives one frame and checks it is exactly `expected`, as JSON and as
/// text (field order and spelling matter to the demo clients).
pub async fn expect_exact(c: &mut Client, expected: &str) {
    let got = c.recv_text().await;
    let got_v: Value = serde_json::from_str(&got).expect("server sent JSON");
    let want_v: Value = serde_json::from_str(expected).expect("test expectation is JSON");
    assert_eq!(got_v, want_v, "frame content");
    assert_eq!(got, expected, "frame text (field order and spelling)");
}
