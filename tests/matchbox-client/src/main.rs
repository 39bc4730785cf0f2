//! The real `matchbox_socket` client (native, webrtc-rs) against
//! switchboard's `matchbox` dialect: the scenarios games depend on, each
//! with its own WebRTC data channels over loopback.
//!
//! Usage: `matchbox-client-test [SWITCHBOARD_BIN]` starts that binary (or
//! `$SWITCHBOARD_BIN`) with `--dialect matchbox --listen 127.0.0.1:0` and
//! stops it at the end; `matchbox-client-test --url ws://127.0.0.1:PORT`
//! uses a server that is already running. Only 127.0.0.1 is accepted, and
//! the clients get no STUN/TURN servers: ICE uses host candidates only.
//!
//! Scenarios:
//! - `mesh`: three clients in one room form a full mesh of data channels
//!   and each sends numbered messages to the others, received in order;
//! - `pairs`: four clients at `?next=2` form two pairs, each client seeing
//!   only its partner;
//! - `leave`: a client that goes away is reported disconnected to the
//!   others, who stay connected to each other.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use matchbox_socket::{ChannelConfig, PeerId, PeerState, RtcIceServerConfig, WebRtcSocket};
use tokio::task::JoinHandle;

/// How long a scenario step may take (ICE on loopback takes well under a second).
const STEP: Duration = Duration::from_secs(30);
/// How often sockets are polled.
const POLL: Duration = Duration::from_millis(10);
/// Messages each client sends to each other in `mesh`.
const MESSAGES: usize = 50;

type Result<T = ()> = std::result::Result<T, String>;

/// A switchboard binary started for this run, stopped when dropped.
struct Server {
    child: Child,
    /// `ws://127.0.0.1:PORT`.
    base: String,
}

