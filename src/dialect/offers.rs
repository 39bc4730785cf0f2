//! The `offers` dialect: Robert Bunch's socket.io v4 "offer board"
//! (`webrtc-starter`, `signalingPeerConnection`). Specification:
//! docs/dialects/offers.md.
//!
//! All of the protocol is here: the handshake's `auth` ([`password_ok`],
//! [`user_name`]), what a socket gets when it connects ([`Offers::connected`]),
//! the translation of each event ([`Offers::event`]) and of each hub event
//! ([`emit_of`]), and the listener's list of offers ([`Board`]). It does no
//! I/O and knows nothing of socket.io: `transport::socketio` moves events
//! between sockets and these functions, and messages for one user's socket
//! go through the hub port as signals to the user's name.
//!
//! In a cluster each node keeps its own board, and the nodes keep their
//! boards the same through one internal hub peer per node ([`BOARD_ROOM`],
//! [`Offers::board_event`], [`Board::apply`]; docs/dialects/offers.md §7).
//!
//! Field names are the original's, verbatim: `offererUserName`, `offer`,
//! `offerIceCandidates`, `answererUserName`, `answer`,
//! `answererIceCandidates`, `iceUserName`, `didIOffer`, `iceCandidate`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use serde_json::value::RawValue;

use super::Ctx;
use super::wire::{self, truthy};
use crate::hub::{Command, Event, HubError, Missing, Name, Payload, PeerId, Target};
use crate::port::Pressure;

/// Event names, verbatim.
pub mod event {
    /// S→C on connect: the whole board.
    pub const AVAILABLE_OFFERS: &str = "availableOffers";
    /// C→S: an SDP offer.
    pub const NEW_OFFER: &str = "newOffer";
    /// S→C broadcast: a one-element array with the new offer.
    pub const NEW_OFFER_AWAITING: &str = "newOfferAwaiting";
    /// C→S with ack: the offer object with `answer` filled in.
    pub const NEW_ANSWER: &str = "newAnswer";
    /// S→C to the offerer: the stored offer, answered.
    pub const ANSWER_RESPONSE: &str = "answerResponse";
    /// C→S: one ICE candidate.
    pub const SEND_ICE: &str = "sendIceCandidateToSignalingServer";
    /// S→C: a bare candidate from the other side.
    pub const RECEIVED_ICE: &str = "receivedIceCandidateFromServer";
}

/// The listener's internal hub room of *board peers*, one per node of a
/// cluster (starts with [`hub::INTERNAL`](crate::hub::INTERNAL)): what
/// changes one node's board is broadcast there, and each other node applies
/// it to its own board (see [`Offers::board_event`]).
pub const BOARD_ROOM: &str = "\u{0}offers board";

/// Kinds of the board changes board peers send each other. The payload is
/// `{"user":..,"body":..,"relayed":..}`: who made the change, the client's
/// original event body, and, for an offerer's candidate, whether its node
/// relayed it.
pub mod change {
    /// `newOffer`.
    pub const OFFER: &str = "offer";
    /// `newAnswer`.
    pub const ANSWER: &str = "answer";
    /// An offerer's ICE candidate.
    pub const ICE: &str = "ice";
    /// The last socket of a user went away: its offers start to age.
    pub const LEFT: &str = "left";
    /// A socket of a user whose offers are listed connected: they are live.
    pub const BACK: &str = "back";
    /// To a board peer that just joined: the board as it is (newest offers
    /// up to [`SNAPSHOT_BYTES`](super::SNAPSHOT_BYTES)), merged into its own.
    pub const SNAPSHOT: &str = "snapshot";
}

/// Most bytes of offers a board snapshot for a new node holds (the newest).
pub const SNAPSHOT_BYTES: usize = 1 << 20;

/// The only password the original accepts.
pub const PASSWORD: &str = "x";

/// The ack we send for a `newAnswer` that matches no offer. The original
/// never calls the ack then, so the client's `await socket.emitWithAck(..)`
/// stays pending forever and the click does nothing. An error object would be
/// kinder to read but the client does `offerIceCandidates.forEach(..)` on the
/// result, so it would throw inside the click handler. An empty array lets
/// the client's handler finish cleanly, with the same visible outcome as the
/// original (no call), and frees the pending ack on both sides.
pub const NO_OFFER_ACK: &str = "[]";

