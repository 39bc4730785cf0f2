//! The `basic` dialect: peterforgacs/web-rtc `basic/` (docs/dialects/basic.md), a
//! pure relay by name over a raw WebSocket: `login`, `offer`, `answer`,
//! `candidate`, `leave`, `message`, each a JSON object with a `type`.
//!
//! Names are hub names (exclusive claims); relays are hub signals to
//! `Target::Name` with [`Missing::Drop`], so an unknown target is silently
//! ignored, as the original does for `offer`/`answer`/`candidate` (and as we
//! do instead of crashing for `leave`/`message`).
//!
//! Per-connection state, all in [`Basic`]:
//! - `name`: the original's `connection.name`, the latest successful login.
//!   The sender's frame builder needs it, so each relayed frame is built
//!   completely by the *sender's* connection and travels as the signal's
//!   opaque payload; the receiver writes it out unchanged.
//! - `other`: the original's `connection.otherName`, set by the sender of an
//!   `offer`/`answer` and cleared on the *receiving* side when a `leave` or
//!   `message` arrives (the original clears the target's field when relaying
//!   those). It decides who gets a `leave` when the connection closes.
//!
//! Sub-values (`offer`, `answer`, `candidate`, `message`) are forwarded as the
//! raw JSON text the client sent (the original re-serialises them with
//! `JSON.stringify`; for browser clients, which send compact JSON, the bytes
//! are the same). A key present with `null` stays `null`; a missing key is
//! left out, as `JSON.stringify` leaves out `undefined`.

use super::wire::{self, js_string, json_object, json_str, str_field};
use super::{Ctx, Protocol};
use crate::hub::{Event, Name, Reply, Target};

/// One `basic` connection.
#[derive(Debug, Default)]
pub struct Basic {
    /// `connection.name`: latest successful login; sent as `name` in relays.
    name: Option<Name>,
    /// `connection.otherName`: the peer this connection last offered to or
    /// answered; told `leave` when this connection closes.
    other: Option<Name>,
}

impl Basic {
    /// State for a new connection.
    pub fn new() -> Basic {
        Basic::default()
    }
}

const LOGIN_OK: &str = r#"{"type":"login","success":true}"#;
const LOGIN_TAKEN: &str = r#"{"type":"login","success":false}"#;

impl Basic {
    /// Relays a finished frame to the peer named `to`; true if it was
    /// delivered (or queued), false if nobody holds that name.
    fn relay(&self, ctx: &mut Ctx<'_>, kind: &str, to: Option<&str>, frame: String) -> bool {
        let Some(to) = to else {
            tracing::debug!(kind, "no target name: dropped");
            return false;
        };
        match wire::relay_frame(ctx, Target::Name(Name::from(to)), kind, &frame) {
            Some(Reply::Sent | Reply::Queued) => true,
            Some(_) if matches!(kind, "leave" | "message") => {
                tracing::info!(peer = %ctx.peer, kind, to, "unknown target: dropped (the original server crashes here)");
                false
            }
            Some(_) => {
                tracing::debug!(kind, to, "unknown target: dropped");
                false
            }
            None => false,
        }
    }

    fn login(&mut self, name: Option<String>, ctx: &mut Ctx<'_>) {
        // `users[name]` exists, even when it is this very connection.
        match wire::claim_exclusive(ctx, name.as_deref()) {
            Some(name) => {
                // Quirk of `basic`: a connection may log in several times under
                // different names; all stay mapped to it, the latest is its own.
                self.name = Some(name);
                ctx.send(LOGIN_OK.into());
            }
            None => ctx.send(LOGIN_TAKEN.into()),
        }
    }

    fn sender_name(&self) -> Option<String> {
        self.name.as_deref().map(json_str)
    }
}

impl Protocol for Basic {
    fn received(&mut self, text: &str, ctx: &mut Ctx<'_>) {
        // Invalid JSON (or anything not an object) is treated as `{}`.
        let fields = wire::fields(text).unwrap_or_default();
        let target = str_field(&fields, "name");
        let raw = |key: &str| fields.get(key).map(|r| r.get());
        match str_field(&fields, "type").as_deref() {
            Some("login") => self.login(target, ctx),
            Some("offer") => {
                let sender = self.sender_name();
                let f = json_object("type", "offer", &[("offer", raw("offer")), ("name", sender.as_deref())]);
                if self.relay(ctx, "offer", target.as_deref(), f) {
                    self.other = target.map(Name::from);
                }
            }
            Some("answer") => {
                // Quirk of `basic`: the relayed answer does not name its sender.
                let f = json_object("type", "answer", &[("answer", raw("answer"))]);
                if self.relay(ctx, "answer", target.as_deref(), f) {
                    self.other = target.map(Name::from);
                }
            }
            Some("candidate") => {
                let f = json_object("type", "candidate", &[("candidate", raw("candidate"))]);
                self.relay(ctx, "candidate", target.as_deref(), f);
            }
            Some("leave") => {
                // The original crashes on an unknown target; we drop silently.
                // Quirk of `basic`: the sender's own `otherName` is not cleared.
                self.relay(ctx, "leave", target.as_deref(), json_object("type", "leave", &[]));
            }
            Some("message") => {
                // Unknown target (including the client's literal "name" when it
                // has no peer) crashes the original; we drop silently.
                let sender = self.sender_name();
                let f = json_object("type", "message", &[("message", raw("message")), ("name", sender.as_deref())]);
                self.relay(ctx, "message", target.as_deref(), f);
            }
            _ => {
                ctx.hub.metrics().error("unknown_type");
                let message = format!("Unrecognized command: {}", js_string(fields.get("type").copied()));
                ctx.send(json_object("type", "error", &[("message", Some(&json_str(&message)))]));
            }
        }
    }

    fn deliver(&mut self, event: Event, ctx: &mut Ctx<'_>) {
        match event {
            Event::Signal { kind, payload, .. } => {
                // Quirk of `basic`: relaying `leave` or `message` clears the
                // target's `otherName`, so its own later disconnect is silent.
                if matches!(&*kind, "leave" | "message") {
                    self.other = None;
                }
                ctx.send(payload.get().to_string());
            }
            other => tracing::debug!(event = ?other, "event with no `basic` equivalent: ignored"),
        }
    }

    fn closing(&mut self, ctx: &mut Ctx<'_>) {
        // Quirk of `basic`: a logged-in connection that offered or answered
        // tells that peer `leave` when it closes. The original registers one
        // close handler per message received and so sends one `leave` per
        // message; the client treats repeats as no-ops (each only resets its
        // already reset call), so we send exactly one.
        let logged_in = self.name.as_deref().is_some_and(|n| !n.is_empty());
        let Some(other) = self.other.take().filter(|_| logged_in) else { return };
        // A `leave` to itself would crash the original; it has nobody to tell.
        if ctx.hub.holder(ctx.space, &other) == Some(ctx.peer) {
            return;
        }
        self.relay(ctx, "leave", Some(&other), json_object("type", "leave", &[]));
    }
}
