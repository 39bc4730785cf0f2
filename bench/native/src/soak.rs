//! The soak: N idle connections held open (welcome received, the server's
//! pings answered) while P pairs make calls ([`crate::calls`]) for a fixed
//! time. Samples the server's RSS and open files every few seconds and
//! prints them as they come; at the end, every relayed message's fate and
//! a verdict. Passes only if nothing was lost, duplicated, mis-routed, out
//! of order or late, no call failed, no idle connection was closed by the
//! server and the server is still alive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::calls::{self, CallOpts, Live, PairReport};
use crate::conn::{Conn, Target};
use crate::payload::CallSignals;
use crate::procstat;
use crate::stats::latency_json_us;

pub struct SoakOpts {
    pub idle: usize,
    pub pairs: usize,
    /// Length of the call traffic, with the idle connections held throughout.
    pub seconds: f64,
    /// Seconds between samples.
    pub sample: f64,
    /// Idle connects in flight at once (keep it under the listen backlog).
    pub concurrency: usize,
    /// Give up opening the idle connections after this long.
    pub max_connect_seconds: f64,
    pub calls: CallOpts,
}

/// SDP size of offers and answers: a one-video-track offer from a browser.
const SDP_BYTES: usize = 1500;

/// What the idle connections saw.
#[derive(Default)]
struct IdleCounts {
    opened: AtomicU64,
    failed: AtomicU64,
    alive: AtomicU64,
    closed_by_server: AtomicU64,
    /// Frames an idle connection should never get (it is not named, in no
    /// call and no room): signals among them are mis-routed.
    frames: AtomicU64,
    signals: AtomicU64,
    first_problem: Mutex<Option<String>>,
}

impl IdleCounts {
    fn note(&self, what: String) {
        if let Ok(mut p) = self.first_problem.lock() {
            p.get_or_insert(what);
        }
    }
}

/// Holds one idle connection until `stop`.
async fn hold_idle(target: Target, sem: Arc<Semaphore>, counts: Arc<IdleCounts>, mut stop: watch::Receiver<bool>) {
    let Ok(permit) = sem.acquire_owned().await else { return };
    if *stop.borrow() {
        return;
    }
    let opened = Conn::open(target, "idle").await;
    drop(permit);
    let mut conn = match opened {
        Ok(c) => c,
        Err(e) => {
            counts.failed.fetch_add(1, Ordering::Relaxed);
            counts.note(format!("idle connect: {e:#}"));
            return;
        }
    };
    counts.alive.fetch_add(1, Ordering::Relaxed);
    counts.opened.fetch_add(1, Ordering::Relaxed);
    // Reading lets tungstenite answer the server's pings.
    let closed = loop {
        tokio::select! {
            _ = stop.changed() => break false,
            r = conn.recv_text() => match r {
                Ok(Some(text)) => {
                    counts.frames.fetch_add(1, Ordering::Relaxed);
                    if text.contains("\"signal\"") {
                        counts.signals.fetch_add(1, Ordering::Relaxed);
                    }
                    counts.note(format!("an idle connection got {}", text.chars().take(160).collect::<String>()));
                }
                Ok(None) => break true,
                Err(e) => {
                    counts.note(format!("an idle connection failed: {e:#}"));
                    break true;
                }
            },
        }
    };
    counts.alive.fetch_sub(1, Ordering::Relaxed);
    if closed {
        counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
    }
    // At the end: an abrupt TCP close, cheap for both sides.
}

struct Sample {
    rss_kib: Option<u64>,
}