/// Bounds on the board. The original keeps every offer for the life of the
/// process; we keep its visible behaviour for live users and bound the rest.
#[derive(Clone, Debug)]
pub struct BoardLimits {
    /// Most offers on the board; past it the oldest offer of a departed
    /// user goes first, then the oldest offer overall.
    pub max_offers: usize,
    /// How long the offers of a user with no connected socket stay listed.
    pub keep_after_leave: Duration,
    /// Most offerer candidates stored per offer (later ones are still relayed).
    pub max_candidates: usize,
    /// Bytes of offers and candidates the board may hold; a new offer evicts
    /// as the count cap does, and a candidate past it is relayed, not stored.
    pub max_bytes: usize,
    /// Largest offer, answer or candidate accepted, in bytes. An SDP is a few
    /// kilobytes; the original takes anything up to its 1 MB packet limit.
    pub max_item: usize,
    /// Most bytes of `availableOffers` a newcomer is sent: the newest offers
    /// that fit. Every newcomer's copy waits in its socket until read.
    pub max_greeting: usize,
}

impl Default for BoardLimits {
    fn default() -> Self {
        BoardLimits {
            max_offers: 1000,
            keep_after_leave: Duration::from_secs(600),
            max_candidates: 64,
            max_bytes: 16 << 20,
            max_item: 64 << 10,
            max_greeting: 64 << 10,
        }
    }
}

/// One offer as the original stores and emits it; field order is the
/// original's object literal order.
#[derive(Clone, Debug, Serialize)]
pub struct Offer {
    /// The offerer's auth `userName`. A missing one is JS `undefined`, which
    /// `JSON.stringify` leaves out.
    #[serde(rename = "offererUserName", skip_serializing_if = "Option::is_none")]
    pub offerer_user_name: Option<Name>,
    /// The offer SDP object, as sent.
    pub offer: Payload,
    /// Offerer candidates gathered so far.
    #[serde(rename = "offerIceCandidates")]
    pub offer_ice_candidates: Vec<Payload>,
    /// Who answered last (`null` until then).
    #[serde(rename = "answererUserName")]
    pub answerer_user_name: Option<Name>,
    /// The last answer (`null` until then).
    pub answer: Option<Payload>,
    /// Never filled, as in the original.
    #[serde(rename = "answererIceCandidates")]
    pub answerer_ice_candidates: Vec<Payload>,
    /// When the last socket of the offerer went away (for pruning).
    #[serde(skip)]
    left_at: Option<Instant>,
    /// Bytes of JSON held (offer, answer, stored candidates).
    #[serde(skip)]
    size: usize,
    /// Whether the last answer was made on this node (in a cluster, that
    /// node relays the offerer candidates its answerer could not have had).
    #[serde(skip)]
    answered_here: bool,
}

/// Why an event was dropped. The original crashes or stays silent on all of
/// these; we log and carry on.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    /// The payload is not the JSON shape the event needs.
    #[error("'{event}' payload is not valid: {detail}")]
    BadPayload {
        /// Event name.
        event: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// No offer on the board matches the name the client gave.
    #[error("no offer on the board for user {0:?}")]
    NoSuchOffer(Option<String>),
    /// An offer, answer or candidate larger than the board takes.
    #[error("'{event}' payload of {bytes} bytes is over the limit of {limit}")]
    TooLarge {
        /// Event name.
        event: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// What answering an offer produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    /// The offerer to send `answerResponse` to (first live socket by name).
    pub offerer: Option<Name>,
    /// The `answerResponse` payload: the stored offer, updated.
    pub response: String,
}

/// What one ICE candidate did to the board.
struct IceOutcome {
    /// Where to relay it.
    relay: Option<Relay>,
    /// Whether it was an offerer's (stored on the board).
    offerer: bool,
    /// Whether the offer's answer was made on this node.
    answered_here: bool,
}

/// Where to relay one ICE candidate.
#[derive(Debug, PartialEq, Eq)]
pub struct Relay {
    /// User whose (first) socket gets `receivedIceCandidateFromServer`.
    pub to: Name,
    /// The bare candidate object.
    pub candidate: Payload,
}

#[derive(Deserialize)]
struct AnswerIn<'a> {
    #[serde(rename = "offererUserName", default)]
    offerer_user_name: Option<serde_json::Value>,
    #[serde(borrow)]
    answer: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct IceIn<'a> {
    #[serde(rename = "iceCandidate", borrow)]
    ice_candidate: Option<&'a RawValue>,
    #[serde(rename = "iceUserName", default)]
    ice_user_name: Option<serde_json::Value>,
    /// Tested with `if`, so JavaScript truthiness.
    #[serde(rename = "didIOffer", borrow, default)]
    did_i_offer: Option<&'a RawValue>,
}

