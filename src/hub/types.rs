//! The hub's wire-neutral vocabulary: ids, names, commands, events, errors.
//!
//! Nothing here knows JSON field names of any dialect. Payloads are opaque
//! JSON values ([`Payload`]) that the hub stores and forwards untouched.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

/// A name in a space: a display name, a PeerJS id, a room name.
pub type Name = Arc<str>;

/// Opaque JSON, validated once at the edge and forwarded without re-parsing.
/// Cloning shares the text. Only built from validated JSON (one allocation,
/// one copy of the text), so `get` is always a single JSON value.
#[derive(Clone, Debug)]
pub struct Payload(Arc<str>);

impl Payload {
    /// Copies already-validated JSON.
    pub fn from_raw(raw: &RawValue) -> Payload {
        Payload(Arc::from(raw.get()))
    }

    /// Takes JSON text that was validated before, by this node or another
    /// node of the cluster (forwarded payloads are not parsed again).
    pub fn trusted(text: &str) -> Payload {
        Payload(Arc::from(text))
    }

    /// Validates JSON text.
    pub fn parse(text: &str) -> Result<Payload, serde_json::Error> {
        serde_json::from_str::<&RawValue>(text).map(Payload::from_raw)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// Whether both share the same text (one was cloned from the other).
    pub fn same(&self, other: &Payload) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Payload {}

impl serde::Serialize for Payload {
    /// Embeds the text as it is. (Serialising is off the relay path: only
    /// the `offers` dialect's stored offers use it.)
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(self.get()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// Server-assigned identity of one peer; survives a resume.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl std::str::FromStr for PeerId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('p').and_then(|n| n.parse().ok()).map(PeerId).ok_or(())
    }
}

/// A namespace: each listener (and so each dialect instance) has its own, so
/// names and rooms of one never collide with another's.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpaceId(pub u32);

/// Identifies one 1:1 call.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

impl std::str::FromStr for CallId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('c').and_then(|n| n.parse().ok()).map(CallId).ok_or(())
    }
}

/// Who a message is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A peer by its server-assigned id.
    Id(PeerId),
    /// The (first) peer holding this name in the sender's space.
    Name(Name),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Id(id) => write!(f, "{id}"),
            Target::Name(n) => f.write_str(n),
        }
    }
}

/// What to do with a signal whose target is not connected.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// Drop it without a word (the documented silence of some dialects).
    Drop,
    /// Fail the command with [`HubError::UnknownPeer`].
    Report,
    /// Hold it for a name nobody has claimed yet, for at most this long; the
    /// sender gets [`Event::Undeliverable`] if it expires (PeerJS offline queue).
    Hold(Duration),
}

/// The id and display name of a peer, as shown to others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Server-assigned id.
    pub id: PeerId,
    /// The name it claimed first, if any.
    pub name: Option<Name>,
    /// Opaque profile given when joining a room (device, user agent...).
    pub info: Option<Payload>,
}

/// Options a peer is connected with.
#[derive(Clone, Debug, Default)]
pub struct PeerOpts {
    /// How long a peer that dropped without saying goodbye keeps its id,
    /// names, rooms and call, and collects messages, waiting to resume.
    /// Zero: it is removed at once.
    pub grace: Duration,
    /// What the peer's access token lets it claim; `None`: anything (no
    /// authentication on this server).
    pub grant: Option<Grant>,
}

/// The names and rooms an authenticated peer may claim: what its access
/// token says. The hub refuses anything else with [`HubError::NotAllowed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The one name it may claim (the token's subject); also who it is, so
    /// a resume token only works for the same name.
    pub name: Name,
    /// Rooms it may join.
    pub rooms: Rooms,
}

/// Rooms a [`Grant`] allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rooms {
    /// Any room.
    Any,
    /// Only these (none when empty).
    Only(Vec<Name>),
}

impl Grant {
    /// Whether the peer may claim `name`. Ids a dialect assigned
    /// ([`ASSIGNED`](super::ASSIGNED)) are not claims.
    pub fn allows_name(&self, name: &str) -> bool {
        name.starts_with(super::ASSIGNED) || *self.name == *name
    }

    /// Whether the peer may join `room`. A dialect's own bookkeeping rooms
    /// ([`INTERNAL`](super::INTERNAL), e.g. a presence list) are not claims.
    pub fn allows_room(&self, room: &str) -> bool {
        room.starts_with(super::INTERNAL)
            || match &self.rooms {
                Rooms::Any => true,
                Rooms::Only(rooms) => rooms.iter().any(|r| **r == *room),
            }
    }
}

/// What a [`Grant`] did not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// Claiming this name.
    Name(Name),
    /// Joining this room.
    Room(Name),
    /// Resuming a peer of another identity.
    Resume,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::Name(n) => {
                write!(f, "your access token does not allow the name '{n}'; use the name it was issued for")
            }
            Denied::Room(r) => {
                write!(f, "your access token does not allow the room '{r}'; ask for a token that lists it")
            }
            Denied::Resume => f.write_str("that resume token belongs to another identity; connect as a new peer"),
        }
    }
}

