//! Markdown tables of medians from result lines (one JSON object a line).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::stats::median;

/// One table row: label, how to read a number from a result line, format.
struct Row {
    label: &'static str,
    value: fn(&Value) -> Option<f64>,
    format: fn(f64) -> String,
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn thousands(x: f64) -> String {
    format!("{:.1} k", x / 1000.0)
}

fn whole(x: f64) -> String {
    format!("{x:.0}")
}

fn two(x: f64) -> String {
    format!("{x:.2}")
}

const RELAY_ROWS: &[Row] = &[
    Row { label: "relayed msgs/s", value: |v| num(v, &["relayed_msgs_per_s"]), format: thousands },
    Row { label: "msgs per server CPU-second", value: |v| num(v, &["msgs_per_server_cpu_s"]), format: thousands },
    Row { label: "server CPU (cores busy)", value: |v| num(v, &["server_cpu_util"]), format: two },
    Row { label: "RTT p50 (ms)", value: |v| num(v, &["rtt_us", "p50"]).map(|u| u / 1000.0), format: two },
    Row { label: "RTT p99 (ms)", value: |v| num(v, &["rtt_us", "p99"]).map(|u| u / 1000.0), format: two },
    Row { label: "lost + mis-ordered", value: |v| Some(num(v, &["lost"])? + num(v, &["misordered"])?), format: whole },
    Row { label: "errors", value: |v| num(v, &["errors"]), format: whole },
    Row { label: "other processes' CPU-s in window", value: |v| num(v, &["other_cpu_s"]), format: two },
    // Cluster runs only (rows with no figure at all are left out).
    Row {
        label: "cross-node msgs/s (through Redis)",
        value: |v| num(v, &["cross_node_msgs_per_s"]),
        format: thousands,
    },
    Row { label: "Redis CPU (cores busy)", value: |v| num(v, &["redis_cpu_util"]), format: two },
    Row { label: "Redis PUBLISH calls/s", value: |v| num(v, &["redis", "publishes_per_s"]), format: thousands },
    Row {
        label: "cross-node msgs per PUBLISH",
        value: |v| {
            let p = num(v, &["redis", "publishes_per_s"])?;
            if p > 0.0 { Some(num(v, &["cross_node_msgs_per_s"])? / p) } else { None }
        },
        format: |x| format!("{x:.1}"),
    },
    Row {
        label: "Redis in + out (MB/s)",
        value: |v| Some((num(v, &["redis", "net_in_bytes_per_s"])? + num(v, &["redis", "net_out_bytes_per_s"])?) / 1e6),
        format: |x| format!("{x:.1}"),
    },
    Row {
        label: "cross-node msgs per Redis CPU-second",
        value: |v| {
            let r = num(v, &["redis_cpu_util"])?;
            if r > 0.0 { Some(num(v, &["cross_node_msgs_per_s"])? / r) } else { None }
        },
        format: thousands,
    },
];

const IDLE_ROWS: &[Row] = &[
    Row {
        label: "RSS per connection (KiB)",
        value: |v| num(v, &["bytes_per_conn"]).map(|b| b / 1024.0),
        format: |x| format!("{x:.1}"),
    },
    Row { label: "connects/s", value: |v| num(v, &["connect_rate_per_s"]), format: whole },
    Row { label: "registered", value: |v| num(v, &["ok"]), format: whole },
    Row { label: "still open at the end", value: |v| num(v, &["alive_after_hold"]), format: whole },
    Row { label: "failed", value: |v| num(v, &["failed"]), format: whole },
];

/// Figures compared with a baseline server's, run by run.
const RATIO_ROWS: &[(&str, &[&str])] = &[
    ("relayed msgs/s", &["relayed_msgs_per_s"]),
    ("RTT p50", &["rtt_us", "p50"]),
    ("RTT p99", &["rtt_us", "p99"]),
    ("msgs per server CPU-second", &["msgs_per_server_cpu_s"]),
];

/// Markdown tables of medians; with `baseline`, also each relay figure of
/// `RATIO_ROWS` over the baseline server's in the same repetition
/// (`tags.rep`), as the median of those per-repetition ratios.
pub fn print(input: &Path, run: Option<&str>, baseline: Option<&str>) -> Result<()> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let mut lines = Vec::new();
    for (i, l) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(l).with_context(|| format!("{}:{}: not JSON", input.display(), i + 1))?;
        if run.is_none_or(|r| v["tags"]["run"].as_str() == Some(r)) {
            lines.push(v);
        }
    }
    let mut servers: Vec<String> = Vec::new();
    for v in &lines {
        let s = server_of(v);
        if !servers.contains(&s) {
            servers.push(s);
        }
    }
    for (workload, rows) in [("relay", RELAY_ROWS), ("idle", IDLE_ROWS)] {
        let of_kind: Vec<&Value> = lines.iter().filter(|v| v["workload"] == workload).collect();
        if of_kind.is_empty() {
            continue;
        }
        println!("\n### {workload} (medians)\n");
        println!("| | {} |", servers.join(" | "));
        println!("|---|{}", "---:|".repeat(servers.len()));
        let good = |s: &str| -> Vec<&Value> {
            of_kind.iter().copied().filter(|v| server_of(v) == s && v.get("error").is_none()).collect()
        };
        let reps: Vec<String> = servers.iter().map(|s| good(s).len().to_string()).collect();
        println!("| runs | {} |", reps.join(" | "));
        for row in rows {
            let cells: Vec<String> = servers
                .iter()
                .map(|s| {
                    let xs: Vec<f64> = good(s).iter().filter_map(|v| (row.value)(v)).collect();
                    median(xs).map_or("-".to_string(), row.format)
                })
                .collect();
            if cells.iter().all(|c| c == "-") {
                continue;
            }
            println!("| {} | {} |", row.label, cells.join(" | "));
        }
        if let (Some(base), "relay") = (baseline, workload) {
            let others: Vec<&String> = servers.iter().filter(|s| s.as_str() != base).collect();
            println!("\n### relay, ratio to {base} in the same repetition (median of per-repetition ratios)\n");
            println!("| | {} |", others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" | "));
            println!("|---|{}", "---:|".repeat(others.len()));
            for (label, path) in RATIO_ROWS {
                let cells: Vec<String> = others
                    .iter()
                    .map(|s| {
                        let ratios: Vec<f64> = good(s)
                            .iter()
                            .filter_map(|v| {
                                let b = good(base).into_iter().find(|b| b["tags"]["rep"] == v["tags"]["rep"])?;
                                let (x, y) = (num(v, path)?, num(b, path)?);
                                (y > 0.0).then(|| x / y)
                            })
                            .collect();
                        let (n, m) = (ratios.len(), median(ratios.clone()));
                        let all: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
                        m.map_or("-".into(), |m| format!("{m:.2}x ({n} reps: {})", all.join(", ")))
                    })
                    .collect();
                println!("| {label} | {} |", cells.join(" | "));
            }
        }
        for v in of_kind.iter().filter(|v| v.get("error").is_some()) {
            println!("\n- {} failed: {}", server_of(v), v["error"]);
        }
    }
    Ok(())
}

fn server_of(v: &Value) -> String {
    v["tags"]["server"].as_str().or(v["proto"].as_str()).unwrap_or("?").to_string()
}
