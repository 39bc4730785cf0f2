//! Wire transcripts of the `easyrtc` dialect (docs/dialects/easyrtc.md,
//! protocols.md section 1.3) over real sockets, with raw Engine.IO v3
//! packets (socket.io 1.x's wire): long-polling, a polling session upgraded
//! to websocket, and websocket only. Times (`serverTime`, `roomJoinTime`)
//! are masked to 0 and easyrtcids to the peer's label before comparing.

mod common;
mod eio;

use std::collections::VecDeque;
use std::net::SocketAddr;

use common::TestServer;
use eio::v3::{Polling3, Sock3, Ws3, http_bytes};
use serde_json::value::RawValue;
use switchboard::Config;
use switchboard::dialect::DialectKind;
use switchboard::ice::{IceConfig, IceServer};

const OFFER: &str = r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
const ANSWER: &str = r#"{"type":"answer","sdp":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}"#;
const CAND: &str =
    r#"{"type":"candidate","label":0,"id":"0","candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"}"#;
const ACK: &str = r#"{"msgType":"ack"}"#;

fn config() -> Config {
    let mut config = Config::single(DialectKind::Easyrtc, "127.0.0.1:0".parse().unwrap());
    config.ice = IceConfig {
        fixed: vec![IceServer { urls: vec!["stun:stun.example.org:3478".into()], username: None, credential: None }],
        minted: None,
    };
    config
}

async fn server() -> TestServer {
    TestServer::start(config()).await
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Polling,
    Upgraded,
    Websocket,
}