/// The user name from the handshake `auth` object: a string, or none.
/// (Non-strings never match anything: the original client always sends a string.)
pub fn user_name(auth: &serde_json::Value) -> Option<Name> {
    auth.get("userName").and_then(|v| v.as_str()).map(Name::from)
}

/// The access token in the handshake `auth` object (`auth.token`), where
/// socket.io clients put credentials; the original's client sends none.
pub fn access_token(auth: &serde_json::Value) -> Option<String> {
    auth.get("token").and_then(|v| v.as_str()).map(str::to_string)
}

/// Whether the handshake `auth` object carries the password (`"x"`).
pub fn password_ok(auth: &serde_json::Value) -> bool {
    auth.get("password").and_then(|v| v.as_str()) == Some(PASSWORD)
}

fn bad(event: &'static str, detail: impl Into<String>) -> Dropped {
    Dropped::BadPayload { event, detail: detail.into() }
}

fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    // Serializing our own plain structs (strings, raw JSON) cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_string())
}

/// The offers of one listener, oldest first.
#[derive(Debug, Default)]
pub struct Board {
    offers: VecDeque<Offer>,
    limits: BoardLimits,
    /// Sum of the offers' sizes.
    bytes: usize,
    /// The `availableOffers` payload as of the last change, shared by every
    /// newcomer until the board changes (not built per socket).
    greeting: Option<Arc<RawValue>>,
}

impl Board {
    /// An empty board.
    pub fn new(limits: BoardLimits) -> Board {
        Board { offers: VecDeque::new(), limits, bytes: 0, greeting: None }
    }

    /// Offers listed now.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// Whether the board is empty.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }

