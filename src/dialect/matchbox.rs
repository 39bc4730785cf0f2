//! The `matchbox` dialect: the signaling protocol of `matchbox_server`, spoken
//! by the `matchbox_socket` client (Rust, native and WASM) that bevy/ggrs
//! games use. Specification: docs/dialects/matchbox.md.
//!
//! One WebSocket per client at `/{room}` (one path segment, [`Room::parse`]),
//! optionally `?next=N`. Frames are externally tagged JSON, as serde writes
//! Rust enums:
//! - to the client: `{"IdAssigned":id}` first and once, `{"NewPeer":id}`,
//!   `{"PeerLeft":id}`, `{"Signal":{"sender":id,"data":..}}`;
//! - from the client: `{"Signal":{"receiver":id,"data":..}}` and the bare
//!   string `"KeepAlive"`.
//!
//! Mapping onto the hub:
//! - A room without `next` is the hub room named by the path. Its members
//!   get `NewPeer` from the hub's `Joined` presence (so only those already
//!   there, never the newcomer: exactly one side of each pair offers) and
//!   `PeerLeft` from `Left`.
//! - `?next=N` groups the next N arrivals. Each group is a hub room of its
//!   own, [`batch_room`], named after its first member's id; the group still
//!   filling is found through a second room, [`open_room`], whose members are
//!   the peers of the filling group, each listing the group's number as its
//!   profile. A joiner takes the group of the latest peer listed there; the
//!   hub's room cap (`max: N`) refuses it if that group filled meanwhile, and
//!   the joiner starts a group of its own. A member that sees its group reach
//!   N leaves the open room: the group is sealed. No state outside the hub.
//! - Ids are the hub's peer ids written as UUIDs ([`uuid_of`], [`peer_of`]).
//! - A signal goes to a peer by id (`Missing::Drop`). A client may only
//!   signal peers it has heard of (a `NewPeer`, a signal from it, or the
//!   group it joined): ids are numbers and so guessable, and this keeps
//!   other rooms' peers out of reach.
//!
//! The client has no resume (a second `IdAssigned` crashes it; a new socket
//! is a new peer), so a dropped connection leaves at once (grace 0).

use std::borrow::Cow;
use std::sync::LazyLock;

use rustc_hash::FxHashSet;
use serde::Deserialize;
use serde_json::value::RawValue;
use tracing::debug;

use super::{Ctx, Protocol};
use crate::hub::{Command, Event, HubError, INTERNAL, Missing, Name, Payload, PeerId, PeerInfo, Reply, Target};

/// The kind of every relayed signal, allocated once for the whole process.
static SIGNAL: LazyLock<Name> = LazyLock::new(|| Name::from("Signal"));

/// Most peers in one room or group. Every `matchbox_socket` peer opens a
/// WebRTC connection to every other, so games stay far below this; it
/// bounds what each connection remembers ([`Matchbox::known`]) and the
/// `NewPeer`/`PeerLeft` traffic, which grow with the square of a room.
pub const MAX_ROOM: usize = 256;

/// The room a client asked for: its path segment and its `next`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// The path segment, percent-decoded (`""` for `/`).
    pub path: String,
    /// Group size of `?next=N`; `None` without it (or when not a number ≥ 1).
    pub next: Option<usize>,
}

/// Why a request path names no room.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadRoom {
    /// More than one path segment (`/a/b`).
    #[error("a matchbox room is one path segment: connect to ws://HOST:PORT/<room>[?next=N]")]
    Nested,
    /// Percent-encoding that is not UTF-8, or a NUL character.
    #[error("the room name must be UTF-8 text without NUL characters")]
    Encoding,
}

impl Room {
    /// The room of a request to `path` whose `next` query parameter is
    /// `next`. As the original: `/` is the room `""`, `/a/b` is none, the
    /// segment is percent-decoded, and a `next` that is not a number is
    /// ignored. We also ignore `next=0`, which would never fill.
    pub fn parse(path: &str, next: Option<&str>) -> Result<Room, BadRoom> {
        let segment = path.strip_prefix('/').unwrap_or(path);
        if segment.contains('/') {
            return Err(BadRoom::Nested);
        }
        let path = percent_encoding::percent_decode_str(segment).decode_utf8().map_err(|_| BadRoom::Encoding)?;
        if path.contains(INTERNAL) {
            return Err(BadRoom::Encoding);
        }
        let next = next.and_then(|n| n.parse::<usize>().ok()).filter(|n| *n > 0);
        Ok(Room { path: path.into_owned(), next })
    }
}

/// The hub room listing the peers of the `?next=N` group of `path` that is
/// still filling; each member's profile is the group's number.
pub fn open_room(path: &str, n: usize) -> Name {
    Name::from(format!("{INTERNAL}matchbox next={n} open /{path}"))
}

