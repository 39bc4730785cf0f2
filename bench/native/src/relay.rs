//! The relay workload: P pairs; each sender keeps W signals in flight to its
//! partner, which sends each one straight back. Counts relayed messages
//! (two per round trip) in a fixed window, round-trip times, lost and
//! mis-ordered messages, and the server's CPU time in that window.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::conn::{Conn, Target};
use crate::payload::{self, Payload};
use crate::procstat::{self, CpuSnapshot};
use crate::proto::Kind;
use crate::redisinfo;
use crate::stats::{latency_json_us, round2, round3};

pub struct RelayOpts {
    pub pairs: usize,
    pub window: usize,
    pub size: usize,
    pub seconds: f64,
    /// Unrecorded relay (on separate connections) before the measured one.
    pub warmup: f64,
    /// Time allowed after the window for in-flight messages to come back.
    pub drain: f64,
}

/// The processes of the setup, besides the load: the server the A sides
/// connect to, and for a cluster run the server of the B sides and Redis.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    /// The first server (A sides; both sides when there is no second).
    pub server_pid: Option<u32>,
    /// Where the B side of every pair connects, if not to the first server.
    pub target_b: Option<Target>,
    pub server_pid_b: Option<u32>,
    /// Redis of the cluster: its port (for INFO counters) and PID (CPU).
    pub redis_port: Option<u16>,
    pub redis_pid: Option<u32>,
}

impl Setup {
    /// Processes whose CPU is read besides the first server's: the second
    /// server, then Redis (absent ones are left out).
    fn extra_pids(&self) -> Vec<u32> {
        self.server_pid_b.into_iter().chain(self.redis_pid).collect()
    }
}

/// Connections opened at once while setting up pairs.
const CONNECT_CONCURRENCY: usize = 64;

/// Opens the pairs: side A on `target`, side B on `target_b` (the same
/// server when `None`).
async fn connect_pairs(
    target: Target,
    target_b: Option<Target>,
    prefix: &str,
    pairs: usize,
) -> Result<Vec<(Conn, Conn)>> {
    let target_b = target_b.unwrap_or(target);
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let tasks: Vec<_> = (0..pairs)
        .map(|i| {
            let sem = sem.clone();
            let label = format!("{prefix}-{i}");
            tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                let a = Conn::open(target, &format!("{label}-a")).await?;
                let b = Conn::open(target_b, &format!("{label}-b")).await?;
                Ok::<_, anyhow::Error>((a, b))
            })
        })
        .collect();
    let mut out = Vec::with_capacity(pairs);
    for t in tasks {
        out.push(t.await.context("pair setup task panicked")??);
    }
    Ok(out)
}

#[derive(Default)]
struct SenderTally {
    in_window: u64,
    total: u64,
    misordered: u64,
    lost: u64,
    rtt_ns: Vec<u64>,
    error: Option<String>,
}

struct Clock {
    /// `sent_us` in payloads counts from here.
    epoch: Instant,
    start: Instant,
    deadline: Instant,
    hard_end: Instant,
}

async fn send_side(a: &mut Conn, dst: &str, payload: &Payload, window: usize, clock: &Clock) -> SenderTally {
    let mut t = SenderTally::default();
    let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::with_capacity(window + 1);
    let mut next_seq = 0u64;
    let stamp = |now: Instant| (now - clock.epoch).as_micros() as u64;
    sleep_until(clock.start).await;
    for _ in 0..window {
        let now = Instant::now();
        if let Err(e) = a.feed_signal(Kind::Offer, dst, &payload.render(next_seq, stamp(now))).await {
            t.error = Some(format!("{e:#}"));
            return t;
        }
        in_flight.push_back((next_seq, now));
        next_seq += 1;
    }
    if let Err(e) = a.flush().await {
        t.error = Some(format!("{e:#}"));
        return t;
    }
    while let Some(&(want, sent_at)) = in_flight.front() {
        let echoed = match timeout_at(clock.hard_end, a.recv_signal()).await {
            Err(_) => break, // drain time over: what is still out counts as lost
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => {
                t.error = Some("the server closed the sender's connection".into());
                break;
            }
            Ok(Err(e)) => {
                t.error = Some(format!("{e:#}"));
                break;
            }
        };
        let now = Instant::now();
        in_flight.pop_front();
        if payload::seq_of(&echoed.payload) != Some(want) {
            t.misordered += 1;
        }
        t.rtt_ns.push((now - sent_at).as_nanos() as u64);
        t.total += 1;
        if now <= clock.deadline {
            t.in_window += 1;
            if now < clock.deadline {
                if let Err(e) = a.send_signal(Kind::Offer, dst, &payload.render(next_seq, stamp(now))).await {
                    t.error = Some(format!("{e:#}"));
                    break;
                }
                in_flight.push_back((next_seq, now));
                next_seq += 1;
            }
        }
    }
    t.lost = in_flight.len() as u64;
    t
}

