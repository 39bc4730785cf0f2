//! Call traffic of one caller/callee pair, for the soak. Both connect and
//! take a name; then, one call per interval until the deadline: `call`,
//! `ring`, `accept`, `accepted`, K signals each way, `hangup`, `ended`.
//! Every signal carries the pair, the sender's id and the sender's sequence
//! number, which the receiver checks ([`SeqCheck`]). Caller and callee swap
//! each call, and who hangs up every other call; every `reconnect_every`
//! calls both connections close cleanly and new ones take new names. One
//! task drives both connections, so each side knows what the other sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval_at, timeout_at};

use crate::conn::{Conn, Target};
use crate::payload::{CallSignal, CallSignals, parse_call_signal};
use crate::proto::{self, Kind, NativeEvent};
use crate::seqcheck::{SeqCheck, Tally};

pub struct CallOpts {
    /// Signals each side sends per call (the first is its SDP).
    pub signals: usize,
    /// One call per pair per interval.
    pub interval: Duration,
    /// New connections every this many calls (0: never).
    pub reconnect_every: u64,
    /// How long one awaited event may take before it counts as missing.
    pub timeout: Duration,
}

/// Running totals of all pairs, read by the sampler while the soak runs.
#[derive(Default)]
pub struct Live {
    pub calls: AtomicU64,
    pub signals: AtomicU64,
    /// Messages lost, duplicated, mis-routed, out of order or late, and errors.
    pub anomalies: AtomicU64,
}

/// What one pair saw, or all pairs once merged.
#[derive(Default)]
pub struct PairReport {
    pub calls: u64,
    pub reconnects: u64,
    /// Relayed signals received, by fate (both directions).
    pub tally: Tally,
    /// Signals sent and never received.
    pub lost: u64,
    /// Signals or call events that reached the wrong connection or call.
    pub misrouted: u64,
    /// Server `error` frames, timeouts, closed connections, unexpected frames.
    pub errors: u64,
    pub first_problem: Option<String>,
    /// Call setup times (`call` sent to `accepted` received), nanoseconds.
    pub setup_ns: Vec<u64>,
}

impl PairReport {
    pub fn merge(&mut self, o: PairReport) {
        self.calls += o.calls;
        self.reconnects += o.reconnects;
        self.tally.add(&o.tally);
        self.lost += o.lost;
        self.misrouted += o.misrouted;
        self.errors += o.errors;
        if self.first_problem.is_none() {
            self.first_problem = o.first_problem;
        }
        self.setup_ns.extend(o.setup_ns);
    }
}

/// One end of the pair. The checker and the sequence outlive reconnects.
struct Side {
    conn: Conn,
    id: String,
    /// Signals from the partner, as they arrive here.
    check: SeqCheck,
    /// Sequence number of this side's next signal.
    next_seq: u64,
}

struct Pair {
    index: usize,
    target: Target,
    /// Names are `{prefix}-{a|b}{generation}`: unique across reconnects.
    prefix: String,
    generation: u64,
    next_ref: u64,
    /// Signals each side sends per call.
    signals: usize,
    timeout: Duration,
    report: PairReport,
    live: Arc<Live>,
}

/// The start of a frame, for messages about it.
fn short(text: &str) -> String {
    text.chars().take(160).collect()
}

