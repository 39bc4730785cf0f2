//! The idle workload: N registered connections held open. Server memory
//! per connection (RSS after minus RSS before, over N), connect rate, and
//! how many connections are still open at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, sleep, timeout, timeout_at};

use crate::conn::{Conn, Target};
use crate::procstat::{self, CpuSnapshot};
use crate::stats::{round2, round3};

pub struct IdleOpts {
    pub conns: usize,
    /// Connects in flight at once (keep under the server's listen backlog).
    pub concurrency: usize,
    /// Wait after the last connect before reading RSS.
    pub settle: f64,
    /// Keep holding after the RSS reading, to see that nobody is dropped.
    pub hold: f64,
    /// Give up connecting after this long.
    pub max_seconds: f64,
}

pub async fn run(target: Target, server_pid: Option<u32>, nonce: &str, o: IdleOpts) -> Result<Value> {
    let nofile = procstat::raise_nofile();
    let need = o.conns as u64 + 64;
    if nofile < need {
        bail!(
            "{} connections need about {need} file descriptors, but RLIMIT_NOFILE is {nofile}: \
             raise the hard limit (ulimit -Hn, as root) or lower --conns",
            o.conns
        );
    }
    let rss = || server_pid.and_then(|p| procstat::rss_kib(p).ok());
    let rss_before = rss();
    let cpu_before = CpuSnapshot::take(server_pid);

    let (stop_tx, stop_rx) = watch::channel(false);
    let alive = Arc::new(AtomicU64::new(0));
    let sem = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(o.conns);
    for i in 0..o.conns {
        let (sem, done_tx, alive, mut stop_rx) = (sem.clone(), done_tx.clone(), alive.clone(), stop_rx.clone());
        let label = format!("i{nonce}-{i}");
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            if *stop_rx.borrow() {
                return;
            }
            let opened = Conn::open(target, &label).await;
            drop(permit);
            let mut conn = match opened {
                Ok(c) => c,
                Err(e) => {
                    let _ = done_tx.send(Err(format!("{e:#}")));
                    return;
                }
            };
            alive.fetch_add(1, Ordering::Relaxed);
            let _ = done_tx.send(Ok(()));
            // Keep reading: tungstenite answers the server's pings, and a
            // close or error shows up here.
            let closed = loop {
                tokio::select! {
                    _ = stop_rx.changed() => break false,
                    r = conn.recv_signal() => match r {
                        Ok(Some(_)) => continue,
                        Ok(None) | Err(_) => break true,
                    },
                }
            };
            alive.fetch_sub(1, Ordering::Relaxed);
            if !closed {
                drop(conn); // abrupt TCP close: cheap for both sides
            }
        }));
    }
    drop(done_tx);

    let give_up = t0 + Duration::from_secs_f64(o.max_seconds);
    let (mut ok, mut failed) = (0usize, 0usize);
    let mut first_error = None;
    while ok + failed < o.conns {
        match timeout_at(give_up, done_rx.recv()).await {
            Ok(Some(Ok(()))) => ok += 1,
            Ok(Some(Err(e))) => {
                failed += 1;
                first_error.get_or_insert(e);
            }
            Ok(None) => break,
            Err(_) => {
                first_error.get_or_insert(format!("still connecting after --max-seconds {}", o.max_seconds));
                break;
            }
        }
    }
    let connect_s = t0.elapsed().as_secs_f64();
    let cpu_connect = CpuSnapshot::take(server_pid).since(&cpu_before);

    sleep(Duration::from_secs_f64(o.settle)).await;
    let rss_after = rss();
    let alive_after_settle = alive.load(Ordering::Relaxed);
    sleep(Duration::from_secs_f64(o.hold)).await;
    let alive_after_hold = alive.load(Ordering::Relaxed);

    let _ = stop_tx.send(true);
    let _ = timeout(Duration::from_secs(20), async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;

    let bytes_per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if ok > 0 => Some(((a as f64 - b as f64) * 1024.0 / ok as f64).round() as i64),
        _ => None,
    };
    Ok(json!({
        "conns": o.conns,
        "ok": ok,
        "failed": failed,
        "first_error": first_error,
        "concurrency": o.concurrency,
        "connect_s": round2(connect_s),
        "connect_rate_per_s": (ok as f64 / connect_s.max(1e-9)).round() as u64,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "bytes_per_conn": bytes_per_conn,
        "alive_after_settle": alive_after_settle,
        "alive_after_hold": alive_after_hold,
        "settle_s": o.settle,
        "hold_s": o.hold,
        "server_cpu_s_connect": cpu_connect.server_s.map(round3),
        "other_cpu_s_connect": cpu_connect.other_s.map(round2),
        "server_threads": server_pid.and_then(procstat::threads),
        "server_nofile": server_pid.and_then(procstat::nofile_of),
        "client_nofile": nofile,
    }))
}