/// Samples and prints one row of the RSS table.
struct Sampler {
    t0: Instant,
    pid: Option<u32>,
    idle: Arc<IdleCounts>,
    live: Arc<Live>,
    rows: Vec<(&'static str, Sample)>,
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// 19644 -> "19,644".
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Sampler {
    /// Takes a sample; `false` if the server is gone.
    fn take(&mut self, phase: &'static str) -> bool {
        let t = self.t0.elapsed().as_secs_f64();
        let rss_kib = self.pid.and_then(|p| procstat::rss_kib(p).ok());
        let fds = self.pid.and_then(procstat::fds);
        println!(
            "| {t:>6.0} | {phase:<12} | {:>8} | {:>6} | {:>9} | {:>9} | {:>12} | {:>9} |",
            mib(rss_kib),
            fds.map_or("?".into(), grouped),
            grouped(self.idle.alive.load(Ordering::Relaxed)),
            grouped(self.live.calls.load(Ordering::Relaxed)),
            grouped(self.live.signals.load(Ordering::Relaxed)),
            grouped(self.live.anomalies.load(Ordering::Relaxed)),
        );
        self.rows.push((phase, Sample { rss_kib }));
        self.pid.is_none() || rss_kib.is_some()
    }
}

/// Runs the soak and prints its report; `Ok(true)` if it passed.
pub async fn run(target: Target, server_pid: Option<u32>, nonce: &str, o: SoakOpts) -> Result<bool> {
    let nofile = procstat::raise_nofile();
    let need = (o.idle + 2 * o.pairs) as u64 + 64;
    if nofile < need {
        bail!(
            "{} idle and {} pair connections need about {need} file descriptors, but RLIMIT_NOFILE is {nofile}: \
             raise the hard limit (ulimit -Hn, as root) or lower --idle",
            o.idle,
            2 * o.pairs
        );
    }
    println!(
        "soak: {} idle connections, {} pairs calling every {} ms ({} signals each way per call, new connections \
         every {} calls), {} s of traffic, server pid {}",
        grouped(o.idle as u64),
        o.pairs,
        o.calls.interval.as_millis(),
        o.calls.signals,
        o.calls.reconnect_every,
        o.seconds,
        server_pid.map_or("unknown (no RSS)".into(), |p| p.to_string()),
    );
    println!();
    println!("| t (s)  | phase        | RSS MiB  | fds    | idle open | calls     | signals      | anomalies |");
    println!("|-------:|--------------|---------:|-------:|----------:|----------:|-------------:|----------:|");

    let idle = Arc::new(IdleCounts::default());
    let live = Arc::new(Live::default());
    let mut s = Sampler { t0: Instant::now(), pid: server_pid, idle: idle.clone(), live: live.clone(), rows: vec![] };
    let mut server_alive = s.take("start");

    // Idle connections.
    let (stop_idle, stop_idle_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let t_connect = Instant::now();
    let idle_tasks: Vec<_> =
        (0..o.idle).map(|_| tokio::spawn(hold_idle(target, sem.clone(), idle.clone(), stop_idle_rx.clone()))).collect();
    let give_up = t_connect + Duration::from_secs_f64(o.max_connect_seconds);
    let mut next_row = t_connect + Duration::from_secs_f64(o.sample);
    loop {
        let done = idle.opened.load(Ordering::Relaxed) + idle.failed.load(Ordering::Relaxed);
        if done >= o.idle as u64 || Instant::now() >= give_up {
            break;
        }
        if Instant::now() >= next_row {
            server_alive &= s.take("connecting");
            next_row += Duration::from_secs_f64(o.sample);
        }
        if !server_alive {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    let opened = idle.opened.load(Ordering::Relaxed);
    server_alive &= s.take("idle open");

    // Call traffic.
    let (stop_pairs, stop_pairs_rx) = watch::channel(false);
    let opts = Arc::new(o.calls);
    let sigs = Arc::new(CallSignals::new(SDP_BYTES));
    let start = Instant::now() + Duration::from_millis(500);
    let deadline = start + Duration::from_secs_f64(o.seconds);
    let pair_tasks: Vec<_> = (0..o.pairs)
        .map(|i| {
            let first = start + opts.interval.mul_f64(i as f64 / o.pairs as f64);
            let prefix = format!("soak{nonce}-{i}");
            tokio::spawn(calls::run(
                i,
                target,
                prefix,
                opts.clone(),
                sigs.clone(),
                live.clone(),
                first,
                deadline,
                stop_pairs_rx.clone(),
            ))
        })
        .collect();
    let mut next_row = start + Duration::from_secs_f64(o.sample);
    while server_alive && next_row <= deadline {
        sleep_until(next_row).await;
        server_alive &= s.take("calls");
        next_row += Duration::from_secs_f64(o.sample);
    }
    if server_alive {
        sleep_until(deadline).await;
    } else {
        let _ = stop_pairs.send(true);
    }

    // Calls under way finish; each step is bounded by the timeout.
    let mut pairs = PairReport::default();
    let mut unfinished = 0;
    let wait = opts.timeout * 12 + Duration::from_secs(10);
    for t in pair_tasks {
        match timeout(wait, t).await {
            Ok(Ok(r)) => pairs.merge(r),
            _ => unfinished += 1,
        }
    }
    let traffic_s = start.elapsed().as_secs_f64();
    sleep(Duration::from_secs(1)).await;
    server_alive &= s.take("pairs closed");
    let idle_alive = idle.alive.load(Ordering::Relaxed);
    let _ = stop_idle.send(true);
    let _ = timeout(Duration::from_secs(30), async {
        for t in idle_tasks {
            let _ = t.await;
        }
    })
    .await;

    Ok(report(
        &idle_summary(&s, o.idle, opened, connect_s, idle_alive, &idle),
        &pairs,
        unfinished,
        traffic_s,
        server_alive,
    ))
}

/// Figures about the idle connections and memory, for the report.
struct IdleSummary {
    wanted: usize,
    opened: u64,
    connect_s: f64,
    alive_at_end: u64,
    closed_by_server: u64,
    frames: u64,
    signals: u64,
    problem: Option<String>,
    rss_start: Option<u64>,
    rss_idle: Option<u64>,
    rss_calls: Vec<u64>,
    rss_end: Option<u64>,
}

fn idle_summary(s: &Sampler, wanted: usize, opened: u64, connect_s: f64, alive: u64, idle: &IdleCounts) -> IdleSummary {
    let at = |phase: &str| s.rows.iter().find(|(p, _)| *p == phase).and_then(|(_, x)| x.rss_kib);
    IdleSummary {
        wanted,
        opened,
        connect_s,
        alive_at_end: alive,
        closed_by_server: idle.closed_by_server.load(Ordering::Relaxed),
        frames: idle.frames.load(Ordering::Relaxed),
        signals: idle.signals.load(Ordering::Relaxed),
        problem: idle.first_problem.lock().ok().and_then(|p| p.clone()),
        rss_start: at("start"),
        rss_idle: at("idle open"),
        rss_calls: s.rows.iter().filter(|(p, _)| *p == "calls").filter_map(|(_, x)| x.rss_kib).collect(),
        rss_end: s.rows.last().and_then(|(_, x)| x.rss_kib),
    }
}

/// Prints the totals and the verdict; `true` if the soak passed.
fn report(i: &IdleSummary, p: &PairReport, unfinished: usize, traffic_s: f64, server_alive: bool) -> bool {
    let g = grouped;
    println!();
    println!("## Totals");
    println!();
    println!(
        "- idle connections: {} of {} opened in {:.1} s, {} still open at the end, {} closed by the server, \
         {} frames received ({} signals)",
        g(i.opened),
        g(i.wanted as u64),
        i.connect_s,
        g(i.alive_at_end),
        g(i.closed_by_server),
        g(i.frames),
        g(i.signals),
    );
    let per_conn = match (i.rss_start, i.rss_idle) {
        (Some(a), Some(b)) if i.opened > 0 => {
            format!(" ({} B per idle connection)", grouped((b.saturating_sub(a) * 1024) / i.opened))
        }
        _ => String::new(),
    };
    let calls_min = i.rss_calls.iter().min().copied();
    let calls_max = i.rss_calls.iter().max().copied();
    println!(
        "- server RSS (MiB): {} at start, {} with the idle connections open{per_conn}; during the calls first {}, \
         min {}, max {}, last {}; {} after the pairs closed",
        mib(i.rss_start),
        mib(i.rss_idle),
        mib(i.rss_calls.first().copied()),
        mib(calls_min),
        mib(calls_max),
        mib(i.rss_calls.last().copied()),
        mib(i.rss_end),
    );
    let setup = latency_json_us(p.setup_ns.clone());
    let ms = |k: &str| setup[k].as_f64().map_or("?".into(), |us| format!("{:.2}", us / 1000.0));
    println!(
        "- calls: {} completed in {:.0} s ({:.0}/s), setup (call to accepted) p50 {} ms, p99 {} ms, max {} ms; \
         {} reconnects",
        g(p.calls),
        traffic_s,
        p.calls as f64 / traffic_s.max(1e-9),
        ms("p50"),
        ms("p99"),
        ms("max"),
        g(p.reconnects),
    );
    let t = &p.tally;
    println!(
        "- relayed signals checked: {} received; lost {}, duplicated {}, mis-routed {}, out of order {}, late {}",
        g(t.received),
        g(p.lost),
        g(t.duplicated),
        g(p.misrouted + i.signals),
        g(t.out_of_order),
        g(t.late),
    );
    println!("- errors (failed calls, server errors, timeouts, unexpected frames): {}", g(p.errors));
    println!("- server: {}", if server_alive { "alive" } else { "GONE (exited or unreadable)" });
    if let Some(e) = p.first_problem.as_ref().or(i.problem.as_ref()) {
        println!("- first problem: {e}");
    }

    let mut fails = Vec::new();
    let mut fail = |bad: bool, what: String| {
        if bad {
            fails.push(what);
        }
    };
    fail(p.lost > 0, format!("{} lost", p.lost));
    fail(t.duplicated > 0, format!("{} duplicated", t.duplicated));
    fail(p.misrouted + i.signals > 0, format!("{} mis-routed", p.misrouted + i.signals));
    fail(t.out_of_order + t.late > 0, format!("{} out of order or late", t.out_of_order + t.late));
    fail(p.errors > 0, format!("{} errors", p.errors));
    fail(unfinished > 0, format!("{unfinished} pairs did not finish"));
    fail(p.calls == 0, "no call completed".into());
    fail(i.opened < i.wanted as u64, format!("{} idle connections not opened", i.wanted as u64 - i.opened));
    fail(i.closed_by_server > 0, format!("{} idle connections closed by the server", i.closed_by_server));
    fail(i.frames > i.signals, format!("{} unexpected frames on idle connections", i.frames - i.signals));
    fail(!server_alive, "the server died".into());
    println!();
    if fails.is_empty() {
        println!("soak: PASS");
    } else {
        println!("soak: FAIL: {}", fails.join(", "));
    }
    fails.is_empty()
}