/// The hub room of one `?next=N` group of `path`, numbered `group`.
pub fn batch_room(path: &str, n: usize, group: u64) -> Name {
    Name::from(format!("{INTERNAL}matchbox next={n} group={group} /{path}"))
}

/// A peer id as the UUID the client sees: a version 8 UUID (RFC 9562,
/// custom layout) whose variable bits are zero but for the id's 64 bits,
/// the high 48 in the first two groups and the low 16 at the end:
/// `HHHHHHHH-HHHH-8000-8000-00000000LLLL`. Any 64-bit id has one, and
/// [`peer_of`] reads it back.
pub fn uuid_of(id: PeerId) -> String {
    let v = id.0;
    format!("{:08x}-{:04x}-8000-8000-00000000{:04x}", v >> 32, (v >> 16) & 0xffff, v & 0xffff)
}

/// The peer id a UUID of [`uuid_of`]'s layout stands for. Accepts the
/// hyphenated and the 32-digit forms in either case; any other UUID (or
/// text) is no peer of ours.
pub fn peer_of(uuid: &str) -> Option<PeerId> {
    let hex: String = match uuid.len() {
        36 => {
            let b = uuid.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
                return None;
            }
            uuid.chars().filter(|c| *c != '-').collect()
        }
        32 => uuid.to_string(),
        _ => return None,
    };
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    if &hex[12..28] != "8000800000000000" {
        return None;
    }
    let high = u64::from_str_radix(&hex[..12], 16).ok()?;
    let low = u64::from_str_radix(&hex[28..], 16).ok()?;
    Some(PeerId((high << 16) | low))
}