impl Pair {
    fn take_ref(&mut self) -> u64 {
        self.next_ref += 1;
        self.next_ref
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    fn problem(&mut self, what: String) {
        self.live.anomalies.fetch_add(1, Ordering::Relaxed);
        self.report.first_problem.get_or_insert_with(|| format!("pair {}: {what}", self.index));
    }

    fn error(&mut self, what: String) {
        self.report.errors += 1;
        self.problem(what);
    }

    fn misrouted(&mut self, what: String) {
        self.report.misrouted += 1;
        self.problem(what);
    }

    /// A relayed signal at `side`: from the partner, of this pair, and next
    /// in the partner's sequence?
    fn on_signal(&mut self, side: &mut Side, partner: &str, ev: &NativeEvent, text: &str) {
        self.live.signals.fetch_add(1, Ordering::Relaxed);
        let from = ev.from.as_ref().map(|p| p.id.as_str());
        match ev.data.as_deref().and_then(|d| parse_call_signal(d.get())) {
            Some(s) if s.pair == self.index as u64 && s.from == partner && from == Some(partner) => {
                let before = side.check.tally();
                side.check.observe(s.seq);
                let after = side.check.tally();
                let odd = |t: Tally| t.out_of_order + t.duplicated + t.late;
                if odd(after) > odd(before) {
                    self.problem(format!("{} got seq {} from {partner} out of order, again or late", side.id, s.seq));
                }
            }
            _ => self.misrouted(format!("{} (partner {partner:?}) got a signal not for it: {}", side.id, short(text))),
        }
    }

    /// A frame that is not the one awaited: check signals, skip presence.
    fn other_frame(&mut self, side: &mut Side, partner: &str, ev: &NativeEvent, text: &str) -> Result<()> {
        match ev.ty.as_str() {
            "signal" => self.on_signal(side, partner, ev, text),
            "online" | "offline" => {}
            "error" => bail!("{} got {}", side.id, short(text)),
            _ => self.error(format!("{} got an unexpected frame: {}", side.id, short(text))),
        }
        Ok(())
    }

    /// The next frame on `side` before `deadline`.
    async fn next(&mut self, side: &mut Side, deadline: Instant, waiting_for: &str) -> Result<(NativeEvent, String)> {
        let text = match timeout_at(deadline, side.conn.recv_text()).await {
            Err(_) => bail!("{} got no {waiting_for} within {:?}", side.id, self.timeout),
            Ok(r) => r?.ok_or_else(|| anyhow!("the server closed {}'s connection", side.id))?,
        };
        Ok((proto::decode_event(&text)?, text.to_string()))
    }

    /// Reads `side` until a frame of type `ty` that `fits`; one of that type
    /// that does not fit is mis-routed. Signals on the way are checked.
    async fn until(
        &mut self,
        side: &mut Side,
        partner: &str,
        ty: &str,
        fits: impl Fn(&NativeEvent) -> bool,
    ) -> Result<NativeEvent> {
        let deadline = self.deadline();
        loop {
            let (ev, text) = self.next(side, deadline, ty).await?;
            if ev.ty != ty {
                self.other_frame(side, partner, &ev, &text)?;
            } else if fits(&ev) {
                return Ok(ev);
            } else {
                self.misrouted(format!("{} (partner {partner:?}) got a {ty} not for it: {}", side.id, short(&text)));
            }
        }
    }

    /// Reads `side` until every signal of the partner up to `last` is in;
    /// those still missing at the timeout are given up as lost.
    async fn until_complete(&mut self, side: &mut Side, partner: &str, last: u64) -> Result<()> {
        let deadline = self.deadline();
        while !side.check.complete_through(last) {
            match self.next(side, deadline, "signal").await {
                Ok((ev, text)) => self.other_frame(side, partner, &ev, &text)?,
                Err(e) if Instant::now() >= deadline => {
                    let n = side.check.give_up_through(last);
                    self.live.anomalies.fetch_add(n.saturating_sub(1), Ordering::Relaxed);
                    self.problem(format!("{n} signal(s) from {partner} up to seq {last} lost: {e:#}"));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Queues `k` signals from `s` to `to` and flushes; returns the last seq.
    async fn send_signals(
        &mut self,
        s: &mut Side,
        to: &str,
        call: &str,
        sigs: &CallSignals,
        caller: bool,
    ) -> Result<u64> {
        for i in 0..self.signals {
            let sig = CallSignal { pair: self.index as u64, from: s.id.clone(), seq: s.next_seq };
            s.conn.feed_signal(Kind::Offer, to, &sigs.render(&sig, call, i, caller)).await?;
            s.next_seq += 1;
        }
        s.conn.flush().await?;
        Ok(s.next_seq - 1)
    }

    /// Call number `n`, from setup to hang-up.
    async fn call(&mut self, sides: &mut [Side; 2], n: u64, sigs: &CallSignals) -> Result<()> {
        let [a, b] = sides;
        let (x, y) = if n.is_multiple_of(2) { (a, b) } else { (b, a) };
        let (xid, yid) = (x.id.clone(), y.id.clone());

        let t0 = Instant::now();
        let r = self.take_ref();
        x.conn.send_text(proto::request("call", &[("to", &yid)], r)).await?;
        let ok = self.until(x, &yid, "ok", |e| e.reference == Some(r)).await?;
        let call = ok.call.ok_or_else(|| anyhow!("the ok to a call has no call id"))?;
        let is_call = |e: &NativeEvent| e.call.as_deref() == Some(call.as_str());
        self.until(y, &xid, "ring", |e| is_call(e) && e.from.as_ref().is_some_and(|p| p.id == xid)).await?;
        let r = self.take_ref();
        y.conn.send_text(proto::request("accept", &[("call", &call)], r)).await?;
        self.until(y, &xid, "ok", |e| e.reference == Some(r)).await?;
        self.until(x, &yid, "accepted", |e| is_call(e) && e.by.as_ref().is_some_and(|p| p.id == yid)).await?;
        self.report.setup_ns.push(t0.elapsed().as_nanos() as u64);

        let x_last = self.send_signals(x, &yid, &call, sigs, true).await?;
        let y_last = self.send_signals(y, &xid, &call, sigs, false).await?;
        self.until_complete(y, &xid, x_last).await?;
        self.until_complete(x, &yid, y_last).await?;

        let (h, other, hid, oid) = if (n / 2).is_multiple_of(2) { (x, y, xid, yid) } else { (y, x, yid, xid) };
        let r = self.take_ref();
        h.conn.send_text(proto::request("hangup", &[("call", &call)], r)).await?;
        self.until(h, &oid, "ok", |e| e.reference == Some(r)).await?;
        self.until(other, &hid, "ended", |e| is_call(e) && e.reason.as_deref() == Some("hangup")).await?;
        self.report.calls += 1;
        self.live.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes the name of `side`'s current connection.
    async fn name(&mut self, side: &mut Side, which: &str) -> Result<()> {
        let name = format!("{}-{which}{}", self.prefix, self.generation);
        let r = self.take_ref();
        side.conn.send_text(proto::request("name", &[("name", &name)], r)).await?;
        self.until(side, "", "ok", |e| e.reference == Some(r)).await?;
        Ok(())
    }

    async fn open_side(&mut self, which: &str) -> Result<Side> {
        let conn = Conn::open(self.target, which).await?;
        let mut side = Side { id: conn.id().to_string(), conn, check: SeqCheck::default(), next_seq: 0 };
        self.name(&mut side, which).await?;
        Ok(side)
    }

    /// New named connections for both sides; the old ones close cleanly
    /// (in the background: the server frees those peers at once).
    async fn reconnect(&mut self, sides: &mut [Side; 2]) -> Result<()> {
        self.generation += 1;
        for (side, which) in sides.iter_mut().zip(["a", "b"]) {
            let conn = Conn::open(self.target, which).await?;
            let old = std::mem::replace(&mut side.conn, conn);
            side.id = side.conn.id().to_string();
            tokio::spawn(old.close());
            self.name(side, which).await?;
        }
        self.report.reconnects += 1;
        Ok(())
    }
}

/// Runs pair `index` until `deadline` (a call under way is finished) or
/// until `stop` says so; its first call is at `first`.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    index: usize,
    target: Target,
    prefix: String,
    o: Arc<CallOpts>,
    sigs: Arc<CallSignals>,
    live: Arc<Live>,
    first: Instant,
    deadline: Instant,
    mut stop: watch::Receiver<bool>,
) -> PairReport {
    let mut p = Pair {
        index,
        target,
        prefix,
        generation: 0,
        next_ref: 0,
        signals: o.signals,
        timeout: o.timeout,
        report: PairReport::default(),
        live,
    };
    let mut sides = loop {
        let opened = async { Ok::<_, anyhow::Error>([p.open_side("a").await?, p.open_side("b").await?]) }.await;
        match opened {
            Ok(s) => break s,
            Err(e) => p.error(format!("connecting: {e:#}")),
        }
        if Instant::now() + Duration::from_secs(1) >= deadline || *stop.borrow() {
            return p.report;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };

    let mut tick = interval_at(first, o.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut n = 0u64;
    let mut broken = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if Instant::now() >= deadline || *stop.borrow() {
            break;
        }
        if broken || (o.reconnect_every > 0 && n > 0 && n.is_multiple_of(o.reconnect_every)) {
            match p.reconnect(&mut sides).await {
                Ok(()) => broken = false,
                Err(e) => {
                    p.error(format!("reconnecting: {e:#}"));
                    broken = true;
                    continue;
                }
            }
        }
        if let Err(e) = p.call(&mut sides, n, &sigs).await {
            p.error(format!("call {n}: {e:#}"));
            // Start afresh; what the partner sent and this side never got is lost.
            for i in 0..2 {
                let sent = sides[1 - i].next_seq;
                if sent > 0 {
                    sides[i].check.give_up_through(sent - 1);
                }
            }
            broken = true;
        }
        n += 1;
    }

    for s in &sides {
        p.report.tally.add(&s.check.tally());
        p.report.lost += s.check.lost();
    }
    let [a, b] = sides;
    tokio::join!(a.conn.close(), b.conn.close());
    p.report
}