/// Send every signal straight back to its sender, as an answer, until the
/// sender is done or time is up.
async fn echo_side(b: &mut Conn, mut done: watch::Receiver<bool>, until: Instant) -> Option<String> {
    loop {
        tokio::select! {
            _ = done.changed() => return None,
            r = timeout_at(until, b.recv_signal()) => match r {
                Err(_) => return None,
                Ok(Ok(Some(s))) => {
                    if let Err(e) = b.send_signal(Kind::Answer, &s.from, &s.payload).await {
                        return Some(format!("{e:#}"));
                    }
                }
                Ok(Ok(None)) => return Some("the server closed the echoing connection".into()),
                Ok(Err(e)) => return Some(format!("{e:#}")),
            }
        }
    }
}

struct PhaseOutcome {
    tally: SenderTally,
    errors: u64,
    cpu: procstat::CpuUse,
    /// Redis counters over the window (cluster runs with `--redis-port`).
    redis: Option<Value>,
    server_rss_kib: Option<u64>,
    conns: Vec<Conn>,
}

/// One relay run over already connected pairs.
async fn relay_phase(
    pairs: Vec<(Conn, Conn)>,
    payload: Arc<Payload>,
    o: &RelayOpts,
    seconds: f64,
    setup: Option<&Setup>,
) -> Result<PhaseOutcome> {
    let server_pid = setup.and_then(|s| s.server_pid);
    let extra = setup.map(Setup::extra_pids).unwrap_or_default();
    let redis_port = setup.and_then(|s| s.redis_port);
    let epoch = Instant::now();
    let start = epoch + Duration::from_millis(300);
    let deadline = start + Duration::from_secs_f64(seconds);
    let clock = Arc::new(Clock { epoch, start, deadline, hard_end: deadline + Duration::from_secs_f64(o.drain) });

    let mut senders = Vec::with_capacity(pairs.len());
    let mut echoers = Vec::with_capacity(pairs.len());
    for (mut a, mut b) in pairs {
        let dst = b.id().to_string();
        let (done_tx, done_rx) = watch::channel(false);
        let until = clock.hard_end + Duration::from_secs(1);
        echoers.push(tokio::spawn(async move {
            let err = echo_side(&mut b, done_rx, until).await;
            (b, err)
        }));
        let (payload, clock, window) = (payload.clone(), clock.clone(), o.window);
        senders.push(tokio::spawn(async move {
            let t = send_side(&mut a, &dst, &payload, window, &clock).await;
            let _ = done_tx.send(true);
            (a, t)
        }));
    }

    sleep_until(start).await;
    let redis_before = redis_port.map(redisinfo::read);
    let before = CpuSnapshot::take_with(server_pid, &extra);
    sleep_until(deadline).await;
    let cpu = CpuSnapshot::take_with(server_pid, &extra).since(&before);
    let redis = match (redis_before, redis_port.map(redisinfo::read)) {
        (Some(Ok(b)), Some(Ok(a))) => Some(redisinfo::rates(&b, &a, seconds)),
        (Some(Err(e)), _) | (_, Some(Err(e))) => Some(json!({ "error": format!("{e:#}") })),
        _ => None,
    };
    let server_rss_kib = server_pid.and_then(|p| procstat::rss_kib(p).ok());

    let mut tally = SenderTally::default();
    let mut errors = 0u64;
    let mut conns = Vec::new();
    for s in senders {
        let (a, t) = s.await.map_err(|e| anyhow!("sender task failed: {e}"))?;
        tally.in_window += t.in_window;
        tally.total += t.total;
        tally.misordered += t.misordered;
        tally.lost += t.lost;
        tally.rtt_ns.extend(t.rtt_ns);
        if let Some(e) = t.error {
            errors += 1;
            tally.error.get_or_insert(e);
        }
        conns.push(a);
    }
    for h in echoers {
        let (b, err) = h.await.map_err(|e| anyhow!("echo task failed: {e}"))?;
        if let Some(e) = err {
            errors += 1;
            tally.error.get_or_insert(e);
        }
        conns.push(b);
    }
    Ok(PhaseOutcome { tally, errors, cpu, redis, server_rss_kib, conns })
}

