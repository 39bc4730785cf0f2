//! nativebench: load for switchboard's native protocol, next to the shared
//! benchmark kit's floor-relay, on the kit's relay and idle workloads; and a
//! soak of the native protocol alone (idle connections plus call traffic).
//! Loopback only; every loop is bounded in count and time.

mod calls;
mod conn;
mod idle;
mod payload;
mod procstat;
mod proto;
mod redisinfo;
mod relay;
mod report;
mod seqcheck;
mod soak;
mod stats;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::{Map, Value, json};

use crate::conn::Target;
use crate::proto::Proto;

#[derive(Parser)]
#[command(
    version,
    about = "Relay, idle and soak load for switchboard's native protocol and the kit's floor-relay (127.0.0.1 only)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// P pairs; each sender keeps W signals in flight to its partner, which echoes them back.
    Relay {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Payload JSON size in bytes (SDP-like object with seq and send time).
        #[arg(long, default_value_t = 1000)]
        size: usize,
        /// Measured window in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Unrecorded relay on separate connections first, in seconds (0 = none).
        #[arg(long, default_value_t = 2.0)]
        warmup: f64,
        /// Seconds allowed after the window for in-flight messages to return.
        #[arg(long, default_value_t = 5.0)]
        drain: f64,
        /// Port of a second server (a node of the same cluster): the B side of
        /// every pair connects there, the A side to --port, so every message
        /// crosses from one node to the other. Without it both sides use --port.
        #[arg(long)]
        port2: Option<u16>,
        /// PID of the second server (its CPU counts with the first's).
        #[arg(long, requires = "port2")]
        server_pid2: Option<u32>,
        /// Port of the cluster's Redis on 127.0.0.1: PUBLISH calls, commands
        /// and bytes through it in the window (INFO stats commandstats).
        #[arg(long)]
        redis_port: Option<u16>,
        /// PID of redis-server: its CPU in the window (/proc/PID/stat).
        #[arg(long)]
        redis_pid: Option<u32>,
    },
    /// Open N registered connections, hold them; server RSS per connection, connect rate, survivors.
    Idle {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 10000)]
        conns: usize,
        /// Connects in flight at once (keep it under the server's listen backlog).
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds after the last connect before reading RSS.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        /// Seconds to keep holding after the RSS reading.
        #[arg(long, default_value_t = 3.0)]
        hold: f64,
        /// Give up connecting after this many seconds.
        #[arg(long, default_value_t = 120.0)]
        max_seconds: f64,
    },
    /// Hold N idle native connections while P pairs call, signal and hang up, for S seconds;
    /// server RSS over time, and every relayed message checked (exit status 1 on any loss,
    /// duplicate, mis-route, failed call, idle connection closed by the server, or server death).
    Soak {
        /// Server port on 127.0.0.1 (native protocol).
        #[arg(long)]
        port: u16,
        /// Server PID, for RSS and open files from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Idle connections, held for the whole run.
        #[arg(long, default_value_t = 20000)]
        idle: usize,
        /// Caller/callee pairs.
        #[arg(long, default_value_t = 50)]
        pairs: usize,
        /// Seconds of call traffic.
        #[arg(long, default_value_t = 600.0)]
        seconds: f64,
        /// Seconds between RSS samples.
        #[arg(long, default_value_t = 10.0)]
        sample: f64,
        /// Signals each side sends per call (an SDP, then ICE candidates).
        #[arg(long, default_value_t = 8)]
        signals: usize,
        /// Each pair starts a call every this many milliseconds.
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
        /// Both connections of a pair are replaced every this many calls (0 = never).
        #[arg(long, default_value_t = 100)]
        reconnect_every: u64,
        /// Seconds an awaited event may take before it counts as missing.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Idle connects in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Runtime worker threads [default: all CPUs].
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Print a free TCP port on 127.0.0.1.
    FreePort,
    /// Wait until 127.0.0.1:PORT accepts connections (exit status 1 on timeout).
    WaitPort {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// Markdown tables of medians from a results file.
    Report {
        #[arg(long)]
        input: PathBuf,
        /// Only lines whose tags.run is this.
        #[arg(long)]
        run: Option<String>,
        /// Also print relay figures as ratios to this server's (tags.server)
        /// in the same repetition.
        #[arg(long)]
        baseline: Option<String>,
    },
}

#[derive(Args)]
struct Common {
    /// Protocol of the server under test.
    #[arg(long, value_enum)]
    proto: Proto,
    /// Server port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// Server PID, for CPU and RSS readings from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Runtime worker threads [default: all CPUs].
    #[arg(long)]
    threads: Option<usize>,
    /// Per-connection deadline for TCP + upgrade + registration, in seconds.
    #[arg(long, default_value_t = 10.0)]
    connect_timeout: f64,
    /// KEY=VALUE copied into the result's "tags" (repeatable).
    #[arg(long = "tag", value_parser = parse_tag)]
    tags: Vec<(String, String)>,
}

fn parse_tag(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("--tag wants KEY=VALUE, got {s:?}"))
}

fn runtime(threads: Option<usize>) -> Result<(tokio::runtime::Runtime, usize)> {
    let n = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()?;
    Ok((rt, n))
}

/// A tag for names and labels, different in each run.
fn nonce() -> String {
    format!(
        "{:x}",
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64) ^ std::process::id() as u64
    )
}