/// `{"<tag>":"<uuid>"}`: `IdAssigned`, `NewPeer`, `PeerLeft`.
fn id_frame(tag: &str, id: PeerId) -> String {
    format!(r#"{{"{tag}":"{}"}}"#, uuid_of(id))
}

/// `{"Signal":{"sender":"<uuid>","data":<data>}}`, `data` as it came.
fn signal_frame(sender: PeerId, data: &str) -> String {
    let mut s = String::with_capacity(64 + data.len());
    s.push_str(r#"{"Signal":{"sender":""#);
    s.push_str(&uuid_of(sender));
    s.push_str(r#"","data":"#);
    s.push_str(data);
    s.push_str("}}");
    s
}

/// What a client sends; unknown fields are ignored, as by the original.
#[derive(Deserialize)]
enum Request<'a> {
    Signal {
        #[serde(borrow)]
        receiver: Cow<'a, str>,
        #[serde(borrow)]
        data: &'a RawValue,
    },
    KeepAlive,
}

/// One `matchbox` connection.
pub struct Matchbox {
    room: Room,
    /// Whether the client's access token allows its room (always, without
    /// authentication). The hub checks rooms named by the path itself; the
    /// rooms of `?next=N` groups are internal, so the route asks for it.
    allowed: bool,
    /// The hub room of this peer's group: the path's room, or its batch.
    group: Option<Name>,
    /// The open room while this peer's `?next=N` group is filling.
    open: Option<Name>,
    /// Members of the group now, this peer included (for `?next=N`: the
    /// group is sealed when it reaches N).
    size: usize,
    /// Peers this client may signal: its group as it joined, those it got
    /// `NewPeer` for, and those that signalled it; gone on `PeerLeft`.
    known: FxHashSet<PeerId>,
}

impl Matchbox {
    /// A connection to `room`; `allowed`: its access token allows the room.
    pub fn new(room: Room, allowed: bool) -> Matchbox {
        Matchbox { room, allowed, group: None, open: None, size: 0, known: FxHashSet::default() }
    }

    /// Joins the room (or a `?next=N` group); the error closes the connection.
    fn enter(&mut self, ctx: &mut Ctx<'_>) -> Result<(), HubError> {
        let Some(n) = self.room.next else {
            let room = Name::from(self.room.path.as_str());
            let members =
                joined(ctx.dispatch(Command::Join { room: room.clone(), info: None, max: Some(MAX_ROOM) })?);
            self.entered(room, members);
            return Ok(());
        };
        let open = open_room(&self.room.path, n);
        // A group larger than a room never fills: it is closed at the cap.
        let cap = n.min(MAX_ROOM);
        // The group of the latest peer waiting, if any; else a new one.
        let filling = ctx.hub.members(ctx.space, &open).last().and_then(|m| group_of(m.info.as_ref()));
        let mut members = None;
        if let Some(group) = filling {
            let room = batch_room(&self.room.path, n, group);
            match ctx.dispatch(Command::Join { room: room.clone(), info: None, max: Some(cap) }) {
                Ok(reply) => members = Some((room, group, joined(reply))),
                // It filled since it was listed: start the next group.
                Err(HubError::RoomFull(..)) => debug!(group, "the filling group is full; starting a new one"),
                Err(e) => return Err(e),
            }
        }
        let (room, group, others) = match members {
            Some(m) => m,
            None => {
                let group = ctx.peer.0;
                let room = batch_room(&self.room.path, n, group);
                let reply = ctx.dispatch(Command::Join { room: room.clone(), info: None, max: Some(cap) })?;
                (room, group, joined(reply))
            }
        };
        self.entered(room, others);
        if self.size < cap {
            let info = Payload::parse(&group.to_string()).ok();
            ctx.dispatch(Command::Join { room: open.clone(), info, max: None })?;
            self.open = Some(open);
        }
        Ok(())
    }

    /// Notes the group joined and who was in it.
    fn entered(&mut self, room: Name, others: Vec<PeerInfo>) {
        self.size = others.len() + 1;
        self.known.extend(others.iter().map(|m| m.id));
        self.group = Some(room);
    }

    /// A `?next=N` group that reached N is sealed: leave the open room so
    /// that nobody else joins it.
    fn seal_if_full(&mut self, ctx: &mut Ctx<'_>) {
        if self.room.next.is_some_and(|n| self.size >= n.min(MAX_ROOM))
            && let Some(open) = self.open.take()
            && let Err(e) = ctx.dispatch(Command::Leave { room: open })
        {
            debug!(error = %e, "leaving the open room failed");
        }
    }

    fn signal(&mut self, receiver: &str, data: &RawValue, ctx: &mut Ctx<'_>) {
        let Some(to) = peer_of(receiver).filter(|id| self.known.contains(id)) else {
            // Quirk of `matchbox`: the original drops a signal to an unknown
            // receiver without a word; the protocol has no error message.
            ctx.hub.metrics().error("unknown_peer");
            debug!(receiver, "signal to a peer this client has not heard of: dropped");
            return;
        };
        let cmd = Command::Signal {
            to: Target::Id(to),
            kind: SIGNAL.clone(),
            payload: Payload::from_raw(data),
            missing: Missing::Drop,
            mark: None,
        };
        match ctx.dispatch(cmd) {
            Ok(Reply::Dropped) => debug!(receiver, "signal to a peer that has left: dropped"),
            Ok(_) => {}
            Err(e) => debug!(error = %e, "signal refused"),
        }
    }
}

/// The members a join reply lists.
fn joined(reply: Reply) -> Vec<PeerInfo> {
    match reply {
        Reply::Joined { members } => members,
        _ => Vec::new(),
    }
}

/// The group number an open-room member lists as its profile.
fn group_of(info: Option<&Payload>) -> Option<u64> {
    info.and_then(|p| p.get().parse().ok())
}

impl Protocol for Matchbox {
    fn opened(&mut self, ctx: &mut Ctx<'_>) {
        if !self.allowed {
            ctx.hub.metrics().error("forbidden");
            let denied = crate::hub::Denied::Room(Name::from(self.room.path.as_str()));
            ctx.close(1008, denied.to_string());
            return;
        }
        // The room first: a client refused gets no id, just the close.
        if let Err(e) = self.enter(ctx) {
            debug!(error = %e, "joining the room failed");
            ctx.hub.metrics().error(e.code());
            ctx.close(1008, e.to_string());
            return;
        }
        ctx.send(id_frame("IdAssigned", ctx.peer));
        // The joiner may have filled its group itself.
        self.seal_if_full(ctx);
    }

    fn received(&mut self, text: &str, ctx: &mut Ctx<'_>) {
        match serde_json::from_str::<Request<'_>>(text) {
            Ok(Request::Signal { receiver, data }) => self.signal(&receiver, data, ctx),
            // Sent every 10 s to keep proxies from closing an idle socket;
            // the transport has noted that the client is there.
            Ok(Request::KeepAlive) => {}
            Err(e) => {
                // Quirk of `matchbox`: the original logs what it cannot parse
                // and reads on; the protocol has no error message.
                ctx.hub.metrics().error("bad_json");
                debug!(error = %e, "ignoring a message that is neither a Signal nor KeepAlive");
            }
        }
    }

    fn deliver(&mut self, event: Event, ctx: &mut Ctx<'_>) {
        match event {
            Event::Signal { from, payload, .. } => {
                self.known.insert(from.id);
                ctx.send(signal_frame(from.id, payload.get()));
            }
            Event::Joined { room, peer } if Some(&room) == self.group.as_ref() && peer.id != ctx.peer => {
                // Those already in the room offer to the newcomer. (The hub
                // repeats `Joined` only for a new profile: never here.)
                self.known.insert(peer.id);
                self.size += 1;
                ctx.send(id_frame("NewPeer", peer.id));
                self.seal_if_full(ctx);
            }
            Event::Left { room, peer } if Some(&room) == self.group.as_ref() => {
                self.known.remove(&peer.id);
                self.size = self.size.saturating_sub(1);
                ctx.send(id_frame("PeerLeft", peer.id));
            }
            // The open room's comings and goings, calls: nothing to say.
            _ => {}
        }
    }
}