impl Server {
    fn start(bin: &str) -> Result<Server> {
        let mut child = Command::new(bin)
            .args(["--dialect", "matchbox", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "switchboard=info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {bin}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        // Reads the log to the end (a full pipe would stall the server);
        // `MATCHBOX_TEST_LOG=1` shows it.
        std::thread::spawn(move || {
            let show = std::env::var_os("MATCHBOX_TEST_LOG").is_some();
            for line in BufReader::new(stderr).lines().map_while(std::result::Result::ok) {
                if show {
                    eprintln!("  server: {line}");
                }
                let _ = tx.send(line);
            }
        });
        let mut server = Server { child, base: String::new() };
        let give_up = Instant::now() + STEP;
        while server.base.is_empty() {
            let left = give_up.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| "the server did not log its address".to_string())?;
            if let Some(addr) = line.contains("listening").then(|| line.split("addr=").nth(1)).flatten() {
                let addr = addr.split_whitespace().next().unwrap_or_default();
                server.base = format!("ws://{addr}");
            }
        }
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One game client: its socket and the task driving its message loop.
struct Player {
    name: String,
    socket: WebRtcSocket,
    task: JoinHandle<std::result::Result<(), matchbox_socket::Error>>,
    /// Every peer it was ever connected to.
    seen: BTreeSet<PeerId>,
}

impl Player {
    fn join(name: &str, url: &str) -> Player {
        let (socket, message_loop) = WebRtcSocket::builder(url)
            // Loopback only: host candidates, no STUN server to ask.
            .ice_server(RtcIceServerConfig { urls: vec![], ..Default::default() })
            .add_channel(ChannelConfig::reliable())
            .build();
        Player { name: name.into(), socket, task: tokio::spawn(message_loop), seen: BTreeSet::new() }
    }

    /// Polls the socket until `done` holds (failing after [`STEP`]).
    async fn until(&mut self, what: &str, mut done: impl FnMut(&mut Player) -> bool) -> Result {
        let give_up = Instant::now() + STEP;
        loop {
            let changes = self.socket.try_update_peers().map_err(|e| format!("{}: socket ended: {e}", self.name))?;
            for (peer, state) in changes {
                if state == PeerState::Connected {
                    self.seen.insert(peer);
                }
            }
            if done(self) {
                return Ok(());
            }
            if Instant::now() > give_up {
                return Err(format!("{}: {what} did not happen within {STEP:?}", self.name));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn id(&mut self) -> Result<PeerId> {
        let mut id = None;
        self.until("IdAssigned", |p| {
            id = p.socket.id();
            id.is_some()
        })
        .await?;
        id.ok_or_else(|| "no id".into())
    }

    fn connected(&self) -> BTreeSet<PeerId> {
        self.socket.connected_peers().collect()
    }

    async fn connected_to(&mut self, peers: &BTreeSet<PeerId>) -> Result {
        let want = peers.clone();
        self.until(&format!("connecting to {} peers", want.len()), |p| p.connected() == want).await
    }

    /// Waits for `count` messages from each of `from`; returns them by sender, in arrival order.
    async fn receive(&mut self, from: &BTreeSet<PeerId>, count: usize) -> Result<BTreeMap<PeerId, Vec<String>>> {
        let mut got: BTreeMap<PeerId, Vec<String>> = BTreeMap::new();
        let mut stray = None;
        self.until(&format!("{count} messages from each of {} peers", from.len()), |p| {
            for (peer, packet) in p.socket.channel_mut(0).receive() {
                if !from.contains(&peer) {
                    stray = Some(peer);
                }
                got.entry(peer).or_default().push(String::from_utf8_lossy(&packet).into_owned());
            }
            stray.is_some() || from.iter().all(|f| got.get(f).is_some_and(|m| m.len() >= count))
        })
        .await?;
        match stray {
            Some(peer) => Err(format!("{}: a message from {peer}, who is not a partner", self.name)),
            None => Ok(got),
        }
    }
}

/// A room name no earlier run used (when the server is shared).
fn room(tag: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// Three clients, one room: a full mesh, and messages in order both ways on every link.
async fn mesh(base: &str) -> Result {
    let url = format!("{base}/{}", room("mesh"));
    let mut players: Vec<Player> = (0..3).map(|i| Player::join(&format!("mesh{i}"), &url)).collect();
    let mut ids = Vec::new();
    for p in &mut players {
        ids.push(p.id().await?);
    }
    let all: BTreeSet<PeerId> = ids.iter().copied().collect();
    for (p, id) in players.iter_mut().zip(&ids) {
        let others = all.iter().copied().filter(|o| o != id).collect();
        p.connected_to(&others).await?;
    }
    for (p, id) in players.iter_mut().zip(&ids) {
        for k in 0..MESSAGES {
            for other in all.iter().filter(|o| *o != id) {
                p.socket.channel_mut(0).send(format!("{id} #{k}").into_bytes().into(), *other);
            }
        }
    }
    for (p, id) in players.iter_mut().zip(&ids) {
        let others: BTreeSet<PeerId> = all.iter().copied().filter(|o| o != id).collect();
        let got = p.receive(&others, MESSAGES).await?;
        for (from, messages) in got {
            let want: Vec<String> = (0..MESSAGES).map(|k| format!("{from} #{k}")).collect();
            if messages != want {
                return Err(format!("{}: messages from {from} out of order or altered: {messages:?}", p.name));
            }
        }
    }
    Ok(())
}

/// Four clients at `?next=2`, arriving one after the other: two pairs.
async fn pairs(base: &str) -> Result {
    let url = format!("{base}/{}?next=2", room("pairs"));
    let mut players = Vec::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        // One at a time, so that the arrival order (and so the pairs) is known.
        let mut p = Player::join(&format!("pairs{i}"), &url);
        ids.push(p.id().await?);
        players.push(p);
    }
    for (i, p) in players.iter_mut().enumerate() {
        let partner = ids[i ^ 1];
        p.connected_to(&BTreeSet::from([partner])).await?;
        p.socket.channel_mut(0).send(format!("hello from {}", ids[i]).into_bytes().into(), partner);
    }
    for (i, p) in players.iter_mut().enumerate() {
        let partner = BTreeSet::from([ids[i ^ 1]]);
        let got = p.receive(&partner, 1).await?;
        let want = format!("hello from {}", ids[i ^ 1]);
        if got.values().next().and_then(|m| m.first()) != Some(&want) {
            return Err(format!("{}: expected {want:?}, got {got:?}", p.name));
        }
    }
    // Nobody meets anyone else later either.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, p) in players.iter_mut().enumerate() {
        p.until("a poll", |_| true).await?;
        if p.seen != BTreeSet::from([ids[i ^ 1]]) {
            return Err(format!("{}: connected to {:?}, expected only its partner {}", p.name, p.seen, ids[i ^ 1]));
        }
    }
    Ok(())
}

/// A client leaves (its process would just end: no close frame): the others
/// are told it is disconnected and stay connected to each other.
async fn leave(base: &str) -> Result {
    let url = format!("{base}/{}", room("leave"));
    let mut players: Vec<Player> = (0..3).map(|i| Player::join(&format!("leave{i}"), &url)).collect();
    let mut ids = Vec::new();
    for p in &mut players {
        ids.push(p.id().await?);
    }
    for (i, p) in players.iter_mut().enumerate() {
        let others = ids.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, id)| *id).collect();
        p.connected_to(&others).await?;
    }
    let gone = players.pop().ok_or("no player")?;
    let gone_id = ids[2];
    drop(gone.socket);
    gone.task.abort();
    for p in &mut players {
        let mut told = false;
        p.until(&format!("hearing that {gone_id} left"), |p| {
            told |= p.socket.disconnected_peers().any(|d| *d == gone_id);
            told
        })
        .await?;
    }
    let (a, b) = (ids[0], ids[1]);
    players[0].socket.channel_mut(0).send(b"still here".to_vec().into(), b);
    let got = players[1].receive(&BTreeSet::from([a]), 1).await?;
    if got.get(&a).and_then(|m| m.first()).map(String::as_str) != Some("still here") {
        return Err(format!("after the leave: {got:?}"));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (server, base) = match args.as_slice() {
        [flag, url] if flag == "--url" => {
            if !url.starts_with("ws://127.0.0.1:") {
                eprintln!("only a server on ws://127.0.0.1:PORT is tested");
                return ExitCode::from(2);
            }
            (None, url.trim_end_matches('/').to_string())
        }
        [] | [_] => {
            let bin = args.first().cloned().or_else(|| std::env::var("SWITCHBOARD_BIN").ok());
            let Some(bin) = bin else {
                eprintln!("usage: matchbox-client-test [SWITCHBOARD_BIN] | --url ws://127.0.0.1:PORT");
                return ExitCode::from(2);
            };
            match Server::start(&bin) {
                Ok(s) => {
                    let base = s.base.clone();
                    (Some(s), base)
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => {
            eprintln!("usage: matchbox-client-test [SWITCHBOARD_BIN] | --url ws://127.0.0.1:PORT");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    for (name, result) in [("mesh", mesh(&base).await), ("pairs", pairs(&base).await), ("leave", leave(&base).await)] {
        match result {
            Ok(()) => println!("matchbox client: {name} ok"),
            Err(e) => {
                failed += 1;
                println!("matchbox client: {name} FAILED: {e}");
            }
        }
    }
    drop(server);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
