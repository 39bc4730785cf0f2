//! Readings from /proc: a process's CPU time and resident memory, the
//! machine's busy CPU time, and our own file-descriptor limit.

use anyhow::{Context, Result, anyhow};

/// Clock ticks per second (`getconf CLK_TCK`).
fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a process (all its threads), in seconds; `None` = us.
pub fn cpu_seconds(pid: Option<u32>) -> Result<f64> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path} (did the server exit?)"))?;
    // The command name is in parentheses and may hold spaces: count fields
    // from the last ')'. Field 3 (state) is then index 0; utime is field 14.
    let after = text.rfind(')').ok_or_else(|| anyhow!("{path}: no ')'"))?;
    let fields: Vec<&str> = text[after + 1..].split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("{path}: too few fields"))?
            .parse()
            .with_context(|| format!("{path}: field {}", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / clk_tck())
}

/// A line's value from /proc/PID/status (e.g. `VmRSS`), first word.
fn status_field(pid: u32, key: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path} (did the server exit?)"))?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .ok_or_else(|| anyhow!("{path}: no {key}"))?;
    let word = line.split_whitespace().next().ok_or_else(|| anyhow!("{path}: empty {key}"))?;
    word.parse().with_context(|| format!("{path}: {key} value {word:?}"))
}

/// Resident set size in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_field(pid, "VmRSS")
}

pub fn threads(pid: u32) -> Option<u64> {
    status_field(pid, "Threads").ok()
}

/// Open file descriptors of a process (its sockets among them).
pub fn fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Busy CPU seconds of the whole machine (all CPUs, idle and iowait excluded).
pub fn machine_busy_seconds() -> Result<f64> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let line = text.lines().next().ok_or_else(|| anyhow!("/proc/stat is empty"))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|w| w.parse().unwrap_or(0)).collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = [0usize, 1, 2, 5, 6, 7].iter().map(|&i| v.get(i).copied().unwrap_or(0)).sum();
    Ok(busy as f64 / clk_tck())
}

/// Raise our soft RLIMIT_NOFILE to the hard limit; returns the soft limit after.
#[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
pub fn raise_nofile() -> u64 {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r.rlim_cur = r.rlim_max;
            }
        }
    }
    r.rlim_cur as u64
}

/// Soft RLIMIT_NOFILE of another process (from /proc/PID/limits).
pub fn nofile_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Server and own CPU, and the machine's, at one moment; differences of two
/// snapshots give what each used in between and what everything else did.
/// `extra` are other processes of the setup (a second server, Redis), read
/// the same way and not counted as noise.
#[derive(Clone)]
pub struct CpuSnapshot {
    server: Option<f64>,
    extra: Vec<Option<f64>>,
    me: Option<f64>,
    machine: Option<f64>,
}

pub struct CpuUse {
    pub server_s: Option<f64>,
    /// CPU of each of the `extra` processes, in their order.
    pub extra_s: Vec<Option<f64>>,
    pub client_s: Option<f64>,
    /// CPU of every other process on the machine (noise).
    pub other_s: Option<f64>,
}

impl CpuSnapshot {
    pub fn take(server_pid: Option<u32>) -> CpuSnapshot {
        Self::take_with(server_pid, &[])
    }

    pub fn take_with(server_pid: Option<u32>, extra: &[u32]) -> CpuSnapshot {
        CpuSnapshot {
            server: server_pid.and_then(|p| cpu_seconds(Some(p)).ok()),
            extra: extra.iter().map(|&p| cpu_seconds(Some(p)).ok()).collect(),
            me: cpu_seconds(None).ok(),
            machine: machine_busy_seconds().ok(),
        }
    }

    pub fn since(&self, earlier: &CpuSnapshot) -> CpuUse {
        let d = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        let server_s = d(self.server, earlier.server);
        let extra_s: Vec<Option<f64>> = self.extra.iter().zip(&earlier.extra).map(|(a, b)| d(*a, *b)).collect();
        let client_s = d(self.me, earlier.me);
        let ours = server_s.unwrap_or(0.0) + client_s.unwrap_or(0.0) + extra_s.iter().flatten().sum::<f64>();
        let other_s = d(self.machine, earlier.machine).map(|m| (m - ours).max(0.0));
        CpuUse { server_s, extra_s, client_s, other_s }
    }
}