/// Run one workload and print its result line.
fn run_workload(
    common: Common,
    workload: &str,
    go: impl AsyncFnOnce(Target, Option<u32>, String) -> Result<Value>,
) -> Result<()> {
    let (rt, threads) = runtime(common.threads)?;
    let target = Target {
        proto: common.proto,
        port: common.port,
        connect_timeout: Duration::from_secs_f64(common.connect_timeout),
    };
    let results = rt.block_on(go(target, common.server_pid, nonce()))?;
    let tags: Map<String, Value> = common.tags.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let mut line = json!({
        "workload": workload,
        "proto": common.proto.name(),
        "port": common.port,
        "client_threads": threads,
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "tags": tags,
    });
    if let (Value::Object(l), Value::Object(r)) = (&mut line, results) {
        l.extend(r);
    }
    eprintln!("{}", summary(&line));
    println!("{line}");
    Ok(())
}

/// One human-readable line about a result, for stderr.
fn summary(v: &Value) -> String {
    let n = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let noise = match v["other_cpu_s"].as_f64().or(v["other_cpu_s_connect"].as_f64()) {
        Some(o) if o >= 0.5 => format!("  [other processes used {o} CPU-s meanwhile: noisy]"),
        _ => String::new(),
    };
    let text = match v["workload"].as_str() {
        Some("relay") => {
            format!(
                "{} relay: {} msgs/s, {} per server CPU-s, RTT p50 {} us p99 {} us, lost {} misordered {} errors {}",
                v["proto"].as_str().unwrap_or("?"),
                n("relayed_msgs_per_s"),
                n("msgs_per_server_cpu_s"),
                v["rtt_us"]["p50"],
                v["rtt_us"]["p99"],
                n("lost"),
                n("misordered"),
                n("errors"),
            ) + &match (v["split"].as_bool(), v["redis_cpu_util"].as_f64()) {
                (Some(true), r) => {
                    format!(", split across 2 nodes{}", r.map_or(String::new(), |r| format!(", Redis {r} cores")))
                }
                (_, Some(r)) => format!(", Redis {r} cores"),
                _ => String::new(),
            }
        }
        _ => format!(
            "{} idle: {}/{} registered, {} B/conn, {} connects/s, {} still open",
            v["proto"].as_str().unwrap_or("?"),
            n("ok"),
            n("conns"),
            n("bytes_per_conn"),
            n("connect_rate_per_s"),
            n("alive_after_hold"),
        ),
    };
    text + &noise
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Relay {
            common,
            pairs,
            window,
            size,
            seconds,
            warmup,
            drain,
            port2,
            server_pid2,
            redis_port,
            redis_pid,
        } => {
            if pairs == 0 || window == 0 || seconds <= 0.0 {
                bail!("--pairs, --window and --seconds must be positive");
            }
            let o = relay::RelayOpts { pairs, window, size, seconds, warmup, drain };
            let target_b = port2.map(|port| Target {
                proto: common.proto,
                port,
                connect_timeout: Duration::from_secs_f64(common.connect_timeout),
            });
            run_workload(common, "relay", async move |t, pid, nonce| {
                let setup =
                    relay::Setup { server_pid: pid, target_b, server_pid_b: server_pid2, redis_port, redis_pid };
                relay::run(t, setup, &nonce, o).await
            })
        }
        Cmd::Idle { common, conns, concurrency, settle, hold, max_seconds } => {
            let o = idle::IdleOpts { conns, concurrency, settle, hold, max_seconds };
            run_workload(common, "idle", async move |t, pid, nonce| idle::run(t, pid, &nonce, o).await)
        }
        Cmd::Soak {
            port,
            server_pid,
            idle,
            pairs,
            seconds,
            sample,
            signals,
            interval_ms,
            reconnect_every,
            timeout,
            concurrency,
            threads,
        } => {
            if pairs == 0 || signals == 0 || interval_ms == 0 || seconds <= 0.0 || sample <= 0.0 || timeout <= 0.0 {
                bail!("--pairs, --signals, --interval-ms, --seconds, --sample and --timeout must be positive");
            }
            // Per connection and call: one request (call or accept), the
            // signals, and every other call a hangup.
            let per_conn_per_s = (signals as f64 + 1.5) * 1000.0 / interval_ms as f64;
            if per_conn_per_s > 1000.0 {
                bail!(
                    "about {per_conn_per_s:.0} messages/s per connection: keep it under half the server's \
                     default --rate 2000 (fewer --signals or a longer --interval-ms)"
                );
            }
            let calls = calls::CallOpts {
                signals,
                interval: Duration::from_millis(interval_ms),
                reconnect_every,
                timeout: Duration::from_secs_f64(timeout),
            };
            let o = soak::SoakOpts {
                idle,
                pairs,
                seconds,
                sample,
                concurrency,
                max_connect_seconds: 120.0 + idle as f64 / 200.0,
                calls,
            };
            let target = Target { proto: Proto::Native, port, connect_timeout: Duration::from_secs(10) };
            let (rt, _) = runtime(threads)?;
            let passed = rt.block_on(soak::run(target, server_pid, &nonce(), o))?;
            if !passed {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::FreePort => {
            let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
            Ok(())
        }
        Cmd::WaitPort { port, timeout } => {
            let end = Instant::now() + Duration::from_secs_f64(timeout);
            let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if Instant::now() >= end {
                    eprintln!("nothing listens on 127.0.0.1:{port} after {timeout} s");
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        }
        Cmd::Report { input, run, baseline } => report::print(&input, run.as_deref(), baseline.as_deref()),
    }
}