async fn close_all(conns: Vec<Conn>) {
    let closing: Vec<_> = conns.into_iter().map(|c| tokio::spawn(c.close())).collect();
    for c in closing {
        let _ = c.await;
    }
}

pub async fn run(target: Target, setup: Setup, nonce: &str, o: RelayOpts) -> Result<Value> {
    procstat::raise_nofile();
    let payload = Arc::new(Payload::new(o.size));

    // Warm-up on its own connections, closed cleanly afterwards so the
    // server holds no leftover sessions (a native peer dropped without a
    // close would wait out its resume grace).
    if o.warmup > 0.0 {
        let pairs = connect_pairs(target, setup.target_b, &format!("w{nonce}"), o.pairs)
            .await
            .context("warm-up connections")?;
        let out = relay_phase(pairs, payload.clone(), &o, o.warmup, None).await?;
        close_all(out.conns).await;
    }

    let t = Instant::now();
    let pairs = connect_pairs(target, setup.target_b, &format!("r{nonce}"), o.pairs).await?;
    let setup_s = t.elapsed().as_secs_f64();
    let out = relay_phase(pairs, payload.clone(), &o, o.seconds, Some(&setup)).await?;
    drop(out.conns);

    let msgs = 2.0 * out.tally.in_window as f64;
    // All servers together: with two nodes, the second's CPU counts too.
    let mut extra = out.cpu.extra_s.iter().copied();
    let server_b_s = if setup.server_pid_b.is_some() { extra.next().flatten() } else { None };
    let redis_s = if setup.redis_pid.is_some() { extra.next().flatten() } else { None };
    let servers_s = match (out.cpu.server_s, setup.server_pid_b) {
        (Some(a), Some(_)) => server_b_s.map(|b| a + b),
        (a, None) => a,
        (None, Some(_)) => None,
    };
    let per_cpu = servers_s.filter(|&s| s > 0.0).map(|s| (msgs / s).round() as u64);
    let split = setup.target_b.is_some_and(|b| b.port != target.port);
    // Split pairs: every relayed message goes from one node to the other
    // through Redis exactly once.
    let cross = if split { Some((msgs / o.seconds).round() as u64) } else { Some(0) };
    Ok(json!({
        "split": split,
        "port_b": setup.target_b.map(|b| b.port),
        "server_a_cpu_s": out.cpu.server_s.map(round3),
        "server_b_cpu_s": server_b_s.map(round3),
        "redis_cpu_s": redis_s.map(round3),
        "redis_cpu_util": redis_s.map(|s| round2(s / o.seconds)),
        "redis": out.redis,
        "cross_node_msgs_per_s": if setup.redis_port.is_some() || split { cross } else { None },
        "pairs": o.pairs,
        "window": o.window,
        "payload_bytes": payload.typical_len(),
        "seconds": o.seconds,
        "warmup_s": o.warmup,
        "setup_s": round2(setup_s),
        "round_trips": out.tally.in_window,
        "relayed_msgs_per_s": (msgs / o.seconds).round() as u64,
        "rtt_us": latency_json_us(out.tally.rtt_ns),
        "server_cpu_s": servers_s.map(round3),
        "server_cpu_util": servers_s.map(|s| round2(s / o.seconds)),
        "msgs_per_server_cpu_s": per_cpu,
        "client_cpu_s": out.cpu.client_s.map(round3),
        "other_cpu_s": out.cpu.other_s.map(round2),
        "server_rss_kib": out.server_rss_kib,
        "misordered": out.tally.misordered,
        "lost": out.tally.lost,
        "errors": out.errors,
        "first_error": out.tally.error,
    }))
}
