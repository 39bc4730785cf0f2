//! `easyrtcMsg`: application messages to a peer, a room or a group.

use super::check::{self, code, value};
use super::{Answer, Env, Login, event, hub_name, room_key};
use crate::dialect::Ctx;
use crate::dialect::wire::{self, json_str};
use crate::hub::{Command, Missing, Name, Payload, Target};

impl Login {
    pub(super) fn msg(&self, body: &str, ctx: &mut Ctx<'_>, env: &Env<'_>) -> Answer {
        let Some(fields) = check::message(body) else { return Answer::error(code::MSG_REJECT_BAD_STRUCTURE, env) };
        let Some(msg_type) = value(&fields, "msgType").and_then(|t| t.as_str().map(str::to_string)) else {
            return Answer::error(code::MSG_REJECT_BAD_TYPE, env);
        };
        if let Err(c) = check::msg(&fields) {
            return Answer::error(c, env);
        }
        let login = self;
        let me = login.profile.easyrtcid.as_str();
        let text = |key: &str| fields.get(key).and_then(|r| wire::as_str(r)).map(|s| s.into_owned());
        let (target, room, group) = (text("targetEasyrtcid"), text("targetRoom"), text("targetGroup"));
        if target.as_deref() == Some(me) {
            return Answer::error(code::MSG_REJECT_TARGET_EASYRTCID, env);
        }
        // The relayed object, in the original's field order; the receiver
        // adds `easyrtcid` and `serverTime`.
        let mut relayed = format!(r#"{{"senderEasyrtcid":{}"#, json_str(me));
        let data = fields.get("msgData").map(|d| format!(r#","msgData":{}"#, d.get())).unwrap_or_default();
        let msg_type = json_str(&msg_type);
        if let Some(target) = &target {
            let name = hub_name(&login.app, target);
            // The original answers an unknown target with a general failure here.
            if ctx.hub.holder(ctx.space, &name).is_none() {
                return Answer::error(code::MSG_REJECT_GEN_FAIL, env);
            }
            relayed.push_str(&format!(r#","targetEasyrtcid":{},"msgType":{msg_type}{data}"#, json_str(target)));
            if let Some(room) = &room {
                let members = ctx.hub.members(ctx.space, &room_key(&login.app, room));
                if !members.iter().any(|m| m.name.as_ref() == Some(&name)) {
                    return Answer::error(code::MSG_REJECT_TARGET_ROOM, env);
                }
                relayed.push_str(&format!(r#","targetRoom":{}"#, json_str(room)));
            }
            // Quirk of `easyrtc`: groups are joined only by server code the
            // original's clients cannot reach, so no client is in one.
            if group.is_some() {
                return Answer::error(code::MSG_REJECT_TARGET_GROUP, env);
            }
            relayed.push('}');
            let Ok(payload) = Payload::parse(&relayed) else { return Answer::error(code::MSG_REJECT_GEN_FAIL, env) };
            let cmd = Command::Signal {
                to: Target::Name(name),
                kind: Name::from(event::MSG),
                payload,
                missing: Missing::Report,
                mark: None,
            };
            return match ctx.dispatch(cmd) {
                Ok(_) => Answer::done(),
                Err(e) => {
                    tracing::info!(error = %e, "easyrtc: message not relayed");
                    Answer::error(code::MSG_REJECT_GEN_FAIL, env)
                }
            };
        }
        if let Some(room) = room {
            relayed.push_str(&format!(r#","targetRoom":{},"msgType":{msg_type}{data}}}"#, json_str(&room)));
            let key = room_key(&login.app, &room);
            let members = ctx.hub.members(ctx.space, &key);
            if members.is_empty() {
                return Answer::error(code::MSG_REJECT_TARGET_ROOM, env);
            }
            // Nobody is in a group (see above): a room message limited to
            // one reaches nobody, and is acked.
            if group.is_some() {
                return Answer::done();
            }
            let Ok(payload) = Payload::parse(&relayed) else { return Answer::error(code::MSG_REJECT_GEN_FAIL, env) };
            let me_in_room = members.iter().any(|m| m.id == ctx.peer);
            if me_in_room {
                let cmd = Command::Broadcast { room: key, kind: Name::from(event::MSG), payload };
                if let Err(e) = ctx.dispatch(cmd) {
                    tracing::info!(error = %e, "easyrtc: room message not relayed");
                }
            } else {
                // The original lets a client write to a room it is not in.
                for m in members {
                    let cmd = Command::Signal {
                        to: Target::Id(m.id),
                        kind: Name::from(event::MSG),
                        payload: payload.clone(),
                        missing: Missing::Drop,
                        mark: None,
                    };
                    let _ = ctx.dispatch(cmd);
                }
            }
            return Answer::done();
        }
        if group.is_some() {
            return Answer::error(code::MSG_REJECT_TARGET_GROUP, env);
        }
        // Quirk of `easyrtc`: a message with no target is dropped and never
        // acked, as the original does.
        tracing::info!("easyrtc: message without a target dropped");
        Answer::default()
    }
}
