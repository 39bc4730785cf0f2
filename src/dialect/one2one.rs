//! The `one2one` dialect: lotas/webrtc-signal-sample (docs/dialects/one2one.md), a
//! Kurento-one2one-style register/call protocol over a raw WebSocket at
//! `/call`; each frame is a JSON object with an `id`.
//!
//! Names are hub names (exclusive claims); every frame for another
//! connection is built here, completely, and travels as a hub signal's opaque
//! payload to `Target::Id` of the peer looked up by name; the receiver writes
//! it out unchanged.
//!
//! State: the original's `UserSession.peer` (a name) and `.sdpOffer` are read
//! and written by *other* connections (a `call` names its caller by the
//! `from` field, not by socket, and sets the callee's link; an accept reads
//! the caller's stored offer). So they live in [`Links`], one small map per
//! listener (created by `routes::one2one`), keyed by peer id: an entry is
//! made when a connection opens and removed when it closes, and other
//! connections only ever update existing entries. The registered name is the
//! connection's own ([`One2one::name`]).
//!
//! In a cluster the two sides of a call may be on different nodes, each with
//! its own `Links`: the callee's entry is then not in the caller's map. So
//! the callee's connection also sets its own link, and keeps the offer, from
//! the `incomingCall` it receives; on one node that writes what the caller's
//! connection wrote already.
//!
//! Differences from the original, all where it crashes, hangs or leaks:
//! unknown `from` in `call` gets the protocol's own `callResponse` rejection
//! (it crashed); bad JSON is logged and ignored (it crashed); `register`
//! without a string `name` is rejected (it registered "undefined"); names
//! given up by a closing connection are all freed (it kept stale ones).
//! Names registered earlier by the same connection stay held by it (and are
//! listed), but all share the connection's one session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::wire::{self, Fields, json_object, json_str, str_field};
use super::{Ctx, Protocol};
use crate::hub::{Event, Name, Payload, PeerId, Target};

/// The original's per-user call state that other connections touch.
#[derive(Debug, Default)]
struct Session {
    /// `UserSession.peer`: name of the call partner, set at `call` time.
    peer: Option<Name>,
    /// `UserSession.sdpOffer`: the offer of this user's latest `call`.
    sdp_offer: Option<Payload>,
    /// The offer of the latest `incomingCall` this user received: stands
    /// for the caller's `sdp_offer` when the caller is on another node.
    offered: Option<Payload>,
}

/// Sessions of one `one2one` listener, shared by its connections.
#[derive(Clone, Debug, Default)]
pub struct Links(Arc<Mutex<HashMap<PeerId, Session>>>);

impl Links {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<PeerId, Session>) -> R) -> R {
        // Plain data, no invariant spans entries: a poisoned lock is usable.
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// How many connections have a session (for tests and metrics).
    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    /// Whether no connection has a session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One `one2one` connection.
#[derive(Debug)]
pub struct One2one {
    links: Links,
    /// The latest name this connection registered (`usersById[id].name`).
    name: Option<Name>,
}

impl One2one {
    /// State for a new connection of the listener owning `links`.
    pub fn new(links: Links) -> One2one {
        One2one { links, name: None }
    }
}

const REGISTER_OK: &str = r#"{"id":"registerResponse","response":"accepted"}"#;
// Quirk of `one2one`: the registration rejection carries no `message`.
const REGISTER_REJECTED: &str = r#"{"id":"registerResponse","response":"rejected"}"#;
const CALL_UNKNOWN: &str = r#"{"id":"callResponse","response":"rejected","message":"User not registered"}"#;
const CALL_REJECTED: &str = r#"{"id":"callResponse","response":"rejected"}"#;

fn lookup(ctx: &Ctx<'_>, name: Option<&str>) -> Option<PeerId> {
    let name = name?;
    ctx.hub.holder(ctx.space, name)
}

/// Sends a finished frame to a peer of this listener (this one included).
fn send_to(ctx: &mut Ctx<'_>, to: PeerId, kind: &str, frame: String) {
    if to == ctx.peer {
        ctx.send(frame);
        return;
    }
    wire::relay_frame(ctx, Target::Id(to), kind, &frame);
}

impl One2one {
    fn register(&mut self, name: Option<String>, ctx: &mut Ctx<'_>) {
        // No empty-name check, as in the original. A name this connection
        // already holds is "already registered" too.
        match wire::claim_exclusive(ctx, name.as_deref()) {
            Some(name) => {
                self.name = Some(name);
                ctx.send(REGISTER_OK.into());
            }
            None => ctx.send(REGISTER_REJECTED.into()),
        }
    }

    fn call(&mut self, fields: &Fields<'_>, ctx: &mut Ctx<'_>) {
        let from = str_field(fields, "from");
        let to = str_field(fields, "to");
        // Quirk of `one2one`: the caller is whoever holds the name `from`,
        // not necessarily this socket.
        let Some(caller) = lookup(ctx, from.as_deref()) else {
            tracing::warn!(peer = %ctx.peer, from = ?from, "call from an unregistered name: rejected (the original crashes)");
            ctx.hub.metrics().error("unknown_peer");
            ctx.send(CALL_UNKNOWN.into());
            return;
        };
        let Some(callee) = lookup(ctx, to.as_deref()) else {
            ctx.hub.metrics().error("unknown_peer");
            send_to(ctx, caller, "callResponse", CALL_UNKNOWN.into());
            return;
        };
        let offer = fields.get("sdpOffer").map(|r| Payload::from_raw(r));
        self.links.with(|m| {
            if let Some(s) = m.get_mut(&caller) {
                s.sdp_offer = offer;
            }
            // Quirk of `one2one`: no busy check; a busy callee's link is overwritten.
            if let Some(s) = m.get_mut(&callee) {
                s.peer = from.as_deref().map(Name::from);
            }
            if let Some(s) = m.get_mut(&caller) {
                s.peer = to.as_deref().map(Name::from);
            }
        });
        // Quirk of `one2one`: the offer arrives in a field named `offer`.
        let from_json = from.as_deref().map(json_str);
        let f = json_object(
            "id",
            "incomingCall",
            &[("from", from_json.as_deref()), ("offer", fields.get("sdpOffer").map(|r| r.get()))],
        );
        send_to(ctx, callee, "incomingCall", f);
    }

