//! Counters of a Redis server on 127.0.0.1 (`INFO stats commandstats`),
//! read before and after the relay window of a cluster run: how many
//! PUBLISH calls, commands and bytes went through it. One short blocking
//! exchange on a connection of its own; no Redis client library.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::stats::round1;

/// The counters we use, at one moment.
#[derive(Clone, Debug, Default)]
pub struct RedisCounters {
    pub commands: u64,
    pub net_in: u64,
    pub net_out: u64,
    pub publish_calls: u64,
    pub publish_usec: u64,
}

/// `INFO stats commandstats` from 127.0.0.1:`port`.
pub fn read(port: u16) -> Result<RedisCounters> {
    let mut s =
        TcpStream::connect((Ipv4Addr::LOCALHOST, port)).with_context(|| format!("Redis at 127.0.0.1:{port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"*3\r\n$4\r\nINFO\r\n$5\r\nstats\r\n$12\r\ncommandstats\r\n")?;
    let mut r = BufReader::new(s);
    let mut head = String::new();
    r.read_line(&mut head)?;
    let len: usize = head
        .strip_prefix('$')
        .or_else(|| head.strip_prefix('='))
        .ok_or_else(|| anyhow!("Redis INFO: unexpected reply {head:?}"))?
        .trim()
        .parse()
        .context("Redis INFO: length")?;
    if len > 1 << 20 {
        bail!("Redis INFO: reply of {len} bytes");
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let text = String::from_utf8_lossy(&body);
    let fields: HashMap<&str, &str> = text.lines().filter_map(|l| l.trim_end().split_once(':')).collect();
    let num = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // cmdstat_publish:calls=N,usec=U,usec_per_call=...,...
    let sub = |k: &str, sub: &str| {
        fields.get(k).and_then(|v| {
            v.split(',')
                .find_map(|kv| kv.strip_prefix(sub).and_then(|x| x.strip_prefix('=')).and_then(|x| x.parse().ok()))
        })
    };
    Ok(RedisCounters {
        commands: num("total_commands_processed"),
        net_in: num("total_net_input_bytes"),
        net_out: num("total_net_output_bytes"),
        publish_calls: sub("cmdstat_publish", "calls").unwrap_or(0),
        publish_usec: sub("cmdstat_publish", "usec").unwrap_or(0),
    })
}

/// What went through Redis between two readings, per second of `seconds`.
pub fn rates(before: &RedisCounters, after: &RedisCounters, seconds: f64) -> Value {
    let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
    let publishes = d(after.publish_calls, before.publish_calls);
    json!({
        "commands_per_s": (d(after.commands, before.commands) / seconds).round() as u64,
        "publishes_per_s": (publishes / seconds).round() as u64,
        "net_in_bytes_per_s": (d(after.net_in, before.net_in) / seconds).round() as u64,
        "net_out_bytes_per_s": (d(after.net_out, before.net_out) / seconds).round() as u64,
        "publish_usec_per_call": if publishes > 0.0 {
            Value::from(round1(d(after.publish_usec, before.publish_usec) / publishes))
        } else {
            Value::Null
        },
    })
}
