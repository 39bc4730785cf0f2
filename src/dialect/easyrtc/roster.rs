//! What others see of an EasyRTC client: its profile, kept in the hub as
//! the peer's room profile (so every node can list it), and the client
//! entries and `roomData` objects built from profiles. Pure.
//!
//! A profile is one JSON object per peer:
//! `{"easyrtcid","presence","username"?,"rooms":{<room>:{"roomJoinTime","apiField"?}}}`.
//! Room names in it are the client's (without the application prefix).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::dialect::wire::json_str;
use crate::hub::PeerInfo;

/// One room a client is in, as the client sees it.
#[derive(Clone, Debug)]
pub struct Seat {
    /// The room's name in the application.
    pub room: String,
    /// When the client joined it (ms since the epoch).
    pub joined: u64,
    /// Its `apiField` for this room, if set and not empty.
    pub api_field: Option<Box<RawValue>>,
}

/// What a client shows of itself.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Its id.
    pub easyrtcid: String,
    /// `presence`, as JSON (`{"show":"chat","status":null}` at first).
    pub presence: String,
    /// `username`, if it gave a non-empty one.
    pub username: Option<String>,
    /// Its rooms, in join order.
    pub seats: Vec<Seat>,
}

#[derive(Deserialize)]
struct StoredSeat {
    #[serde(rename = "roomJoinTime")]
    joined: u64,
    #[serde(rename = "apiField", default)]
    api_field: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Stored {
    easyrtcid: String,
    presence: Box<RawValue>,
    #[serde(default)]
    username: Option<String>,
    rooms: HashMap<String, StoredSeat>,
}

impl Profile {
    /// The hub profile text.
    pub fn to_json(&self) -> String {
        let mut out = format!(r#"{{"easyrtcid":{},"presence":{}"#, json_str(&self.easyrtcid), self.presence);
        if let Some(u) = &self.username {
            out.push_str(&format!(r#","username":{}"#, json_str(u)));
        }
        out.push_str(r#","rooms":{"#);
        for (i, seat) in self.seats.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(r#"{}:{{"roomJoinTime":{}"#, json_str(&seat.room), seat.joined));
            if let Some(f) = &seat.api_field {
                out.push_str(&format!(r#","apiField":{}"#, f.get()));
            }
            out.push('}');
        }
        out.push_str("}}");
        out
    }

    /// The client entry for `room` (`clientList` and `updateClient`):
    /// `{"easyrtcid","roomJoinTime","presence","apiField"?,"username"?}`.
    pub fn entry(&self, room: &str) -> Option<String> {
        let seat = self.seats.iter().find(|s| s.room == room)?;
        Some(entry(&self.easyrtcid, seat.joined, &self.presence, seat.api_field.as_deref(), self.username.as_deref()))
    }
}

fn entry(id: &str, joined: u64, presence: &str, api_field: Option<&RawValue>, username: Option<&str>) -> String {
    let mut out = format!(r#"{{"easyrtcid":{},"roomJoinTime":{joined},"presence":{presence}"#, json_str(id));
    if let Some(f) = api_field {
        out.push_str(&format!(r#","apiField":{}"#, f.get()));
    }
    if let Some(u) = username {
        out.push_str(&format!(r#","username":{}"#, json_str(u)));
    }
    out.push('}');
    out
}

/// The client entry for `room` of a peer as the hub lists it.
pub fn entry_of(peer: &PeerInfo, room: &str) -> Option<(String, String)> {
    let stored: Stored = serde_json::from_str(peer.info.as_ref()?.get()).ok()?;
    let seat = stored.rooms.get(room)?;
    let text = entry(
        &stored.easyrtcid,
        seat.joined,
        stored.presence.get(),
        seat.api_field.as_deref(),
        stored.username.as_deref(),
    );
    Some((stored.easyrtcid, text))
}

/// `{"roomName","roomStatus":"join","clientList":{<id>:<entry>,...}}`.
pub fn room_join(room: &str, members: &[PeerInfo]) -> String {
    let list: Vec<String> = members
        .iter()
        .filter_map(|m| entry_of(m, room))
        .map(|(id, entry)| format!("{}:{entry}", json_str(&id)))
        .collect();
    format!(r#"{{"roomName":{},"roomStatus":"join","clientList":{{{}}}}}"#, json_str(room), list.join(","))
}

/// `{"roomName","roomStatus":"update","clientListDelta":{"updateClient":{<id>:<entry>}}}`.
pub fn room_update(room: &str, id: &str, entry: &str) -> String {
    format!(
        r#"{{"roomName":{r},"roomStatus":"update","clientListDelta":{{"updateClient":{{{i}:{entry}}}}}}}"#,
        r = json_str(room),
        i = json_str(id)
    )
}

/// `{"roomName","roomStatus":"update","clientListDelta":{"removeClient":{<id>:{"easyrtcid"}}}}`.
pub fn room_remove(room: &str, id: &str) -> String {
    format!(
        r#"{{"roomName":{r},"roomStatus":"update","clientListDelta":{{"removeClient":{{{i}:{{"easyrtcid":{i}}}}}}}}}"#,
        r = json_str(room),
        i = json_str(id)
    )
}

/// `{<room>:<roomObject>,...}` from pairs.
pub fn room_map<'a>(rooms: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let items: Vec<String> = rooms.into_iter().map(|(r, obj)| format!("{}:{obj}", json_str(r))).collect();
    format!("{{{}}}", items.join(","))
}