/// Replaces the digits after `"key":` with 0.
fn zero(text: &str, key: &str) -> String {
    let pat = format!("\"{key}\":");
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(&pat) {
        out.push_str(&rest[..i + pat.len()]);
        rest = &rest[i + pat.len()..];
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits > 0 {
            out.push('0');
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

/// One socket.io 1.x client speaking EasyRTC.
struct Peer {
    sock: Sock3,
    /// Its easyrtcid once logged in.
    id: String,
    acks: u64,
    /// Packets read while waiting for something else.
    held: VecDeque<String>,
}

impl Peer {
    async fn open(addr: SocketAddr, mode: Mode) -> Peer {
        let sock = match mode {
            Mode::Polling | Mode::Upgraded => {
                let (mut p, open) = Polling3::open(addr).await;
                assert!(open.contains(r#""pingInterval":25000,"pingTimeout":60000"#), "{open}");
                assert_eq!(p.next().await, "40", "socket.io 1.x: the server connects the main namespace");
                Sock3::Polling(p)
            }
            Mode::Websocket => {
                let (mut w, open) = Ws3::open(addr).await;
                assert!(open.starts_with("0{"), "{open}");
                assert_eq!(w.next().await, "40");
                Sock3::Ws(Box::new(w))
            }
        };
        Peer { sock, id: String::new(), acks: 0, held: VecDeque::new() }
    }

    /// Opens and logs in to `app`, with `extra` fields in `msgData` (a
    /// leading comma each); returns the peer and the `token` ack.
    async fn login(addr: SocketAddr, mode: Mode, app: &str, extra: &str) -> (Peer, String) {
        let mut p = Peer::open(addr, mode).await;
        let token = p.request("easyrtcAuth", &auth(app, extra)).await;
        let parsed: serde_json::Value = serde_json::from_str(&token).expect("token JSON");
        p.id = parsed["msgData"]["easyrtcid"].as_str().expect("an easyrtcid").to_string();
        if let (Mode::Upgraded, Sock3::Polling(poll)) = (mode, &mut p.sock) {
            let poll = std::mem::replace(poll, Polling3::open(addr).await.0);
            p.sock = Sock3::Ws(Box::new(poll.upgrade().await));
        }
        (p, token)
    }

    async fn read(&mut self) -> String {
        match self.held.pop_front() {
            Some(p) => p,
            None => self.sock.next().await,
        }
    }

    /// Emits `event` with `arg` and an ack id; returns the ack's argument.
    async fn request(&mut self, event: &str, arg: &str) -> String {
        self.acks += 1;
        let id = self.acks;
        self.sock.send(&format!(r#"42{id}["{event}",{arg}]"#)).await;
        let want = format!("43{id}[");
        let mut skipped = Vec::new();
        loop {
            let p = self.sock.next().await;
            if let Some(body) = p.strip_prefix(&want) {
                self.held.extend(skipped);
                return body.strip_suffix(']').expect("ack array").to_string();
            }
            skipped.push(p);
        }
    }

    /// The next event the server pushes: its name and argument. It must
    /// carry an ack id, which is answered as the client does.
    async fn push(&mut self) -> (String, String) {
        let p = self.read().await;
        let rest = p.strip_prefix("42").unwrap_or_else(|| panic!("an event packet, got {p}"));
        let digits = rest.find('[').expect("event array");
        assert!(digits > 0, "pushed events carry an ack id: {p}");
        let (ack, array) = rest.split_at(digits);
        let items: Vec<&RawValue> = serde_json::from_str(array).expect("event JSON");
        self.sock.send(&format!("43{ack}[{ACK}]")).await;
        let name: String = serde_json::from_str(items[0].get()).expect("event name");
        (name, items[1].get().to_string())
    }

    /// The next pushed event, masked with `who` (label, peer id) pairs.
    async fn push_masked(&mut self, who: &[(&str, String)]) -> (String, String) {
        let (name, arg) = self.push().await;
        (name, mask(&arg, who))
    }
}

fn auth(app: &str, extra: &str) -> String {
    format!(
        r#"{{"msgType":"authenticate","msgData":{{"apiVersion":"1.1.0","applicationName":"{app}","setUserCfg":{{"sharingAudio":true}}{extra}}}}}"#
    )
}

fn mask(text: &str, who: &[(&str, String)]) -> String {
    let mut out = zero(&zero(text, "serverTime"), "roomJoinTime");
    for (label, id) in who {
        out = out.replace(id.as_str(), label);
    }
    out
}

fn entry(id: &str) -> String {
    format!(r#""{id}":{{"easyrtcid":"{id}","roomJoinTime":0,"presence":{{"show":"chat","status":null}}}}"#)
}

#[tokio::test]
async fn login_by_polling_gets_the_token_with_room_list_and_the_servers_ice_servers() {
    let srv = server().await;
    let (a, token) = Peer::login(srv.addr(0), Mode::Polling, "demo.chat", "").await;
    assert_eq!(a.id.len(), 16, "a 16-character id like the original's");
    assert!(a.id.chars().all(|c| c.is_ascii_alphanumeric()), "{}", a.id);
    assert_eq!(
        mask(&token, &[("A", a.id.clone())]),
        format!(
            r#"{{"msgType":"token","msgData":{{"roomData":{{"default":{{"roomName":"default","roomStatus":"join","clientList":{{{}}}}}}},"application":{{"applicationName":"demo.chat"}},"easyrtcid":"A","iceConfig":{{"iceServers":[{{"urls":["stun:stun.example.org:3478"]}}]}},"serverTime":0}}}}"#,
            entry("A")
        )
    );
}

#[tokio::test]
async fn a_newcomer_sees_the_room_and_members_get_update_and_remove_deltas() {
    for mode in [Mode::Polling, Mode::Upgraded, Mode::Websocket] {
        let srv = server().await;
        let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
        let (b, token) = Peer::login(srv.addr(0), mode, "app", r#","username":"Bob""#).await;
        let who = [("A", a.id.clone()), ("B", b.id.clone())];
        let bob = r#""B":{"easyrtcid":"B","roomJoinTime":0,"presence":{"show":"chat","status":null},"username":"Bob"}"#;
        assert!(
            mask(&token, &who).contains(&format!(r#""clientList":{{{},{bob}}}"#, entry("A"))),
            "{mode:?}: the list holds both, in join order: {token}"
        );
        let (name, delta) = a.push_masked(&who).await;
        assert_eq!(name, "easyrtcCmd");
        assert_eq!(
            delta,
            format!(
                r#"{{"msgData":{{"roomData":{{"default":{{"roomName":"default","roomStatus":"update","clientListDelta":{{"updateClient":{{{bob}}}}}}}}}}},"easyrtcid":"A","msgType":"roomData","serverTime":0}}"#
            ),
            "{mode:?}"
        );
        let b_id = b.id.clone();
        match b.sock {
            Sock3::Ws(w) => w.close().await,
            // A polling client that goes away is noticed by its ping timeout;
            // close it by upgrading and closing.
            Sock3::Polling(p) => p.upgrade().await.close().await,
        }
        let (name, delta) = a.push().await;
        assert_eq!(name, "easyrtcCmd");
        assert_eq!(
            zero(&delta, "serverTime").replace(&b_id, "B").replace(&a.id, "A"),
            r#"{"msgData":{"roomData":{"default":{"roomName":"default","roomStatus":"update","clientListDelta":{"removeClient":{"B":{"easyrtcid":"B"}}}}}},"easyrtcid":"A","msgType":"roomData","serverTime":0}"#,
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn each_application_has_its_own_default_room_and_ids() {
    let srv = server().await;
    let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "one", "").await;
    let (b, token) = Peer::login(srv.addr(0), Mode::Websocket, "two", "").await;
    assert!(mask(&token, &[("B", b.id.clone())]).contains(&format!(r#""clientList":{{{}}}"#, entry("B"))), "{token}");
    let offer = format!(r#"{{"msgType":"offer","targetEasyrtcid":"{}","msgData":{OFFER}}}"#, b.id);
    assert_eq!(
        zero(&a.request("easyrtcCmd", &offer).await, "serverTime"),
        r#"{"msgType":"error","serverTime":0,"msgData":{"errorCode":"MSG_REJECT_TARGET_EASYRTCID","errorText":"Message rejected. Target easyrtcid is invalid, not using same application, or no longer online."}}"#,
        "another application's client cannot be reached"
    );
}

#[tokio::test]
async fn signals_are_relayed_with_the_senders_id_and_acked() {
    for mode in [Mode::Polling, Mode::Websocket] {
        let srv = server().await;
        let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
        let (mut b, _) = Peer::login(srv.addr(0), mode, "app", "").await;
        a.push().await; // b's arrival
        let who = [("A", a.id.clone()), ("B", b.id.clone())];
        for (ty, data) in [("offer", Some(OFFER)), ("answer", Some(ANSWER)), ("candidate", Some(CAND))] {
            let data = data.expect("data");
            let msg = format!(r#"{{"msgType":"{ty}","targetEasyrtcid":"{}","msgData":{data}}}"#, b.id);
            assert_eq!(a.request("easyrtcCmd", &msg).await, ACK, "{mode:?} {ty}");
            let (name, relayed) = b.push_masked(&who).await;
            assert_eq!(name, "easyrtcCmd");
            assert_eq!(
                relayed,
                format!(
                    r#"{{"senderEasyrtcid":"A","msgData":{data},"easyrtcid":"B","msgType":"{ty}","serverTime":0}}"#
                ),
                "{mode:?} {ty}"
            );
        }
        for ty in ["reject", "hangup"] {
            let msg = format!(r#"{{"msgType":"{ty}","targetEasyrtcid":"{}"}}"#, a.id);
            assert_eq!(b.request("easyrtcCmd", &msg).await, ACK);
            let (_, relayed) = a.push_masked(&who).await;
            assert_eq!(
                relayed,
                format!(r#"{{"senderEasyrtcid":"B","easyrtcid":"A","msgType":"{ty}","serverTime":0}}"#)
            );
        }
    }
}

fn error(code: &str, text: &str) -> String {
    format!(r#"{{"msgType":"error","serverTime":0,"msgData":{{"errorCode":"{code}","errorText":"{text}"}}}}"#)
}

#[tokio::test]
async fn commands_with_bad_structure_or_unknown_targets_get_the_documented_error_acks() {
    let srv = server().await;
    let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
    let bad_data = ("MSG_REJECT_BAD_DATA", "Message rejected. The provided msgData is improper.");
    let bad_structure = ("MSG_REJECT_BAD_STRUCTURE", "Message rejected. The provided structure is improper.");
    let bad_type = ("MSG_REJECT_BAD_TYPE", "Message rejected. The provided msgType is unsupported.");
    let target = (
        "MSG_REJECT_TARGET_EASYRTCID",
        "Message rejected. Target easyrtcid is invalid, not using same application, or no longer online.",
    );
    let cases = [
        (r#"{"msgType":"offer","targetEasyrtcid":"nobody"}"#.to_string(), bad_data),
        (r#"{"msgType":"offer","targetEasyrtcid":"x","msgData":{}}"#.to_string(), bad_data),
        (format!(r#"{{"msgType":"offer","msgData":{OFFER}}}"#), bad_structure),
        (format!(r#"{{"msgType":"offer","targetEasyrtcid":"no/slash","msgData":{OFFER}}}"#), bad_structure),
        (r#"{"msgType":"hangup","targetEasyrtcid":"x","msgData":null}"#.to_string(), bad_data),
        (format!(r#"{{"msgType":"offer","targetEasyrtcid":"nobody","msgData":{OFFER}}}"#), target),
        (r#"{"msgType":"reject","targetEasyrtcid":"nobody"}"#.to_string(), target),
        (r#"{"msgType":"teleport"}"#.to_string(), bad_type),
        (r#"{"msgType":7}"#.to_string(), bad_type),
        (r#""just text""#.to_string(), bad_structure),
        (r#"{"msgType":"roomJoin","msgData":{"roomJoin":{"a b":{"roomName":"a b"}}}}"#.to_string(), bad_structure),
        (r#"{"msgType":"roomJoin","msgData":{"roomJoin":{"x":{"roomName":"y"}}}}"#.to_string(), bad_structure),
        (r#"{"msgType":"setPresence","msgData":{"setPresence":{"show":"asleep"}}}"#.to_string(), bad_structure),
        (r#"{"msgType":"getRoomList","msgData":{}}"#.to_string(), bad_data),
        (r#"{"msgType":"setUserCfg","msgData":{"setUserCfg":{}}}"#.to_string(), bad_structure),
    ];
    for (msg, (code, text)) in cases {
        assert_eq!(zero(&a.request("easyrtcCmd", &msg).await, "serverTime"), error(code, text), "{msg}");
    }
    // Still logged in and served.
    assert_eq!(
        a.request("easyrtcCmd", r#"{"msgType":"setUserCfg","msgData":{"setUserCfg":{"p2pList":{"x":{}}}}}"#).await,
        ACK
    );
}

#[tokio::test]
async fn a_bad_login_gets_the_documented_error_then_a_disconnect() {
    let bad_auth = ("LOGIN_BAD_AUTH", "Authentication for application failed. Socket will be disconnected.");
    let bad_login = (
        "LOGIN_BAD_STRUCTURE",
        "Authentication for application failed. The provided structure is improper. Socket will be disconnected.",
    );
    let bad_structure = ("MSG_REJECT_BAD_STRUCTURE", "Message rejected. The provided structure is improper.");
    let cases = [
        (r#"{"msgType":"login","msgData":{"apiVersion":"1.1.0"}}"#, bad_auth),
        (r#"[1,2]"#, bad_auth),
        (r#"{"msgType":"authenticate","msgData":{}}"#, bad_login),
        (r#"{"msgType":"authenticate","msgData":{"apiVersion":"1.1.0","roomJoin":"lobby"}}"#, bad_login),
        (r#"{"msgType":"authenticate","msgData":{"apiVersion":"1.1.0","applicationName":"no spaces"}}"#, bad_structure),
        (
            r#"{"msgType":"authenticate","msgData":{"apiVersion":"1.1.0","roomJoin":{"r":{"roomName":"s"}}}}"#,
            bad_structure,
        ),
        (r#"{"msgType":"authenticate","msgData":{"apiVersion":"1.1.0","credential":{}}}"#, bad_structure),
    ];
    let srv = server().await;
    for (msg, (code, text)) in cases {
        let (mut w, _) = Ws3::open(srv.addr(0)).await;
        assert_eq!(w.next().await, "40");
        w.send(&format!(r#"421["easyrtcAuth",{msg}]"#)).await;
        let first = w.next().await;
        assert_eq!(zero(&first, "serverTime"), format!("431[{}]", error(code, text)), "{msg}");
        let second = w.next().await;
        // socket.io's disconnect of the namespace ("io server disconnect":
        // the client does not reconnect and closes its transport).
        assert_eq!(second, "41", "{msg}");
        // Whatever it sends next is not handled.
        w.send(r#"422["easyrtcCmd",{"msgType":"getRoomList"}]"#).await;
        w.send("2").await;
        let next = w.next().await;
        assert!(next == "3" || next == "1", "only Engine.IO answers: {next}");
    }
    // Without an ack id: disconnected at once.
    let (mut w, _) = Ws3::open(srv.addr(0)).await;
    assert_eq!(w.next().await, "40");
    w.send(&format!(r#"42["easyrtcAuth",{}]"#, auth("app", ""))).await;
    assert_eq!(w.next().await, "41");
}

#[tokio::test]
async fn commands_before_login_or_without_ack_are_ignored_and_a_second_login_is_refused() {
    let srv = server().await;
    let (mut w, _) = Ws3::open(srv.addr(0)).await;
    assert_eq!(w.next().await, "40");
    w.send(r#"421["easyrtcCmd",{"msgType":"getRoomList"}]"#).await;
    w.send(r#"422["easyrtcMsg",{"msgType":"hi","targetRoom":"default"}]"#).await;
    w.send(&format!(r#"423["easyrtcAuth",{}]"#, auth("app", ""))).await;
    let next = w.next().await;
    assert!(next.starts_with(r#"433[{"msgType":"token""#), "the first answer is the login's: {next}");
    w.send(r#"42["easyrtcCmd",{"msgType":"getRoomList"}]"#).await;
    w.send(r#"424["easyrtcCmd",{"msgType":"getRoomList"}]"#).await;
    assert_eq!(
        w.next().await,
        r#"434[{"msgType":"roomList","msgData":{"roomList":{"default":{"roomName":"default","numberClients":1}}}}]"#
    );
    // A second login on the same socket is refused, and the socket dropped.
    w.send(&format!(r#"425["easyrtcAuth",{}]"#, auth("app", ""))).await;
    assert_eq!(
        zero(&w.next().await, "serverTime"),
        format!(
            "435[{}]",
            error("LOGIN_APP_AUTH_FAIL", "Authentication for application failed. Socket will be disconnected.")
        )
    );
    assert_eq!(w.next().await, "41");
}

#[tokio::test]
async fn rooms_join_and_leave_with_lists_acks_and_deltas() {
    let srv = server().await;
    let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
    let (mut b, _) = Peer::login(
        srv.addr(0),
        Mode::Websocket,
        "app",
        r#","roomJoin":{"lobby":{"roomName":"lobby"},"games":{"roomName":"games"}}"#,
    )
    .await;
    let who = [("A", a.id.clone()), ("B", b.id.clone())];
    let join = r#"{"msgType":"roomJoin","msgData":{"roomJoin":{"lobby":{"roomName":"lobby"}}}}"#;
    assert_eq!(
        mask(&a.request("easyrtcCmd", join).await, &who),
        format!(
            r#"{{"msgType":"roomData","msgData":{{"roomData":{{"lobby":{{"roomName":"lobby","roomStatus":"join","clientList":{{{},{}}}}}}}}}}}"#,
            entry("B"),
            entry("A")
        )
    );
    let (_, delta) = b.push_masked(&who).await;
    assert_eq!(
        delta,
        format!(
            r#"{{"msgData":{{"roomData":{{"lobby":{{"roomName":"lobby","roomStatus":"update","clientListDelta":{{"updateClient":{{{}}}}}}}}}}},"easyrtcid":"B","msgType":"roomData","serverTime":0}}"#,
            entry("A")
        )
    );
    assert_eq!(
        a.request("easyrtcCmd", r#"{"msgType":"getRoomList"}"#).await,
        r#"{"msgType":"roomList","msgData":{"roomList":{"default":{"roomName":"default","numberClients":1},"games":{"roomName":"games","numberClients":1},"lobby":{"roomName":"lobby","numberClients":2}}}}"#
    );
    let leave = r#"{"msgType":"roomLeave","msgData":{"roomLeave":{"lobby":{"roomName":"lobby"}}}}"#;
    assert_eq!(
        a.request("easyrtcCmd", leave).await,
        r#"{"msgType":"roomData","msgData":{"roomData":{"lobby":{"roomName":"lobby","roomStatus":"leave"}}}}"#
    );
    let (_, delta) = b.push_masked(&who).await;
    assert_eq!(
        delta,
        r#"{"msgData":{"roomData":{"lobby":{"roomName":"lobby","roomStatus":"update","clientListDelta":{"removeClient":{"A":{"easyrtcid":"A"}}}}}},"easyrtcid":"B","msgType":"roomData","serverTime":0}"#
    );
    assert_eq!(
        a.request("easyrtcCmd", r#"{"msgType":"getIceConfig"}"#).await,
        r#"{"msgType":"iceConfig","msgData":{"iceConfig":{"iceServers":[{"urls":["stun:stun.example.org:3478"]}]}}}"#
    );
}

#[tokio::test]
async fn presence_and_api_fields_are_acked_and_pushed_to_room_members() {
    let srv = server().await;
    let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
    let (mut b, _) =
        Peer::login(srv.addr(0), Mode::Websocket, "app", r#","setPresence":{"show":"away","status":"lunch"}"#).await;
    let who = [("A", a.id.clone()), ("B", b.id.clone())];
    let away = r#""B":{"easyrtcid":"B","roomJoinTime":0,"presence":{"show":"away","status":"lunch"}}"#;
    let (_, delta) = a.push_masked(&who).await;
    assert!(delta.contains(away), "login presence shown: {delta}");
    let set = r#"{"msgType":"setPresence","msgData":{"setPresence":{"show":"dnd"}}}"#;
    let dnd = r#"{"roomName":"default","roomStatus":"update","clientListDelta":{"updateClient":{"B":{"easyrtcid":"B","roomJoinTime":0,"presence":{"show":"dnd","status":"lunch"}}}}}"#;
    assert_eq!(
        mask(&b.request("easyrtcCmd", set).await, &who),
        format!(r#"{{"msgType":"roomData","msgData":{{"roomData":{{"default":{dnd}}}}}}}"#)
    );
    assert_eq!(
        a.push_masked(&who).await.1,
        format!(
            r#"{{"msgData":{{"roomData":{{"default":{dnd}}}}},"easyrtcid":"A","msgType":"roomData","serverTime":0}}"#
        )
    );
    let field = r#"{"mediaIds":{"fieldName":"mediaIds","fieldValue":{"default":"abc"}}}"#;
    let set = format!(
        r#"{{"msgType":"setRoomApiField","msgData":{{"setRoomApiField":{{"roomName":"default","field":{field}}}}}}}"#
    );
    let with_field = format!(
        r#"{{"roomName":"default","roomStatus":"update","clientListDelta":{{"updateClient":{{"B":{{"easyrtcid":"B","roomJoinTime":0,"presence":{{"show":"dnd","status":"lunch"}},"apiField":{field}}}}}}}}}"#
    );
    assert_eq!(
        mask(&b.request("easyrtcCmd", &set).await, &who),
        format!(r#"{{"msgType":"roomData","msgData":{{"roomData":{{"default":{with_field}}}}}}}"#)
    );
    assert_eq!(
        a.push_masked(&who).await.1,
        format!(
            r#"{{"msgData":{{"roomData":{{"default":{with_field}}}}},"easyrtcid":"A","msgType":"roomData","serverTime":0}}"#
        )
    );
    let elsewhere = r#"{"msgType":"setRoomApiField","msgData":{"setRoomApiField":{"roomName":"lobby","field":{}}}}"#;
    assert_eq!(
        zero(&b.request("easyrtcCmd", elsewhere).await, "serverTime"),
        error("MSG_REJECT_BAD_ROOM", "Message rejected. Requested room is invalid or does not exist.")
    );
    // A newcomer's list shows both, with B's field.
    let (c, token) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
    let token = mask(&token, &[("A", a.id.clone()), ("B", b.id.clone()), ("C", c.id.clone())]);
    assert!(token.contains(&format!(r#""apiField":{field}"#)), "{token}");
}

#[tokio::test]
async fn messages_reach_a_peer_a_room_or_nobody_in_a_group() {
    let srv = server().await;
    let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
    let (mut b, _) = Peer::login(srv.addr(0), Mode::Polling, "app", "").await;
    a.push().await;
    let who = [("A", a.id.clone()), ("B", b.id.clone())];
    let to_b = format!(r#"{{"msgType":"chat","msgData":"héllo ✓","targetEasyrtcid":"{}"}}"#, b.id);
    assert_eq!(a.request("easyrtcMsg", &to_b).await, ACK);
    assert_eq!(
        b.push_masked(&who).await,
        (
            "easyrtcMsg".to_string(),
            r#"{"senderEasyrtcid":"A","targetEasyrtcid":"B","msgType":"chat","msgData":"héllo ✓","easyrtcid":"B","serverTime":0}"#.to_string()
        )
    );
    let to_room = r#"{"msgType":"chat","msgData":{"text":"für alle ✓"},"targetRoom":"default"}"#;
    assert_eq!(b.request("easyrtcMsg", to_room).await, ACK);
    assert_eq!(
        a.push_masked(&who).await.1,
        r#"{"senderEasyrtcid":"B","targetRoom":"default","msgType":"chat","msgData":{"text":"für alle ✓"},"easyrtcid":"A","serverTime":0}"#
    );
    let in_room = format!(r#"{{"msgType":"chat","targetEasyrtcid":"{}","targetRoom":"default"}}"#, b.id);
    assert_eq!(a.request("easyrtcMsg", &in_room).await, ACK);
    assert_eq!(
        b.push_masked(&who).await.1,
        r#"{"senderEasyrtcid":"A","targetEasyrtcid":"B","msgType":"chat","targetRoom":"default","easyrtcid":"B","serverTime":0}"#
    );
    let errors = [
        (format!(r#"{{"msgType":"chat","targetEasyrtcid":"{}"}}"#, a.id), "MSG_REJECT_TARGET_EASYRTCID"),
        (r#"{"msgType":"chat","targetEasyrtcid":"nobody"}"#.to_string(), "MSG_REJECT_GEN_FAIL"),
        (r#"{"msgType":"chat","targetEasyrtcid":"bad id"}"#.to_string(), "MSG_REJECT_TARGET_EASYRTCID"),
        (r#"{"msgType":"chat","targetRoom":"empty"}"#.to_string(), "MSG_REJECT_TARGET_ROOM"),
        (
            format!(r#"{{"msgType":"chat","targetEasyrtcid":"{}","targetRoom":"other"}}"#, b.id),
            "MSG_REJECT_TARGET_ROOM",
        ),
        (r#"{"msgType":"chat","targetGroup":"admins"}"#.to_string(), "MSG_REJECT_TARGET_GROUP"),
        (r#"{"msgData":"no type","targetRoom":"default"}"#.to_string(), "MSG_REJECT_BAD_TYPE"),
    ];
    for (msg, code) in errors {
        let ack = a.request("easyrtcMsg", &msg).await;
        assert!(ack.contains(&format!(r#""errorCode":"{code}""#)), "{msg}: {ack}");
    }
    // A room message limited to a group reaches nobody (no client is in one), acked.
    let grouped = r#"{"msgType":"chat","targetRoom":"default","targetGroup":"admins"}"#;
    assert_eq!(a.request("easyrtcMsg", grouped).await, ACK);
    // Nothing else reached b: the next thing it sees is this.
    assert_eq!(a.request("easyrtcMsg", &to_b).await, ACK);
    assert!(b.push().await.1.contains("héllo"), "no stray deliveries");
}

#[tokio::test]
async fn oversize_arguments_are_refused_and_oversize_packets_close_the_socket() {
    let srv = server().await;
    let (mut a, _) = Peer::login(srv.addr(0), Mode::Websocket, "app", "").await;
    let big = "x".repeat(switchboard::dialect::easyrtc::MAX_ITEM);
    let msg = format!(r#"{{"msgType":"chat","msgData":"{big}","targetRoom":"default"}}"#);
    assert_eq!(
        zero(&a.request("easyrtcMsg", &msg).await, "serverTime"),
        error("MSG_REJECT_BAD_SIZE", "Message rejected. Packet size is too large.")
    );
    let Sock3::Ws(mut w) = a.sock else { unreachable!() };
    let huge = "y".repeat(switchboard::transport::easyrtc_io::MAX_PAYLOAD as usize + 10);
    w.send(&format!(r#"429["easyrtcMsg",{{"msgType":"chat","msgData":"{huge}"}}]"#)).await;
    let seen = w.until_closed().await;
    assert!(seen.iter().all(|p| !p.starts_with("439")), "{seen:?}");
}

#[tokio::test]
async fn each_socketio_listener_speaks_only_its_engineio_version() {
    let srv = server().await;
    let (status, body) = http_bytes(srv.addr(0), "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (400, r#"{"code":5,"message":"Unsupported protocol version"}"#)
    );
    let offers = TestServer::start(Config::single(DialectKind::Offers, "127.0.0.1:0".parse().unwrap())).await;
    let (status, _) = http_bytes(offers.addr(0), "GET", "/socket.io/?EIO=3&transport=polling", b"").await;
    assert_eq!(status, 400, "the offers listener is socket.io 4 only");
}

#[tokio::test]
async fn polling_from_another_origin_is_answered_as_engineio_1x_does() {
    let srv = server().await;
    let origin = "Origin: http://app.example:3000\r\n";
    let (status, head) = eio::v3::http_head(srv.addr(0), "GET", "/socket.io/?EIO=3&transport=polling", origin).await;
    assert_eq!(status, 200);
    assert!(head.contains("access-control-allow-origin: http://app.example:3000"), "{head}");
    assert!(head.contains("access-control-allow-credentials: true"), "{head}");
    let (status, head) =
        eio::v3::http_head(srv.addr(0), "OPTIONS", "/socket.io/?EIO=3&transport=polling", origin).await;
    assert_eq!(status, 200, "the preflight is answered");
    assert!(head.contains("access-control-allow-headers: content-type"), "{head}");
}

#[tokio::test]
async fn the_client_api_and_socketio_bundle_come_from_the_app_or_flags() {
    let dir = common::temp_dir("easyrtc-files");
    let api = dir.join("node_modules/easyrtc/api");
    std::fs::create_dir_all(api.join("img")).expect("api dir");
    std::fs::write(api.join("easyrtc.js"), "var easyrtc = {};").expect("easyrtc.js");
    std::fs::write(api.join("img/x.png"), [137u8, 80, 78, 71]).expect("png");
    let sio = dir.join("node_modules/socket.io-client");
    std::fs::create_dir_all(sio.join("dist")).expect("sio dir");
    std::fs::write(sio.join("package.json"), r#"{"name":"socket.io-client","version":"1.7.4"}"#).expect("pkg");
    std::fs::write(sio.join("dist/socket.io.js"), "/* io 1 */").expect("bundle");
    std::fs::write(dir.join("index.html"), "<html>app</html>").expect("index");
    let mut cfg = config();
    cfg.listeners[0].static_dir = Some(dir.clone());
    let srv = TestServer::start(cfg).await;
    assert_eq!(common::http_get(srv.addr(0), "/easyrtc/easyrtc.js").await, (200, "var easyrtc = {};".to_string()));
    assert_eq!(common::http_get(srv.addr(0), "/socket.io/socket.io.js").await, (200, "/* io 1 */".to_string()));
    assert_eq!(common::http_get(srv.addr(0), "/").await.0, 200);
    assert_eq!(common::http_get(srv.addr(0), "/easyrtc/../index.html").await.0, 404);
    assert_eq!(common::http_get(srv.addr(0), "/easyrtc/missing.js").await.0, 404);

    // A socket.io 4 client is not taken; nothing found: a 404 that says what to do.
    std::fs::write(sio.join("package.json"), r#"{"name":"socket.io-client","version":"4.8.1"}"#).expect("pkg");
    let (status, body) = common::http_get(srv.addr(0), "/socket.io/socket.io.js").await;
    assert_eq!(status, 404);
    assert!(body.contains("npm install socket.io-client@1") && body.contains("--socketio1-client"), "{body}");
    let bare = server().await;
    let (status, body) = common::http_get(bare.addr(0), "/easyrtc/easyrtc.js").await;
    assert_eq!(status, 404);
    assert!(body.contains("npm install easyrtc@1.1.0") && body.contains("--easyrtc-api"), "{body}");
}

// Authentication: the token rides in the handshake's query (`access_token`),
// where EasyRTC's `setSocketUrl(url, {query})` puts it.

async fn auth_server() -> TestServer {
    let mut cfg = config();
    common::auth::on(&mut cfg);
    TestServer::start(cfg).await
}

/// Opens a polling session with `query` appended; the first socket.io packet.
async fn first_packet(addr: SocketAddr, query: &str) -> String {
    let (status, body) = http_bytes(addr, "GET", &format!("/socket.io/?EIO=3&transport=polling{query}"), b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let packets = eio::v3::decode_payload(&body);
    let sid = eio::sid_of(&packets[0]);
    match packets.get(1) {
        Some(p) => p.clone(),
        None => {
            let path = format!("/socket.io/?EIO=3&transport=polling&sid={sid}");
            let (_, body) = http_bytes(addr, "GET", &path, b"").await;
            eio::v3::decode_payload(&body)[0].clone()
        }
    }
}

#[tokio::test]
async fn with_authentication_the_handshake_needs_a_token_and_rooms_follow_its_claim() {
    let srv = auth_server().await;
    let missing = first_packet(srv.addr(0), "").await;
    assert!(missing.starts_with("44") && missing.contains("requires an access token"), "{missing}");
    let expired = first_packet(srv.addr(0), &format!("&access_token={}", common::auth::expired("ann"))).await;
    assert!(expired.starts_with("44") && expired.contains("expired"), "{expired}");

    // A token for the application's default room: logged in.
    let good = format!("&access_token={}", common::auth::token("ann", &["app/default"]));
    let (mut w, _) = Ws3::open_with(srv.addr(0), &good).await;
    assert_eq!(w.next().await, "40");
    w.send(&format!(r#"421["easyrtcAuth",{}]"#, auth("app", ""))).await;
    assert!(w.next().await.starts_with(r#"431[{"msgType":"token""#));
    // A room outside it: refused.
    w.send(r#"422["easyrtcCmd",{"msgType":"roomJoin","msgData":{"roomJoin":{"lobby":{"roomName":"lobby"}}}}]"#).await;
    let refused = w.next().await;
    assert!(refused.starts_with("432[") && refused.contains("MSG_REJECT_BAD_ROOM"), "{refused}");
    // Another application's default room is outside it too: the login fails.
    let (mut w, _) = Ws3::open_with(srv.addr(0), &good).await;
    assert_eq!(w.next().await, "40");
    w.send(&format!(r#"421["easyrtcAuth",{}]"#, auth("elsewhere", ""))).await;
    let failed = w.next().await;
    assert!(failed.starts_with("431[") && failed.contains("LOGIN_GEN_FAIL"), "{failed}");
    assert_eq!(w.next().await, "41");
}

/// Two nodes of a cluster on a real Redis: a client on each, one application.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_on_two_nodes_of_a_cluster_share_rooms_and_relay() {
    let redis = common::redis::Redis::start();
    let node = || {
        let mut c = config();
        c.cluster = Some(switchboard::config::ClusterConfig {
            redis: redis.url(),
            name: "easyrtc".into(),
            node_timeout: std::time::Duration::from_secs(2),
        });
        TestServer::start(c)
    };
    let (n1, n2) = (node().await, node().await);
    let (mut a, _) = Peer::login(n1.addr(0), Mode::Websocket, "app", "").await;
    n2.wait_metric("switchboard_rooms", |v| v == 1.0).await;
    let (mut b, token) = Peer::login(n2.addr(0), Mode::Polling, "app", "").await;
    let who = [("A", a.id.clone()), ("B", b.id.clone())];
    assert!(
        mask(&token, &who).contains(&format!(r#""clientList":{{{},{}}}"#, entry("A"), entry("B"))),
        "the newcomer on node 2 sees the member on node 1: {token}"
    );
    let (name, delta) = a.push_masked(&who).await;
    assert_eq!(name, "easyrtcCmd");
    assert!(delta.contains(r#""updateClient":{"B":"#), "{delta}");
    let msg = format!(r#"{{"msgType":"offer","targetEasyrtcid":"{}","msgData":{OFFER}}}"#, b.id);
    assert_eq!(a.request("easyrtcCmd", &msg).await, ACK);
    let (name, relayed) = b.push_masked(&who).await;
    assert_eq!(name, "easyrtcCmd");
    assert_eq!(
        relayed,
        format!(r#"{{"senderEasyrtcid":"A","msgData":{OFFER},"easyrtcid":"B","msgType":"offer","serverTime":0}}"#)
    );
}
