//! `examples/demo-systems.toml` starts every demo-system dialect in one
//! process, each speaking its own protocol (ports rewritten to 0 here).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::{Bin, Client};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The example with every port replaced by 0, in a temp dir, and its
/// number of listeners.
fn example_on_free_ports(dir: &std::path::Path) -> (std::path::PathBuf, usize) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo-systems.toml"))
        .expect("examples/demo-systems.toml");
    let mut rewritten = String::new();
    for line in text.lines() {
        if line.starts_with("listen = \"127.0.0.1:") {
            rewritten.push_str("listen = \"127.0.0.1:0\"\n");
        } else {
            rewritten.push_str(line);
            rewritten.push('\n');
        }
    }
    let path = dir.join("demo-systems.toml");
    std::fs::write(&path, rewritten).expect("write config");
    (path, text.lines().filter(|l| l.trim() == "[[listener]]").count())
}

#[tokio::test]
async fn example_config_serves_every_demo_system() {
    let dir = common::temp_dir("demo");
    let (config, listeners) = example_on_free_ports(&dir);
    let certs = dir.join("certs");
    let bin = Bin::spawn(&["--config", config.to_str().unwrap()], &[("SWITCHBOARD_CERT_DIR", certs.to_str().unwrap())]);
    let mut addrs: HashMap<String, (SocketAddr, bool)> = HashMap::new();
    while addrs.len() < listeners {
        let line = bin.wait_line("listening");
        let field = |name: &str| line.split(&format!("{name}=")).nth(1).and_then(|s| s.split_whitespace().next());
        let dialect = field("dialect").expect("dialect=").trim_matches('"').to_string();
        let addr: SocketAddr = field("addr").expect("addr=").parse().expect("an address");
        addrs.insert(dialect, (addr, line.contains("tls=true")));
    }
    assert!(!addrs["basic"].1, "basic is plain, as the original");
    assert!(!addrs["one2one"].1, "one2one is plain, as the original");
    assert!(addrs["offers"].1, "offers is served over HTTPS");
    assert!(addrs["flutter"].1, "flutter is served over WSS");
    assert!(!addrs["matchbox"].1, "matchbox is plain, as the original");
    assert!(!addrs["easyrtc"].1, "easyrtc is plain, as the original");

    let mut basic = Client::connect(&format!("ws://{}/", addrs["basic"].0)).await;
    basic.send_text(r#"{"type":"login","name":"alice"}"#).await;
    assert_eq!(basic.recv_text().await, r#"{"type":"login","success":true}"#);

    let mut one2one = Client::connect(&format!("ws://{}/call", addrs["one2one"].0)).await;
    one2one.send_text(r#"{"id":"register","name":"user1"}"#).await;
    assert_eq!(one2one.recv_text().await, r#"{"id":"registerResponse","response":"accepted"}"#);

    // The development certificate was generated on demand; trust its CA.
    let tls = common::tls_connector(&certs.join("ca.crt"));
    let localhost = ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(addrs["offers"].0).await.unwrap();
    let mut https = tls.connect(localhost.clone(), tcp).await.expect("offers TLS handshake");
    https
        .write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    let _ = https.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"0{"sid":""#), "Engine.IO open packet: {response}");

    let tcp = TcpStream::connect(addrs["flutter"].0).await.unwrap();
    let stream = tls.connect(localhost, tcp).await.expect("flutter TLS handshake");
    let url = format!("wss://localhost:{}/ws", addrs["flutter"].0.port());
    let (mut flutter, _) = tokio_tungstenite::client_async(url, stream).await.expect("WSS upgrade");
    let hello = r#"{"type":"new","data":{"id":"42","username":"alice","device_name":"Chrome","user_agent":"test"}}"#;
    flutter.send(Message::Text(hello.into())).await.unwrap();
    let Some(Ok(Message::Text(peers))) = flutter.next().await else { panic!("no peers frame") };
    let peers: serde_json::Value = serde_json::from_str(&peers).unwrap();
    assert_eq!(peers["type"], "peers");
    assert_eq!(peers["data"][0]["id"], "42");

    let mut matchbox = Client::connect(&format!("ws://{}/game?next=2", addrs["matchbox"].0)).await;
    assert!(matchbox.recv_text().await.starts_with(r#"{"IdAssigned":""#));
    let mut tcp = TcpStream::connect(addrs["easyrtc"].0).await.unwrap();
    tcp.write_all(b"GET /socket.io/?EIO=3&transport=polling HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    let _ = tcp.read_to_string(&mut response).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#":0{"sid":""#), "Engine.IO v3 open packet: {response}");

    drop(bin);
    let _ = std::fs::remove_dir_all(dir);
}
