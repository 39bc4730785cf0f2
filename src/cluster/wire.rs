//! What nodes tell each other, and its byte encoding. No I/O.
//!
//! A message on a node's channel is a batch: the sender's node id, then
//! items in the order the sender produced them. The encoding is a compact
//! length-prefixed binary one of our own: payloads (JSON a node validated
//! when its client sent it) travel as bytes and are not parsed again on the
//! receiving node (`Payload::trusted`).

use std::time::Duration;

use crate::hub::{
    CallId, Command, EndReason, Event, Grant, Missing, Name, Payload, PeerId, PeerInfo, PeerOpts, PeerState, Rooms,
    SpaceId, Target, Undelivered,
};

/// A node of a cluster: a number Redis hands out, unique for the cluster's life.
pub type NodeId = u64;

/// One thing a node tells another.
#[derive(Clone, Debug)]
pub enum Item {
    /// The sender has just (re)joined: tell it everything ([`Item::Peer`] for
    /// each peer it holds).
    Hello,
    /// A peer of the sender's, as it is now (new, or a full restatement).
    Peer(PeerState),
    /// A peer of the sender's applied a command that others must replay
    /// (claims, rooms, calls); `call` is a call id it started.
    Cmd {
        /// The peer.
        from: PeerId,
        /// The command.
        cmd: Command,
        /// Id of the call a `Ring` started.
        call: Option<CallId>,
    },
    /// A peer's connection dropped; it may resume within its grace.
    Away(PeerId),
    /// A peer is gone for good.
    Gone(PeerId),
    /// A peer resumed on `node`.
    Moved {
        /// The peer.
        peer: PeerId,
        /// Its node now.
        node: NodeId,
    },
    /// An event for a peer of the receiver's.
    Deliver {
        /// The peer.
        to: PeerId,
        /// The event.
        event: Event,
        /// Whether its sender waits for room (then it may pass the
        /// receiver's hard bound; otherwise it is refused there).
        waits: bool,
    },
    /// The sender is leaving: node `by` now holds this away peer and what
    /// waited for it (sent to `by` only; the others learn where it is).
    Adopt {
        /// The peer.
        peer: PeerId,
        /// Its node from now on.
        by: NodeId,
        /// What waited for it, in order.
        events: Vec<Event>,
    },
    /// Another node wants a name this peer holds: ping its client and drop
    /// its connection if it stays silent for `wait_ms`.
    Probe {
        /// The peer.
        peer: PeerId,
        /// How long its client may take to answer.
        wait_ms: u64,
    },
    /// The sender's peer's outbox went over its budget with what the
    /// receiver forwarded: the receiver's senders to it wait.
    Full(PeerId),
    /// That outbox has room again: they go on.
    Room(PeerId),
    /// Every peer the sender holds (after its [`Item::Peer`]s): replicas of
    /// its peers not listed are gone.
    Census(Vec<PeerId>),
    /// The sender is leaving the cluster (after handing its peers over).
    Bye,
}