    /// The offers, oldest first.
    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.iter()
    }

    // Quirk of `offers`: the original never removes an offer; new clients
    // get every offer ever made, answered or not, even of users long gone.
    // Clients show them all. We keep that for the offers of connected users
    // and for `keep_after_leave` after a user's last socket went away, and
    // cap the list at `max_offers`: a stale offer is useless (its answer goes
    // nowhere), and an unbounded list is a memory leak.
    fn prune(&mut self, now: Instant) {
        let keep = self.limits.keep_after_leave;
        let before = self.offers.len();
        self.offers.retain(|o| o.left_at.is_none_or(|t| now.saturating_duration_since(t) < keep));
        if self.offers.len() != before {
            self.bytes = self.offers.iter().map(|o| o.size).sum();
            self.greeting = None;
        }
    }

    /// The `availableOffers` payload: the newest offers whose JSON fits in
    /// `max_greeting` bytes, oldest first, built once per change.
    fn greeting(&mut self) -> Option<Arc<RawValue>> {
        if self.offers.is_empty() {
            return None;
        }
        if self.greeting.is_none() {
            let newest = self.newest(self.limits.max_greeting);
            self.greeting = RawValue::from_string(to_json(&newest)).ok().map(Arc::from);
        }
        self.greeting.clone()
    }

    /// The newest offers whose JSON fits in `limit` bytes (at least one),
    /// oldest first.
    fn newest(&self, limit: usize) -> Vec<&Offer> {
        let mut fit = 0;
        let mut bytes = 2;
        for o in self.offers.iter().rev() {
            bytes += o.size + 256;
            if bytes > limit && fit > 0 {
                break;
            }
            fit += 1;
        }
        self.offers.iter().skip(self.offers.len() - fit).collect()
    }

    fn check_size(&self, event: &'static str, bytes: usize) -> Result<(), Dropped> {
        let limit = self.limits.max_item;
        if bytes > limit { Err(Dropped::TooLarge { event, bytes, limit }) } else { Ok(()) }
    }

    /// A user's socket connected: its offers are live again. Returns the
    /// `availableOffers` payload (the whole board) if the board is not empty.
    pub fn connected(&mut self, user: Option<&Name>, now: Instant) -> Option<Arc<RawValue>> {
        self.prune(now);
        if let Some(user) = user {
            for o in self.offers.iter_mut().filter(|o| o.offerer_user_name.as_ref() == Some(user)) {
                o.left_at = None;
            }
        }
        self.greeting()
    }

    /// The last socket of a user went away: its offers start to age out.
    pub fn left(&mut self, user: &Name, now: Instant) {
        for o in self.offers.iter_mut().filter(|o| o.offerer_user_name.as_ref() == Some(user)) {
            o.left_at.get_or_insert(now);
        }
        self.prune(now);
    }

    /// `newOffer`: stores the offer and returns the `newOfferAwaiting`
    /// payload, a one-element array with the new offer.
    pub fn new_offer(&mut self, user: Option<Name>, offer: &str, now: Instant) -> Result<String, Dropped> {
        self.check_size(event::NEW_OFFER, offer.len())?;
        let offer = Payload::parse(offer).map_err(|e| bad(event::NEW_OFFER, e.to_string()))?;
        let size = offer.get().len();
        self.prune(now);
        while !self.offers.is_empty()
            && (self.offers.len() >= self.limits.max_offers || self.bytes + size > self.limits.max_bytes)
        {
            let victim = self.offers.iter().position(|o| o.left_at.is_some()).unwrap_or(0);
            if let Some(gone) = self.offers.remove(victim) {
                self.bytes -= gone.size;
            }
        }
        self.bytes += size;
        self.greeting = None;
        // Quirk of `offers`: the same user offering twice makes two entries;
        // every later lookup by name finds the first.
        self.offers.push_back(Offer {
            offerer_user_name: user,
            offer,
            offer_ice_candidates: Vec::new(),
            answerer_user_name: None,
            answer: None,
            answerer_ice_candidates: Vec::new(),
            left_at: None,
            size,
            answered_here: false,
        });
        let last = self.offers.back().map(std::slice::from_ref).unwrap_or_default();
        Ok(to_json(last))
    }

    /// `newAnswer` from `user`: finds the first offer by the client's
    /// `offererUserName`, calls `ack` with the stored offerer candidates
    /// (the ack payload, an array), *then* records the answer, and returns
    /// the `answerResponse` for the offerer. The order is the original's:
    /// the answerer gets the candidates gathered so far before anything else
    /// changes, and candidates that come later are relayed one by one.
    pub fn answer(&mut self, user: Option<Name>, body: &str, ack: impl FnOnce(String)) -> Result<Answered, Dropped> {
        self.answer_as(user, body, true, ack)
    }

    /// [`Board::answer`], made on this node (`here`) or on another one.
    fn answer_as(
        &mut self,
        user: Option<Name>,
        body: &str,
        here: bool,
        ack: impl FnOnce(String),
    ) -> Result<Answered, Dropped> {
        let input: AnswerIn<'_> = serde_json::from_str(body).map_err(|e| bad(event::NEW_ANSWER, e.to_string()))?;
        let answer_size = input.answer.map_or(0, |a| a.get().len());
        self.check_size(event::NEW_ANSWER, answer_size)?;
        let wanted = input.offerer_user_name.as_ref().and_then(|v| v.as_str());
        let Some(offer) = self.offers.iter_mut().find(|o| o.offerer_user_name.as_deref() == wanted && wanted.is_some())
        else {
            return Err(Dropped::NoSuchOffer(wanted.map(str::to_string)));
        };
        ack(to_json(&offer.offer_ice_candidates));
        // JS: `offerToUpdate.answer = offerObj.answer` (undefined if absent).
        let old = offer.answer.as_ref().map_or(0, |a| a.get().len());
        offer.answer = input.answer.map(Payload::from_raw);
        offer.answerer_user_name = user;
        offer.answered_here = here;
        // Answers replace each other: at most one per offer is held.
        offer.size = offer.size - old + answer_size;
        self.bytes = self.bytes - old + answer_size;
        self.greeting = None;
        Ok(Answered { offerer: offer.offerer_user_name.clone(), response: to_json(&*offer) })
    }

    /// `sendIceCandidateToSignalingServer`: stores an offerer's candidate and
    /// says where to relay it, if anywhere.
    pub fn ice(&mut self, body: &str) -> Result<Option<Relay>, Dropped> {
        self.ice_outcome(body).map(|o| o.relay)
    }

    /// [`Board::ice`], and whose candidate it was.
    fn ice_outcome(&mut self, body: &str) -> Result<IceOutcome, Dropped> {
        let input: IceIn<'_> = serde_json::from_str(body).map_err(|e| bad(event::SEND_ICE, e.to_string()))?;
        let Some(candidate) = input.ice_candidate.map(Payload::from_raw) else {
            return Err(bad(event::SEND_ICE, "missing 'iceCandidate'"));
        };
        self.check_size(event::SEND_ICE, candidate.get().len())?;
        let Some(name) = input.ice_user_name.as_ref().and_then(|v| v.as_str()) else {
            return Err(bad(event::SEND_ICE, "'iceUserName' must be a string"));
        };
        let offerer = input.did_i_offer.is_some_and(truthy);
        if offerer {
            let Some(offer) = self.offers.iter_mut().find(|o| o.offerer_user_name.as_deref() == Some(name)) else {
                // The original silently ignores this case too.
                return Err(Dropped::NoSuchOffer(Some(name.to_string())));
            };
            let size = candidate.get().len();
            if offer.offer_ice_candidates.len() < self.limits.max_candidates
                && self.bytes + size <= self.limits.max_bytes
            {
                offer.offer_ice_candidates.push(candidate.clone());
                offer.size += size;
                self.bytes += size;
                self.greeting = None;
            }
            let relay = offer.answerer_user_name.clone().map(|to| Relay { to, candidate });
            Ok(IceOutcome { relay, offerer: true, answered_here: offer.answered_here })
        } else {
            // The original throws a TypeError here when nothing matches,
            // which kills the process; we drop the candidate.
            let Some(offer) = self.offers.iter().find(|o| o.answerer_user_name.as_deref() == Some(name)) else {
                return Err(Dropped::NoSuchOffer(Some(name.to_string())));
            };
            let relay = offer.offerer_user_name.clone().map(|to| Relay { to, candidate });
            Ok(IceOutcome { relay, offerer: false, answered_here: false })
        }
    }
}

