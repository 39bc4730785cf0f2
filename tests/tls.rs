//! TLS listeners: `switchboard cert` material served over HTTPS/WSS, checked
//! by a client that trusts only the generated CA.

mod common;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use switchboard::Config;
use switchboard::config::ListenerConfig;
use switchboard::dialect::DialectKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

async fn tls_server(dir: &std::path::Path) -> (TestServer, switchboard::cert::Generated) {
    let made = switchboard::cert::generate(dir, &switchboard::cert::machine_names(&[])).expect("certificates");
    let mut listener = ListenerConfig::plain(DialectKind::Native, "127.0.0.1:0".parse().unwrap());
    listener.tls_cert = Some(made.leaf.cert.clone());
    listener.tls_key = Some(made.leaf.key.clone());
    let config = Config { listeners: vec![listener], ..Config::default() };
    (TestServer::start(config).await, made)
}

#[tokio::test]
async fn https_and_wss_work_with_a_generated_certificate() {
    let dir = common::temp_dir("tls");
    let (server, made) = tls_server(&dir).await;
    let tls = common::tls_connector(&made.ca_cert);

    // HTTPS: /healthz over a verified TLS connection to "localhost".
    let tcp = TcpStream::connect(server.addr(0)).await.unwrap();
    let mut stream = tls.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("TLS handshake");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.ends_with("ok\n"), "{body}");

    // WSS: the native welcome, verified against 127.0.0.1 as an IP SAN.
    let tcp = TcpStream::connect(server.addr(0)).await.unwrap();
    let ip = ServerName::try_from("127.0.0.1").unwrap();
    let stream = tls.connect(ip, tcp).await.expect("TLS handshake by IP");
    let url = format!("wss://127.0.0.1:{}/ws", server.addr(0).port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.expect("WebSocket over TLS");
    let Some(Ok(Message::Text(welcome))) = ws.next().await else { panic!("no welcome") };
    let welcome: serde_json::Value = serde_json::from_str(&welcome).unwrap();
    assert_eq!(welcome["type"], "welcome");
    ws.send(Message::Text(r#"{"type":"ping","ref":1}"#.into())).await.unwrap();
    let Some(Ok(Message::Text(pong))) = ws.next().await else { panic!("no pong") };
    assert_eq!(pong.as_str(), r#"{"ref":1,"type":"pong"}"#);
    server.running.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn plain_http_to_a_tls_listener_is_refused() {
    let dir = common::temp_dir("tls-plain");
    let (server, _) = tls_server(&dir).await;
    let mut tcp = TcpStream::connect(server.addr(0)).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(common::WAIT, tcp.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    server.running.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cert_reuses_the_ca_and_covers_loopback_names() {
    let dir = common::temp_dir("cert");
    let first = switchboard::cert::generate(&dir, &switchboard::cert::machine_names(&["example.test".into()])).unwrap();
    assert!(first.ca_created);
    let ca = std::fs::read_to_string(&first.ca_cert).unwrap();
    let second = switchboard::cert::generate(&dir, &switchboard::cert::machine_names(&[])).unwrap();
    assert!(!second.ca_created);
    assert_eq!(std::fs::read_to_string(&second.ca_cert).unwrap(), ca, "the CA is kept");
    for n in ["localhost", "127.0.0.1", "::1", "example.test"] {
        assert!(first.names.iter().any(|x| x == n), "{n} missing from {:?}", first.names);
    }
    for f in ["cert.crt", "cert.key", "ssl/server.cert", "ssl/server.key"] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    let bad = switchboard::transport::tls::server_config(&switchboard::transport::tls::TlsFiles {
        cert: dir.join("cert.crt"),
        key: dir.join("missing.key"),
    });
    let msg = format!("{:#}", bad.expect_err("missing key is an error"));
    assert!(msg.contains("missing.key"), "{msg}");
    let _ = std::fs::remove_dir_all(dir);
}
