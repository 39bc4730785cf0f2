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
//! Field names are the original's, verbatim: `offererUserName`, `offer`,
//! `offerIceCandidates`, `answererUserName`, `answer`,
//! `answererIceCandidates`, `iceUserName`, `didIOffer`, `iceCandidate`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::value::RawValue;

use super::Ctx;
use super::wire::{self, truthy};
use crate::hub::{Command, Event, HubError, Name, Payload, Target};

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
            let mut fit = 0;
            let mut bytes = 2;
            for o in self.offers.iter().rev() {
                bytes += o.size + 256;
                if bytes > self.limits.max_greeting && fit > 0 {
                    break;
                }
                fit += 1;
            }
            let newest: Vec<&Offer> = self.offers.iter().skip(self.offers.len() - fit).collect();
            self.greeting = RawValue::from_string(to_json(&newest)).ok().map(Arc::from);
        }
        self.greeting.clone()
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
        // Answers replace each other: at most one per offer is held.
        offer.size = offer.size - old + answer_size;
        self.bytes = self.bytes - old + answer_size;
        self.greeting = None;
        Ok(Answered { offerer: offer.offerer_user_name.clone(), response: to_json(&*offer) })
    }

    /// `sendIceCandidateToSignalingServer`: stores an offerer's candidate and
    /// says where to relay it, if anywhere.
    pub fn ice(&mut self, body: &str) -> Result<Option<Relay>, Dropped> {
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
            Ok(offer.answerer_user_name.clone().map(|to| Relay { to, candidate }))
        } else {
            // The original throws a TypeError here when nothing matches,
            // which kills the process; we drop the candidate.
            let Some(offer) = self.offers.iter().find(|o| o.answerer_user_name.as_deref() == Some(name)) else {
                return Err(Dropped::NoSuchOffer(Some(name.to_string())));
            };
            Ok(offer.offerer_user_name.clone().map(|to| Relay { to, candidate }))
        }
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
    /// socket against a departing one of the same user.
    board: Mutex<Board>,
}

impl Offers {
    /// A listener with an empty board.
    pub fn new(limits: BoardLimits) -> Offers {
        Offers { board: Mutex::new(Board::new(limits)) }
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
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
        Ok(board.connected(user, ctx.now))
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
        }
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
        let relay = match name {
            event::NEW_OFFER => {
                match board.new_offer(user, body, ctx.now).map(RawValue::from_string) {
                    Ok(Ok(list)) => answer.broadcast(event::NEW_OFFER_AWAITING, &list),
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
            event::SEND_ICE => match board.ice(body) {
                Ok(r) => r.map(|r| (r.to, event::RECEIVED_ICE, r.candidate)),
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