/// A board change as board peers send it (see [`change`]).
#[derive(Serialize)]
struct ChangeOut<'a> {
    /// Who made it (the socket's auth `userName`).
    user: Option<&'a str>,
    /// The client's event body, as sent.
    body: Option<&'a RawValue>,
    /// For an offerer's candidate: whether its node relayed it to the answerer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    relayed: bool,
}

/// A board change from another node.
#[derive(Deserialize)]
struct ChangeIn<'a> {
    #[serde(default)]
    user: Option<String>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(default)]
    relayed: bool,
}

/// One offer of a snapshot (the original's field names).
#[derive(Deserialize)]
struct SnapOffer<'a> {
    #[serde(rename = "offererUserName", default)]
    offerer: Option<String>,
    #[serde(borrow)]
    offer: &'a RawValue,
    #[serde(rename = "offerIceCandidates", borrow, default)]
    candidates: Vec<&'a RawValue>,
    #[serde(rename = "answererUserName", default)]
    answerer: Option<String>,
    #[serde(borrow, default)]
    answer: Option<&'a RawValue>,
}

/// What a change from another node did to this node's board.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// A `newOfferAwaiting` payload for every socket of this node.
    pub awaiting: Option<String>,
    /// An offerer candidate this node must relay to the answerer.
    pub relay: Option<Relay>,
}

/// Bytes of JSON an offer holds.
fn weigh(o: &Offer) -> usize {
    o.offer.get().len()
        + o.answer.as_ref().map_or(0, |a| a.get().len())
        + o.offer_ice_candidates.iter().map(|c| c.get().len()).sum::<usize>()
}

/// The board as nodes of a cluster keep it in step: changes made on another
/// node, snapshots for a node that joins, and users gone with their node.
impl Board {
    /// Applies a change of `kind` that another node made (its payload as
    /// [`ChangeOut`] wrote it, or a snapshot), with no acks: the node it
    /// was made on answered its client. `live` says whether a user has a
    /// socket anywhere in the cluster.
    pub fn apply(
        &mut self,
        kind: &str,
        payload: &str,
        now: Instant,
        live: impl Fn(&str) -> bool,
    ) -> Result<Applied, Dropped> {
        const EVENT: &str = "board change";
        let mut applied = Applied::default();
        if kind == change::SNAPSHOT {
            let snap: Vec<SnapOffer<'_>> = serde_json::from_str(payload).map_err(|e| bad(EVENT, e.to_string()))?;
            self.merge(snap, now, live);
            return Ok(applied);
        }
        let c: ChangeIn<'_> = serde_json::from_str(payload).map_err(|e| bad(EVENT, e.to_string()))?;
        let user = c.user.map(Name::from);
        let body = c.body.map_or("null", RawValue::get);
        match kind {
            change::OFFER => applied.awaiting = Some(self.new_offer(user, body, now)?),
            change::ANSWER => {
                self.answer_as(user, body, false, |_| {})?;
            }
            change::ICE => {
                let o = self.ice_outcome(body)?;
                // The answer was made here and the offerer's node did not
                // know it yet: the answerer's ack here did not have this
                // candidate, and nobody relayed it.
                if o.offerer && o.answered_here && !c.relayed {
                    applied.relay = o.relay;
                }
            }
            change::LEFT => {
                if let Some(u) = user.filter(|u| !live(u)) {
                    self.left(&u, now);
                }
            }
            change::BACK => {
                if let Some(u) = user {
                    self.revive(&u);
                }
            }
            _ => {}
        }
        Ok(applied)
    }