/// A request from a peer to the hub.
#[derive(Clone, Debug)]
pub enum Command {
    /// Take a name in the peer's space. `exclusive`: fail if held by anyone
    /// else; otherwise share it (lookups find the earliest holder).
    Claim {
        /// The name.
        name: Name,
        /// Whether it must be unique.
        exclusive: bool,
    },
    /// Give a name back.
    Release {
        /// The name.
        name: Name,
    },
    /// Enter a room; members are told (presence).
    Join {
        /// Room name.
        room: Name,
        /// Profile shown to the others.
        info: Option<Payload>,
        /// Refuse with [`HubError::RoomFull`] at this many members.
        max: Option<usize>,
    },
    /// Leave a room; members are told.
    Leave {
        /// Room name.
        room: Name,
    },
    /// Relay an opaque signal to one peer.
    Signal {
        /// Recipient.
        to: Target,
        /// Message kind as the dialect names it ("offer", "CANDIDATE"...).
        kind: Name,
        /// The message body, forwarded as is.
        payload: Payload,
        /// What to do when the target is not there.
        missing: Missing,
        /// Echoed back in [`Event::Undeliverable`] (the request's `ref`).
        mark: Option<Payload>,
    },
    /// Relay an opaque signal to every other member of a room.
    Broadcast {
        /// Room name.
        room: Name,
        /// Message kind.
        kind: Name,
        /// The message body.
        payload: Payload,
    },
    /// Ring a peer to start a 1:1 call.
    Ring {
        /// Callee.
        to: Target,
        /// Opaque call metadata (e.g. "video" or "audio").
        meta: Option<Payload>,
    },
    /// Accept a ringing call (callee).
    Accept {
        /// The call.
        call: CallId,
    },
    /// Decline a ringing call (callee).
    Reject {
        /// The call.
        call: CallId,
        /// Optional reason shown to the caller.
        reason: Option<Name>,
    },
    /// Withdraw a ringing call (caller).
    Cancel {
        /// The call.
        call: CallId,
    },
    /// End an accepted call (either side).
    Hangup {
        /// The call.
        call: CallId,
    },
}

/// The hub's answer to the peer that sent a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Done; nothing more to say.
    Done,
    /// Joined a room; these were already in it.
    Joined {
        /// The other members.
        members: Vec<PeerInfo>,
    },
    /// Signal relayed now.
    Sent,
    /// Signal dropped: target unknown and [`Missing::Drop`].
    Dropped,
    /// Signal queued: the target is away (resume grace) or not yet connected.
    Queued,
    /// The callee is ringing.
    Ringing {
        /// The new call's id.
        call: CallId,
    },
}

/// Why a call ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The caller withdrew before an answer.
    Cancelled,
    /// One side hung up.
    Hangup,
    /// Nobody answered in time.
    Timeout,
    /// The other side disconnected (and did not come back in time).
    PeerGone,
}

impl EndReason {
    /// Stable lower-case name, used on the wire by dialects.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Cancelled => "cancelled",
            EndReason::Hangup => "hangup",
            EndReason::Timeout => "timeout",
            EndReason::PeerGone => "disconnected",
        }
    }
}

/// Why a queued or held message was not delivered.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Undelivered {
    /// The target left or its resume grace ran out.
    PeerGone,
    /// Nobody claimed the name before the hold expired.
    Expired,
    /// The target's queue is at its bound (it reads too slowly, or too many
    /// send to it at once).
    Congested,
    /// The target is on another node of the cluster, which could not be
    /// reached (the cluster's Redis is down).
    Unreachable,
}

/// Something the hub tells a peer.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// An opaque signal from another peer.
    Signal {
        /// Sender.
        from: PeerInfo,
        /// Message kind, as given by the sender's dialect.
        kind: Name,
        /// Body, untouched.
        payload: Payload,
        /// Set when it came as a room broadcast.
        room: Option<Name>,
        /// The sender's mark, kept to tell it if delivery fails.
        mark: Option<Payload>,
    },
    /// Someone entered a room the peer is in.
    Joined {
        /// Room.
        room: Name,
        /// Newcomer.
        peer: PeerInfo,
    },
    /// Someone left a room the peer is in.
    Left {
        /// Room.
        room: Name,
        /// Leaver.
        peer: PeerInfo,
    },
    /// An incoming call.
    Ring {
        /// Call id.
        call: CallId,
        /// Caller.
        from: PeerInfo,
        /// Caller's metadata.
        meta: Option<Payload>,
    },
    /// The callee accepted.
    Accepted {
        /// Call id.
        call: CallId,
        /// Callee.
        by: PeerInfo,
    },
    /// The callee declined.
    Rejected {
        /// Call id.
        call: CallId,
        /// Callee.
        by: PeerInfo,
        /// Callee's reason, if given.
        reason: Option<Name>,
    },
    /// The call is over.
    Ended {
        /// Call id.
        call: CallId,
        /// Why.
        reason: EndReason,
    },
    /// The call partner dropped and may come back within the grace period.
    PartnerAway {
        /// Call id.
        call: CallId,
        /// Who dropped.
        peer: PeerId,
    },
    /// The call partner came back.
    PartnerBack {
        /// Call id.
        call: CallId,
        /// Who resumed.
        peer: PeerId,
    },
    /// A signal this peer sent could not be delivered.
    Undeliverable {
        /// Its target.
        to: Target,
        /// Its kind.
        kind: Name,
        /// The sender's mark (request `ref`).
        mark: Option<Payload>,
        /// Why.
        reason: Undelivered,
    },
}

