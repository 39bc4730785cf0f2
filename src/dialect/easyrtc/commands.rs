//! `easyrtcCmd`: signals relayed to a peer, room membership, ICE servers,
//! the room list, presence, `apiField`s, `setUserCfg`.

use serde_json::Value;
use serde_json::value::RawValue;

use super::check::{self, code, is_empty, value};
use super::{Answer, Env, Login, RELAYED, hub_name, presence_with, room_key, roster};
use crate::dialect::Ctx;
use crate::dialect::wire::{self, Fields, json_str};
use crate::hub::{Command, HubError, Missing, Name, Payload, Target};

impl Login {
    pub(super) fn cmd(&mut self, body: &str, ctx: &mut Ctx<'_>, env: &Env<'_>) -> Answer {
        let Some(fields) = check::message(body) else { return Answer::error(code::MSG_REJECT_BAD_STRUCTURE, env) };
        let Some(msg_type) = value(&fields, "msgType").and_then(|t| t.as_str().map(str::to_string)) else {
            return Answer::error(code::MSG_REJECT_BAD_TYPE, env);
        };
        if let Err(c) = check::cmd(&msg_type, &fields) {
            return Answer::error(c, env);
        }
        let data = value(&fields, "msgData").unwrap_or(Value::Null);
        let inner = |key: &str| {
            wire::fields(fields.get("msgData").map_or("null", |r| r.get()))
                .and_then(|d| d.get(key).map(|r| check::keys_in_order(r)))
                .unwrap_or_default()
        };
        match msg_type.as_str() {
            t if RELAYED.contains(&t) => self.relay_cmd(t, &fields, ctx, env),
            "roomJoin" => {
                let rooms = inner("roomJoin");
                for room in &rooms {
                    if let Err(e) = self.join(room, ctx, env) {
                        tracing::info!(error = %e, room, "easyrtc: room join refused");
                        return Answer::error(code::MSG_REJECT_BAD_ROOM, env);
                    }
                }
                let lists = self.room_lists(Some(&rooms), ctx);
                Answer::ack(format!(r#"{{"msgType":"roomData","msgData":{{"roomData":{lists}}}}}"#))
            }
            "roomLeave" => {
                let rooms = inner("roomLeave");
                for room in &rooms {
                    if self.profile.seats.iter().any(|s| &s.room == room) {
                        self.profile.seats.retain(|s| &s.room != room);
                        let _ = ctx.dispatch(Command::Leave { room: room_key(&self.app, room) });
                    }
                }
                let left = rooms
                    .iter()
                    .map(|r| (r.as_str(), format!(r#"{{"roomName":{},"roomStatus":"leave"}}"#, json_str(r))));
                Answer::ack(format!(r#"{{"msgType":"roomData","msgData":{{"roomData":{}}}}}"#, roster::room_map(left)))
            }
            "getIceConfig" => {
                let ice = env.ice.json_for(&self.profile.easyrtcid, env.wall);
                Answer::ack(format!(r#"{{"msgType":"iceConfig","msgData":{{"iceConfig":{{"iceServers":{ice}}}}}}}"#))
            }
            "getRoomList" => {
                let prefix = format!("{}/", self.app);
                let rooms = ctx.hub.rooms(ctx.space, &prefix);
                let list = rooms.iter().filter_map(|(key, n)| {
                    let room = key.strip_prefix(&prefix)?;
                    Some((room, format!(r#"{{"roomName":{},"numberClients":{n}}}"#, json_str(room))))
                });
                Answer::ack(format!(r#"{{"msgType":"roomList","msgData":{{"roomList":{}}}}}"#, roster::room_map(list)))
            }
            "setPresence" => {
                let set = data.get("setPresence").cloned().unwrap_or(Value::Null);
                self.profile.presence = presence_with(&self.profile.presence, &set);
                let rooms: Vec<String> = self.profile.seats.iter().map(|s| s.room.clone()).collect();
                for room in &rooms {
                    if let Err(e) = self.join(room, ctx, env) {
                        tracing::info!(error = %e, "easyrtc: presence not shown");
                    }
                }
                Answer::ack(self.deltas(&rooms))
            }
            "setRoomApiField" => {
                let set = data.get("setRoomApiField").cloned().unwrap_or(Value::Null);
                let room = set.get("roomName").and_then(Value::as_str).unwrap_or("").to_string();
                let field =
                    set.get("field").filter(|f| !is_empty(f)).and_then(|f| RawValue::from_string(f.to_string()).ok());
                let Some(seat) = self.profile.seats.iter_mut().find(|s| s.room == room) else {
                    return Answer::error(code::MSG_REJECT_BAD_ROOM, env);
                };
                seat.api_field = field;
                if let Err(e) = self.join(&room, ctx, env) {
                    tracing::info!(error = %e, "easyrtc: apiField not shown");
                    return Answer::error(code::MSG_REJECT_GEN_FAIL, env);
                }
                Answer::ack(self.deltas(std::slice::from_ref(&room)))
            }
            // Quirk of `easyrtc`: `setUserCfg` is checked and acked; the
            // original does nothing with it either.
            "setUserCfg" => Answer::done(),
            _ => Answer::error(code::MSG_REJECT_BAD_TYPE, env),
        }
    }

    /// `{"msgType":"roomData","msgData":{"roomData":{<room>:<updateClient delta>}}}`
    /// of this client for `rooms`.
    fn deltas(&self, rooms: &[String]) -> String {
        let profile = &self.profile;
        let deltas = rooms.iter().filter_map(|r| {
            let entry = profile.entry(r)?;
            Some((r.as_str(), roster::room_update(r, &profile.easyrtcid, &entry)))
        });
        format!(r#"{{"msgType":"roomData","msgData":{{"roomData":{}}}}}"#, roster::room_map(deltas))
    }

    fn relay_cmd(&self, msg_type: &str, fields: &Fields<'_>, ctx: &mut Ctx<'_>, env: &Env<'_>) -> Answer {
        let target = fields.get("targetEasyrtcid").and_then(|r| wire::as_str(r)).unwrap_or_default();
        let mut relayed = format!(r#"{{"senderEasyrtcid":{}"#, json_str(&self.profile.easyrtcid));
        if let Some(data) = fields.get("msgData") {
            relayed.push_str(&format!(r#","msgData":{}"#, data.get()));
        }
        relayed.push('}');
        let Ok(payload) = Payload::parse(&relayed) else { return Answer::error(code::MSG_REJECT_GEN_FAIL, env) };
        let to = Target::Name(hub_name(&self.app, &target));
        match ctx.dispatch(Command::Signal {
            to,
            kind: Name::from(msg_type),
            payload,
            missing: Missing::Report,
            mark: None,
        }) {
            Ok(_) => Answer::done(),
            Err(HubError::UnknownPeer(_)) => Answer::error(code::MSG_REJECT_TARGET_EASYRTCID, env),
            Err(e) => {
                tracing::info!(error = %e, "easyrtc: signal not relayed");
                Answer::error(code::MSG_REJECT_GEN_FAIL, env)
            }
        }
    }
}