    /// A socket of `user` connected on another node: its offers are live.
    fn revive(&mut self, user: &Name) {
        for o in self.offers.iter_mut().filter(|o| o.offerer_user_name.as_ref() == Some(user)) {
            o.left_at = None;
        }
    }

    /// Whether `user` has offers listed.
    pub fn has_offers(&self, user: &Name) -> bool {
        self.offers.iter().any(|o| o.offerer_user_name.as_ref() == Some(user))
    }

    /// Brings the aging of offers in line with who is connected anywhere
    /// (`live`): offers of users with no socket left start to age out, as
    /// if each had left, and those of users with one stop. For when a node
    /// is gone, and now and then in a cluster, so that a change that never
    /// arrived (a node killed, Redis down) does not keep offers forever.
    pub fn sweep(&mut self, now: Instant, live: impl Fn(&str) -> bool) {
        for o in self.offers.iter_mut() {
            let Some(name) = o.offerer_user_name.as_deref() else { continue };
            match (o.left_at.is_some(), live(name)) {
                (false, false) => o.left_at = Some(now),
                (true, true) => o.left_at = None,
                _ => {}
            }
        }
        self.prune(now);
    }

    /// The board for a node that joins: its newest offers, up to
    /// [`SNAPSHOT_BYTES`], as JSON.
    pub fn snapshot(&self) -> String {
        to_json(&self.newest(SNAPSHOT_BYTES))
    }

    /// Merges a snapshot from another node: offers not listed here (by
    /// offerer and offer) are added in the snapshot's order, before what
    /// follows them here; listed ones take an answer or candidates this
    /// node has not seen. Then the board's bounds apply.
    fn merge(&mut self, snap: Vec<SnapOffer<'_>>, now: Instant, live: impl Fn(&str) -> bool) {
        let mut at = 0;
        for s in snap {
            let offerer = s.offerer.map(Name::from);
            let found =
                self.offers.iter().position(|o| o.offerer_user_name == offerer && o.offer.get() == s.offer.get());
            let candidates = || s.candidates.iter().map(|c| Payload::from_raw(c)).collect::<Vec<_>>();
            match found {
                Some(i) => {
                    let o = &mut self.offers[i];
                    if o.answer.is_none() && s.answer.is_some() {
                        o.answer = s.answer.map(Payload::from_raw);
                        o.answerer_user_name = s.answerer.map(Name::from);
                        o.answered_here = false;
                    }
                    if s.candidates.len() > o.offer_ice_candidates.len() {
                        o.offer_ice_candidates = candidates();
                    }
                    o.size = weigh(o);
                    at = at.max(i + 1);
                }
                None => {
                    let left_at = offerer.as_deref().is_some_and(|n| !live(n)).then_some(now);
                    let mut o = Offer {
                        offerer_user_name: offerer,
                        offer: Payload::from_raw(s.offer),
                        offer_ice_candidates: candidates(),
                        answerer_user_name: s.answerer.map(Name::from),
                        answer: s.answer.map(Payload::from_raw),
                        answerer_ice_candidates: Vec::new(),
                        left_at,
                        size: 0,
                        answered_here: false,
                    };
                    o.size = weigh(&o);
                    self.offers.insert(at, o);
                    at += 1;
                }
            }
        }
        self.bytes = self.offers.iter().map(|o| o.size).sum();
        while self.offers.len() > self.limits.max_offers || self.bytes > self.limits.max_bytes {
            let victim = self.offers.iter().position(|o| o.left_at.is_some()).unwrap_or(0);
            match self.offers.remove(victim) {
                Some(gone) => self.bytes -= gone.size,
                None => break,
            }
        }
        self.greeting = None;
        self.prune(now);
    }
}