/// Why a batch could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed cluster message: {0}")]
pub struct Malformed(&'static str);

const VERSION: u8 = 1;

/// Longest duration a message may carry (a day): durations become deadlines.
const MAX_MS: u64 = 86_400_000;

/// Encodes a batch from `node`.
pub fn encode(node: NodeId, items: &[Item]) -> Vec<u8> {
    encode_each(node, items.iter())
}

/// Encodes a batch from `node` of items held elsewhere (the publisher keeps
/// its own in case their node turns out to be gone). The buffer is sized
/// once from the payloads' lengths: a batch of relayed signals is mostly
/// payload bytes, and growing it by doubling copied them again and again.
pub fn encode_each<'a, I>(node: NodeId, items: I) -> Vec<u8>
where
    I: ExactSizeIterator<Item = &'a Item> + Clone,
{
    let size = 16 + items.clone().map(estimate).sum::<usize>();
    let mut w = Writer(Vec::with_capacity(size));
    w.u8(VERSION);
    w.u64(node);
    w.u32(items.len() as u32);
    for item in items {
        w.item(item);
    }
    w.0
}

/// About how many bytes an item takes encoded (its payloads, plus room for
/// the fixed fields); only sizes the buffer.
fn estimate(item: &Item) -> usize {
    let event = |e: &Event| match e {
        Event::Signal { payload, kind, .. } => 96 + payload.get().len() + kind.len(),
        _ => 96,
    };
    match item {
        Item::Deliver { event: e, .. } => 16 + event(e),
        Item::Adopt { events, .. } => 32 + events.iter().map(event).sum::<usize>(),
        _ => 64,
    }
}

/// Decodes a batch: its sender and items.
pub fn decode(bytes: &[u8]) -> Result<(NodeId, Vec<Item>), Malformed> {
    let mut r = Reader(bytes);
    if r.u8()? != VERSION {
        return Err(Malformed("unknown version (nodes of different releases?)"));
    }
    let node = r.u64()?;
    let n = r.u32()? as usize;
    let mut items = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        items.push(r.item()?);
    }
    if !r.0.is_empty() {
        return Err(Malformed("trailing bytes"));
    }
    Ok((node, items))
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn bool(&mut self, b: bool) {
        self.u8(u8::from(b));
    }
    fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            Some(v) => {
                self.u8(1);
                f(self, v);
            }
            None => self.u8(0),
        }
    }
    fn names(&mut self, v: &[Name]) {
        self.u32(v.len() as u32);
        for n in v {
            self.str(n);
        }
    }
    fn payload(&mut self, p: &Option<Payload>) {
        self.opt(p, |w, p| w.str(p.get()));
    }
    fn name(&mut self, n: &Option<Name>) {
        self.opt(n, |w, n| w.str(n));
    }
    fn target(&mut self, t: &Target) {
        match t {
            Target::Id(id) => {
                self.u8(0);
                self.u64(id.0);
            }
            Target::Name(n) => {
                self.u8(1);
                self.str(n);
            }
        }
    }
    fn info(&mut self, p: &PeerInfo) {
        self.u64(p.id.0);
        self.name(&p.name);
        self.payload(&p.info);
    }
    fn grant(&mut self, g: &Grant) {
        self.str(&g.name);
        match &g.rooms {
            Rooms::Any => self.u8(0),
            Rooms::Only(rooms) => {
                self.u8(1);
                self.names(rooms);
            }
        }
    }
    fn state(&mut self, s: &PeerState) {
        self.u64(s.id.0);
        self.u32(s.space.0);
        self.names(&s.names);
        self.names(&s.rooms);
        self.payload(&s.info);
        self.name(&s.token);
        self.name(&s.key);
        self.u64(s.opts.grace.as_millis() as u64);
        self.opt(&s.opts.grant, Self::grant);
        self.bool(s.away);
    }
    fn item(&mut self, item: &Item) {
        match item {
            Item::Hello => self.u8(0),
            Item::Peer(s) => {
                self.u8(1);
                self.state(s);
            }
            Item::Cmd { from, cmd, call } => {
                self.u8(2);
                self.u64(from.0);
                self.opt(call, |w, c| w.u64(c.0));
                self.command(cmd);
            }
            Item::Away(id) => {
                self.u8(3);
                self.u64(id.0);
            }
            Item::Gone(id) => {
                self.u8(4);
                self.u64(id.0);
            }
            Item::Moved { peer, node } => {
                self.u8(5);
                self.u64(peer.0);
                self.u64(*node);
            }
            Item::Deliver { to, event, waits } => {
                self.u8(6);
                self.u64(to.0);
                self.bool(*waits);
                self.event(event);
            }
            Item::Adopt { peer, by, events } => {
                self.u8(7);
                self.u64(peer.0);
                self.u64(*by);
                self.u32(events.len() as u32);
                for e in events {
                    self.event(e);
                }
            }
            Item::Bye => self.u8(8),
            Item::Probe { peer, wait_ms } => {
                self.u8(12);
                self.u64(peer.0);
                self.u64(*wait_ms);
            }
            Item::Full(id) => {
                self.u8(10);
                self.u64(id.0);
            }
            Item::Room(id) => {
                self.u8(11);
                self.u64(id.0);
            }
            Item::Census(ids) => {
                self.u8(9);
                self.u32(ids.len() as u32);
                for id in ids {
                    self.u64(id.0);
                }
            }
        }
    }
    fn command(&mut self, cmd: &Command) {
        match cmd {
            Command::Claim { name, exclusive } => {
                self.u8(0);
                self.str(name);
                self.bool(*exclusive);
            }
            Command::Release { name } => {
                self.u8(1);
                self.str(name);
            }
            Command::Join { room, info, max } => {
                self.u8(2);
                self.str(room);
                self.payload(info);
                self.opt(max, |w, m| w.u64(*m as u64));
            }
            Command::Leave { room } => {
                self.u8(3);
                self.str(room);
            }
            Command::Signal { to, kind, payload, missing, mark } => {
                self.u8(4);
                self.target(to);
                self.str(kind);
                self.str(payload.get());
                match missing {
                    Missing::Drop => self.u8(0),
                    Missing::Report => self.u8(1),
                    Missing::Hold(d) => {
                        self.u8(2);
                        self.u64(d.as_millis() as u64);
                    }
                }
                self.payload(mark);
            }
            Command::Broadcast { room, kind, payload } => {
                self.u8(5);
                self.str(room);
                self.str(kind);
                self.str(payload.get());
            }
            Command::Ring { to, meta } => {
                self.u8(6);
                self.target(to);
                self.payload(meta);
            }
            Command::Accept { call } => {
                self.u8(7);
                self.u64(call.0);
            }
            Command::Reject { call, reason } => {
                self.u8(8);
                self.u64(call.0);
                self.name(reason);
            }
            Command::Cancel { call } => {
                self.u8(9);
                self.u64(call.0);
            }
            Command::Hangup { call } => {
                self.u8(10);
                self.u64(call.0);
            }
        }
    }
    fn event(&mut self, e: &Event) {
        match e {
            Event::Signal { from, kind, payload, room, mark } => {
                self.u8(0);
                self.info(from);
                self.str(kind);
                self.str(payload.get());
                self.name(room);
                self.payload(mark);
            }
            Event::Joined { room, peer } => {
                self.u8(1);
                self.str(room);
                self.info(peer);
            }
            Event::Left { room, peer } => {
                self.u8(2);
                self.str(room);
                self.info(peer);
            }
            Event::Ring { call, from, meta } => {
                self.u8(3);
                self.u64(call.0);
                self.info(from);
                self.payload(meta);
            }
            Event::Accepted { call, by } => {
                self.u8(4);
                self.u64(call.0);
                self.info(by);
            }
            Event::Rejected { call, by, reason } => {
                self.u8(5);
                self.u64(call.0);
                self.info(by);
                self.name(reason);
            }
            Event::Ended { call, reason } => {
                self.u8(6);
                self.u64(call.0);
                self.u8(match reason {
                    EndReason::Cancelled => 0,
                    EndReason::Hangup => 1,
                    EndReason::Timeout => 2,
                    EndReason::PeerGone => 3,
                });
            }
            Event::PartnerAway { call, peer } => {
                self.u8(7);
                self.u64(call.0);
                self.u64(peer.0);
            }
            Event::PartnerBack { call, peer } => {
                self.u8(8);
                self.u64(call.0);
                self.u64(peer.0);
            }
            Event::Undeliverable { to, kind, mark, reason } => {
                self.u8(9);
                self.target(to);
                self.str(kind);
                self.payload(mark);
                self.u8(match reason {
                    Undelivered::PeerGone => 0,
                    Undelivered::Expired => 1,
                    Undelivered::Congested => 2,
                    Undelivered::Unreachable => 3,
                });
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self) -> Result<&'a str, Malformed> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| Malformed("text is not UTF-8"))
    }
    fn bool(&mut self) -> Result<bool, Malformed> {
        Ok(self.u8()? != 0)
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Malformed>) -> Result<Option<T>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            _ => f(self).map(Some),
        }
    }
    fn count(&mut self) -> Result<usize, Malformed> {
        let n = self.u32()? as usize;
        // Every element takes at least one byte: a count beyond what is left lies.
        if n > self.0.len() {
            return Err(Malformed("count beyond the message"));
        }
        Ok(n)
    }
    fn name_(&mut self) -> Result<Name, Malformed> {
        self.str().map(Name::from)
    }
    fn names(&mut self) -> Result<Vec<Name>, Malformed> {
        (0..self.count()?).map(|_| self.name_()).collect()
    }
    fn payload(&mut self) -> Result<Option<Payload>, Malformed> {
        self.opt(|r| r.str().map(Payload::trusted))
    }
    fn name(&mut self) -> Result<Option<Name>, Malformed> {
        self.opt(Self::name_)
    }
    fn peer(&mut self) -> Result<PeerId, Malformed> {
        self.u64().map(PeerId)
    }
    fn call(&mut self) -> Result<CallId, Malformed> {
        self.u64().map(CallId)
    }
    fn target(&mut self) -> Result<Target, Malformed> {
        match self.u8()? {
            0 => self.peer().map(Target::Id),
            1 => self.name_().map(Target::Name),
            _ => Err(Malformed("unknown target")),
        }
    }
    fn info(&mut self) -> Result<PeerInfo, Malformed> {
        Ok(PeerInfo { id: self.peer()?, name: self.name()?, info: self.payload()? })
    }
    fn grant(&mut self) -> Result<Grant, Malformed> {
        let name = self.name_()?;
        let rooms = match self.u8()? {
            0 => Rooms::Any,
            _ => Rooms::Only(self.names()?),
        };
        Ok(Grant { name, rooms })
    }
    fn state(&mut self) -> Result<PeerState, Malformed> {
        Ok(PeerState {
            id: self.peer()?,
            space: SpaceId(self.u32()?),
            names: self.names()?,
            rooms: self.names()?,
            info: self.payload()?,
            token: self.name()?,
            key: self.name()?,
            opts: PeerOpts { grace: Duration::from_millis(self.u64()?.min(MAX_MS)), grant: self.opt(Self::grant)? },
            away: self.bool()?,
        })
    }
    fn item(&mut self) -> Result<Item, Malformed> {
        Ok(match self.u8()? {
            0 => Item::Hello,
            1 => Item::Peer(self.state()?),
            2 => {
                let from = self.peer()?;
                let call = self.opt(Self::call)?;
                Item::Cmd { from, call, cmd: self.command()? }
            }
            3 => Item::Away(self.peer()?),
            4 => Item::Gone(self.peer()?),
            5 => Item::Moved { peer: self.peer()?, node: self.u64()? },
            6 => Item::Deliver { to: self.peer()?, waits: self.bool()?, event: self.event()? },
            7 => {
                let peer = self.peer()?;
                let by = self.u64()?;
                let events = (0..self.count()?).map(|_| self.event()).collect::<Result<_, _>>()?;
                Item::Adopt { peer, by, events }
            }
            8 => Item::Bye,
            10 => Item::Full(self.peer()?),
            12 => Item::Probe { peer: self.peer()?, wait_ms: self.u64()? },
            11 => Item::Room(self.peer()?),
            9 => Item::Census((0..self.count()?).map(|_| self.peer()).collect::<Result<_, _>>()?),
            _ => return Err(Malformed("unknown item")),
        })
    }
    fn command(&mut self) -> Result<Command, Malformed> {
        Ok(match self.u8()? {
            0 => Command::Claim { name: self.name_()?, exclusive: self.bool()? },
            1 => Command::Release { name: self.name_()? },
            2 => Command::Join {
                room: self.name_()?,
                info: self.payload()?,
                max: self.opt(|r| r.u64())?.map(|m| m as usize),
            },
            3 => Command::Leave { room: self.name_()? },
            4 => {
                let to = self.target()?;
                let kind = self.name_()?;
                let payload = Payload::trusted(self.str()?);
                let missing = match self.u8()? {
                    0 => Missing::Drop,
                    1 => Missing::Report,
                    // Bounded: a deadline is computed from it.
                    _ => Missing::Hold(Duration::from_millis(self.u64()?.min(MAX_MS))),
                };
                Command::Signal { to, kind, payload, missing, mark: self.payload()? }
            }
            5 => {
                Command::Broadcast { room: self.name_()?, kind: self.name_()?, payload: Payload::trusted(self.str()?) }
            }
            6 => Command::Ring { to: self.target()?, meta: self.payload()? },
            7 => Command::Accept { call: self.call()? },
            8 => Command::Reject { call: self.call()?, reason: self.name()? },
            9 => Command::Cancel { call: self.call()? },
            10 => Command::Hangup { call: self.call()? },
            _ => return Err(Malformed("unknown command")),
        })
    }
    fn event(&mut self) -> Result<Event, Malformed> {
        Ok(match self.u8()? {
            0 => Event::Signal {
                from: self.info()?,
                kind: self.name_()?,
                payload: Payload::trusted(self.str()?),
                room: self.name()?,
                mark: self.payload()?,
            },
            1 => Event::Joined { room: self.name_()?, peer: self.info()? },
            2 => Event::Left { room: self.name_()?, peer: self.info()? },
            3 => Event::Ring { call: self.call()?, from: self.info()?, meta: self.payload()? },
            4 => Event::Accepted { call: self.call()?, by: self.info()? },
            5 => Event::Rejected { call: self.call()?, by: self.info()?, reason: self.name()? },
            6 => {
                let call = self.call()?;
                let reason = match self.u8()? {
                    0 => EndReason::Cancelled,
                    1 => EndReason::Hangup,
                    2 => EndReason::Timeout,
                    _ => EndReason::PeerGone,
                };
                Event::Ended { call, reason }
            }
            7 => Event::PartnerAway { call: self.call()?, peer: self.peer()? },
            8 => Event::PartnerBack { call: self.call()?, peer: self.peer()? },
            9 => {
                let to = self.target()?;
                let kind = self.name_()?;
                let mark = self.payload()?;
                let reason = match self.u8()? {
                    0 => Undelivered::PeerGone,
                    1 => Undelivered::Expired,
                    2 => Undelivered::Congested,
                    _ => Undelivered::Unreachable,
                };
                Event::Undeliverable { to, kind, mark, reason }
            }
            _ => return Err(Malformed("unknown event")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: u64) -> PeerInfo {
        PeerInfo { id: PeerId(id), name: Some("alice".into()), info: Some(Payload::trusted("{\"ua\":\"x\"}")) }
    }

    #[test]
    fn a_batch_reads_back_as_written() {
        let items = vec![
            Item::Hello,
            Item::Peer(PeerState {
                id: PeerId(1 << 40 | 7),
                space: SpaceId(99),
                names: vec!["alice".into()],
                rooms: vec!["\u{0}lobby".into(), "r".into()],
                info: None,
                token: Some("tok".into()),
                key: None,
                opts: PeerOpts {
                    grace: Duration::from_secs(30),
                    grant: Some(Grant { name: "alice".into(), rooms: Rooms::Only(vec!["r".into()]) }),
                },
                away: true,
            }),
            Item::Cmd {
                from: PeerId(3),
                cmd: Command::Ring { to: Target::Name("bob".into()), meta: None },
                call: Some(CallId(5)),
            },
            Item::Deliver {
                to: PeerId(9),
                waits: true,
                event: Event::Signal {
                    from: info(3),
                    kind: "offer".into(),
                    payload: Payload::trusted("{\"sdp\":\"v=0\"}"),
                    room: None,
                    mark: Some(Payload::trusted("1")),
                },
            },
            Item::Census(vec![PeerId(1), PeerId(2)]),
            Item::Full(PeerId(3)),
            Item::Probe { peer: PeerId(3), wait_ms: 1500 },
            Item::Room(PeerId(3)),
            Item::Adopt {
                peer: PeerId(4),
                by: 2,
                events: vec![Event::Ended { call: CallId(2), reason: EndReason::Timeout }],
            },
            Item::Moved { peer: PeerId(4), node: 3 },
            Item::Bye,
        ];
        let bytes = encode(7, &items);
        let (node, back) = decode(&bytes).expect("decodes");
        assert_eq!(node, 7);
        assert_eq!(format!("{items:?}"), format!("{back:?}"));
    }

    proptest::proptest! {
        /// Whatever arrives on a channel, decoding ends with a batch or an
        /// error, never a panic or a huge allocation.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let mut framed = vec![VERSION, 1, 0, 0, 0, 0, 0, 0, 0];
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed);
        }
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let bytes = encode(1, &[Item::Gone(PeerId(1))]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255]).is_err());
    }
}