impl Event {
    /// About the bytes this event holds while it waits in a queue.
    pub fn weight(&self) -> usize {
        /// Bookkeeping of an event (its enum, ids, `Arc` headers).
        const BASE: usize = 96;
        let info = |p: &PeerInfo| p.name.as_ref().map_or(0, |n| n.len()) + p.info.as_ref().map_or(0, |i| i.get().len());
        BASE + match self {
            Event::Signal { from, kind, payload, room, mark } => {
                info(from)
                    + kind.len()
                    + payload.get().len()
                    + room.as_ref().map_or(0, |r| r.len())
                    + mark.as_ref().map_or(0, |m| m.get().len())
            }
            Event::Joined { room, peer } | Event::Left { room, peer } => room.len() + info(peer),
            Event::Ring { from, meta, .. } => info(from) + meta.as_ref().map_or(0, |m| m.get().len()),
            Event::Accepted { by, .. } => info(by),
            Event::Rejected { by, reason, .. } => info(by) + reason.as_ref().map_or(0, |r| r.len()),
            Event::Ended { .. } | Event::PartnerAway { .. } | Event::PartnerBack { .. } => 0,
            Event::Undeliverable { kind, mark, .. } => kind.len() + mark.as_ref().map_or(0, |m| m.get().len()),
        }
    }
}

/// A command failed; the reply goes to the sender only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    /// Name held by another peer.
    #[error("the name '{0}' is taken; choose another")]
    NameTaken(Name),
    /// No such peer (or it is gone).
    #[error("no peer '{0}' is connected")]
    UnknownPeer(Target),
    /// Callee is in another call.
    #[error("{0} is busy in another call")]
    Busy(Target),
    /// Caller is already in a call.
    #[error("you are already in a call; hang up first")]
    AlreadyInCall,
    /// Calling oneself.
    #[error("you cannot call yourself")]
    SelfCall,
    /// No such call, or not this peer's to act on.
    #[error("no call '{0}' for you in that state")]
    UnknownCall(CallId),
    /// Room at capacity.
    #[error("room '{0}' is full ({1} members)")]
    RoomFull(Name, usize),
    /// Not a member.
    #[error("you are not in room '{0}'")]
    NotInRoom(Name),
    /// The offline queue for a name (or all of them) is full.
    #[error("the queue for '{0}' is full; try again later")]
    QueueFull(Target),
    /// No detached peer has that resume token.
    #[error("that resume token is unknown or expired; connect as a new peer")]
    BadToken,
    /// A name that is empty or too long.
    #[error("a name must have 1 to {0} bytes")]
    BadName(usize),
    /// The peer holds as many names as one connection may.
    #[error("one connection may hold at most {0} names; release one first")]
    TooManyNames(usize),
    /// The peer is in as many rooms as one may be.
    #[error("one peer may be in at most {0} rooms; leave one first")]
    TooManyRooms(usize),
    /// The space already has as many peers as it may.
    #[error("the server has reached its limit of {0} peers; try again later")]
    SpaceFull(usize),
    /// The peer's access token does not allow it.
    #[error("{0}")]
    NotAllowed(Denied),
}

impl HubError {
    /// Stable machine-readable code, used in error replies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            HubError::NameTaken(_) => "name_taken",
            HubError::UnknownPeer(_) => "unknown_peer",
            HubError::Busy(_) => "busy",
            HubError::AlreadyInCall => "already_in_call",
            HubError::SelfCall => "self_call",
            HubError::UnknownCall(_) => "unknown_call",
            HubError::RoomFull(..) => "room_full",
            HubError::NotInRoom(_) => "not_in_room",
            HubError::QueueFull(_) => "queue_full",
            HubError::BadToken => "bad_token",
            HubError::SpaceFull(_) => "space_full",
            HubError::BadName(_) => "bad_name",
            HubError::TooManyNames(_) => "too_many_names",
            HubError::TooManyRooms(_) => "too_many_rooms",
            HubError::NotAllowed(_) => "forbidden",
        }
    }
}

/// An event for one peer, produced by the hub for the I/O side to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Recipient.
    pub to: PeerId,
    /// What to tell it.
    pub event: Event,
}