/// What an event may do to the socket.io socket it came from, besides
/// messages to one user (those go through the hub).
pub trait Answer {
    /// Calls the event's acknowledgement callback with `data`.
    fn ack(&mut self, data: &RawValue);
    /// Emits `event` to every other socket of the listener (socket.io's
    /// `socket.broadcast.emit`).
    fn broadcast(&mut self, event: &'static str, data: &RawValue);
}

/// The `offers` dialect of one listener: its board, shared by its sockets.
#[derive(Debug, Default)]
pub struct Offers {
    /// Locked briefly, never across an await; it also orders a connecting
    /// socket against a departing one of the same user, and the changes
    /// this node sends other nodes against each other.
    board: Mutex<Board>,
    /// In a cluster, this node's board peer (see [`BOARD_ROOM`]).
    peer: OnceLock<PeerId>,
}

impl Offers {
    /// A listener with an empty board.
    pub fn new(limits: BoardLimits) -> Offers {
        Offers { board: Mutex::new(Board::new(limits)), peer: OnceLock::new() }
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// In a cluster: `ctx.peer` is this node's board peer. It joins
    /// [`BOARD_ROOM`], where the board peers of the other nodes are; from
    /// now on what changes this board goes to them too.
    pub fn board_opened(&self, ctx: &mut Ctx<'_>) -> Result<(), HubError> {
        let _board = self.board();
        ctx.dispatch(Command::Join { room: Name::from(BOARD_ROOM), info: None, max: None })?;
        let _ = self.peer.set(ctx.peer);
        Ok(())
    }

    /// Tells the other nodes' board peers about a change of this board
    /// (with the board locked, so they get changes in this board's order).
    fn share(&self, ctx: &Ctx<'_>, kind: &'static str, user: Option<&Name>, body: Option<&RawValue>, relayed: bool) {
        let Some(&peer) = self.peer.get() else { return };
        let change = ChangeOut { user: user.map(|u| &**u), body, relayed };
        let payload = Payload::trusted(&to_json(&change));
        let cmd = Command::Broadcast { room: Name::from(BOARD_ROOM), kind: Name::from(kind), payload };
        if let Err(e) = ctx.hub.dispatch(peer, cmd, ctx.now, &mut Pressure::default()) {
            tracing::warn!(error = %e, kind, "offers: board change not sent to the other nodes");
        }
    }

    /// An event for this node's board peer (see [`Offers::board_opened`];
    /// `ctx.peer` is the board peer): a change another node made, applied
    /// here; a snapshot; another node's board peer joining (it is sent this
    /// board) or gone (its users' offers age). Returns a `newOfferAwaiting`
    /// payload to emit to every socket of this node.
    pub fn board_event(&self, ev: Event, ctx: &mut Ctx<'_>) -> Option<Box<RawValue>> {
        let mut board = self.board();
        let hub = ctx.hub;
        let space = ctx.space;
        let live = |n: &str| hub.holder(space, n).is_some();
        let applied = match ev {
            Event::Signal { kind, payload, .. } => match board.apply(&kind, payload.get(), ctx.now, live) {
                Ok(applied) => applied,
                Err(e) => {
                    log_drop(&kind, &e);
                    return None;
                }
            },
            Event::Joined { room, peer } if *room == *BOARD_ROOM => {
                let payload = Payload::trusted(&board.snapshot());
                let cmd = Command::Signal {
                    to: Target::Id(peer.id),
                    kind: Name::from(change::SNAPSHOT),
                    payload,
                    missing: Missing::Drop,
                    mark: None,
                };
                if let Err(e) = ctx.dispatch(cmd) {
                    tracing::warn!(error = %e, "offers: board snapshot not sent to a new node");
                }
                return None;
            }
            Event::Left { room, .. } if *room == *BOARD_ROOM => {
                board.sweep(ctx.now, live);
                return None;
            }
            Event::Undeliverable { to, kind, reason, .. } => {
                tracing::warn!(%to, kind = &*kind, ?reason, "offers: a board change did not reach another node");
                return None;
            }
            _ => return None,
        };
        drop(board);
        if let Some(r) = applied.relay {
            wire::relay(ctx, Target::Name(r.to), event::RECEIVED_ICE, r.candidate);
        }
        applied.awaiting.and_then(|list| RawValue::from_string(list).ok())
    }

    /// A socket of `user` connected (its peer is `ctx.peer`): claims the
    /// user's name, shared (`exclusive: false`, so lookups find the first
    /// connected holder, as the original's `Array.find` does), and returns
    /// the `availableOffers` payload to emit, if the board is not empty. A
    /// name the access token does not allow leaves the board alone: the
    /// socket is refused. Other refused claims (a name too long) only cost
    /// the user its messages, as before.
    pub fn connected(&self, user: Option<&Name>, ctx: &mut Ctx<'_>) -> Result<Option<Arc<RawValue>>, HubError> {
        let mut board = self.board();
        if let Some(name) = user {
            match ctx.dispatch(Command::Claim { name: name.clone(), exclusive: false }) {
                Ok(_) => {}
                Err(e @ HubError::NotAllowed(_)) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "offers: claim failed"),
            }
        }
        let greeting = board.connected(user, ctx.now);
        if let Some(name) = user.filter(|u| board.has_offers(u)) {
            self.share(ctx, change::BACK, Some(name), None, false);
        }
        Ok(greeting)
    }