    fn incoming_call_response(&mut self, fields: &Fields<'_>, ctx: &mut Ctx<'_>) {
        let caller = lookup(ctx, str_field(fields, "from").as_deref());
        let accepted = str_field(fields, "callResponse").as_deref() == Some("accept");
        let (Some(caller), Some(_), true) = (caller, &self.name, accepted) else {
            // Quirk of `one2one`: the rejection goes back to the callee; the
            // caller is never told.
            ctx.send(CALL_REJECTED.into());
            return;
        };
        let stored = self.links.with(|m| match m.get(&caller) {
            Some(s) => s.sdp_offer.clone(),
            // The caller is on another node: the offer it called with.
            None => m.get(&ctx.peer).and_then(|s| s.offered.clone()),
        });
        // Quirk of `one2one`: the callee's answer travels as `sdpOffer` and
        // reaches the caller as `sdpAnswer`; the callee then gets the
        // caller's stored offer back, also as `sdpAnswer`.
        let answer = fields.get("sdpOffer").map(|r| r.get());
        let f = json_object("id", "callResponse", &[("response", Some(r#""accepted""#)), ("sdpAnswer", answer)]);
        send_to(ctx, caller, "callResponse", f);
        ctx.send(json_object("id", "startCommunication", &[("sdpAnswer", stored.as_ref().map(Payload::get))]));
    }

    /// An `incomingCall` reached this connection: it is linked to the caller
    /// (set already if the caller is on this node) and keeps its offer.
    fn called(&self, frame: &Payload, ctx: &Ctx<'_>) {
        let Some(fields) = wire::fields(frame.get()) else { return };
        let from = str_field(&fields, "from");
        let offer = fields.get("offer").map(|r| Payload::from_raw(r));
        self.links.with(|m| {
            if let Some(s) = m.get_mut(&ctx.peer) {
                s.peer = from.as_deref().map(Name::from);
                s.offered = offer;
            }
        });
    }

    /// Sends a frame to the peer this connection is linked to, if that name
    /// is registered; otherwise drops it.
    fn to_peer(&self, ctx: &mut Ctx<'_>, kind: &str, frame: String) {
        let peer = self.links.with(|m| m.get(&ctx.peer).and_then(|s| s.peer.clone()));
        match lookup(ctx, peer.as_deref()) {
            Some(to) => send_to(ctx, to, kind, frame),
            None => tracing::debug!(kind, "no registered peer: dropped"),
        }
    }
}

impl Protocol for One2one {
    fn opened(&mut self, ctx: &mut Ctx<'_>) {
        self.links.with(|m| m.insert(ctx.peer, Session::default()));
    }

    fn received(&mut self, text: &str, ctx: &mut Ctx<'_>) {
        let Some(fields) = wire::fields(text) else {
            tracing::warn!(peer = %ctx.peer, "not a JSON object: ignored (the original crashes)");
            ctx.hub.metrics().error("bad_json");
            return;
        };
        match str_field(&fields, "id").as_deref() {
            Some("register") => self.register(str_field(&fields, "name"), ctx),
            Some("call") => self.call(&fields, ctx),
            Some("incomingCallResponse") => self.incoming_call_response(&fields, ctx),
            // Quirk of `one2one`: candidates are relayed at once along the
            // link set at `call` time; no server-side queue.
            Some("onIceCandidate") => {
                let f = json_object("id", "iceCandidate", &[("candidate", fields.get("candidate").map(|r| r.get()))]);
                self.to_peer(ctx, "iceCandidate", f);
            }
            Some("answer") => {
                let f = json_object("id", "startCommunication", &[("sdpAnswer", fields.get("sdp").map(|r| r.get()))]);
                self.to_peer(ctx, "startCommunication", f);
            }
            Some("list") => {
                let names = ctx.hub.names(ctx.space);
                let list = serde_json::to_string(&names.iter().map(|n| &**n).collect::<Vec<&str>>())
                    .unwrap_or_else(|_| "[]".into());
                ctx.send(json_object("id", "listResponse", &[("list", Some(&list))]));
            }
            Some("ping") => ctx.send(r#"{"id":"pong"}"#.into()),
            // Quirk of `one2one`: `stop` does nothing; the peer is not told.
            Some("stop") => {}
            other => tracing::debug!(id = ?other, "unknown message id: ignored"),
        }
    }

    fn deliver(&mut self, event: Event, ctx: &mut Ctx<'_>) {
        match event {
            Event::Signal { kind, payload, .. } => {
                if &*kind == "incomingCall" {
                    self.called(&payload, ctx);
                }
                ctx.send(payload.get().to_string());
            }
            other => tracing::debug!(event = ?other, "event with no `one2one` equivalent: ignored"),
        }
    }

    fn closing(&mut self, ctx: &mut Ctx<'_>) {
        // Quirk of `one2one`: peers are not told; their links keep the gone name.
        self.links.with(|m| m.remove(&ctx.peer));
    }
}