    /// A socket of `user` is gone: `detach` takes its peer off the hub; if
    /// that was the user's last socket, its offers start to age out.
    pub fn disconnected(&self, user: Option<&Name>, ctx: &mut Ctx<'_>, detach: impl FnOnce()) {
        let mut board = self.board();
        detach();
        if let Some(name) = user
            && ctx.hub.holder(ctx.space, name).is_none()
        {
            board.left(name, ctx.now);
            if board.has_offers(name) {
                self.share(ctx, change::LEFT, Some(name), None, false);
            }
        }
    }

    /// In a cluster, now and then (see [`Board::sweep`]); `ctx.peer` is
    /// this node's board peer.
    pub fn sweep(&self, ctx: &mut Ctx<'_>) {
        let hub = ctx.hub;
        let space = ctx.space;
        self.board().sweep(ctx.now, |n| hub.holder(space, n).is_some());
    }

    /// One event `name` with its first argument `data` (raw JSON) from a
    /// socket of `user`.
    pub fn event(
        &self,
        user: Option<Name>,
        name: &str,
        data: Option<&RawValue>,
        ctx: &mut Ctx<'_>,
        answer: &mut dyn Answer,
    ) {
        let body = data.map(RawValue::get).unwrap_or("null");
        tracing::debug!(event = name, "event");
        let mut board = self.board();
        let who = user.clone();
        let relay = match name {
            event::NEW_OFFER => {
                match board.new_offer(user, body, ctx.now).map(RawValue::from_string) {
                    Ok(Ok(list)) => {
                        answer.broadcast(event::NEW_OFFER_AWAITING, &list);
                        self.share(ctx, change::OFFER, who.as_ref(), data, false);
                    }
                    Ok(Err(_)) => {}
                    Err(e) => log_drop(event::NEW_OFFER, &e),
                }
                None
            }
            event::NEW_ANSWER => {
                // The ack goes out under the board lock, before anything else
                // changes (see `Board::answer`).
                let mut acked = false;
                let answered = board.answer(user, body, |candidates| {
                    if let Ok(list) = RawValue::from_string(candidates) {
                        answer.ack(&list);
                    }
                    acked = true;
                });
                if answered.is_ok() {
                    self.share(ctx, change::ANSWER, who.as_ref(), data, false);
                }
                match answered {
                    Ok(a) => match (a.offerer, Payload::parse(&a.response)) {
                        (Some(to), Ok(p)) => Some((to, event::ANSWER_RESPONSE, p)),
                        _ => None,
                    },
                    Err(e) => {
                        log_drop(event::NEW_ANSWER, &e);
                        if !acked && let Ok(empty) = RawValue::from_string(NO_OFFER_ACK.into()) {
                            // See `NO_OFFER_ACK` for why we answer at all.
                            answer.ack(&empty);
                        }
                        None
                    }
                }
            }
            event::SEND_ICE => match board.ice_outcome(body) {
                Ok(o) => {
                    if o.offerer {
                        self.share(ctx, change::ICE, who.as_ref(), data, o.relay.is_some());
                    }
                    o.relay.map(|r| (r.to, event::RECEIVED_ICE, r.candidate))
                }
                Err(e) => {
                    log_drop(event::SEND_ICE, &e);
                    None
                }
            },
            other => {
                tracing::debug!(event = other, "offers: unknown event ignored");
                None
            }
        };
        drop(board);
        if let Some((to, kind, payload)) = relay {
            wire::relay(ctx, Target::Name(to), kind, payload);
        }
    }
}

/// What a hub event for a socket becomes: a signal is an emit of its kind
/// with its payload.
pub fn emit_of(ev: Event) -> Option<(Name, Payload)> {
    match ev {
        Event::Signal { kind, payload, .. } => Some((kind, payload)),
        _ => None,
    }
}

fn log_drop(event: &str, e: &Dropped) {
    tracing::warn!(event, error = %e, "offers: event dropped");
}

#[cfg(test)]
#[path = "offers_tests.rs"]
mod tests;
