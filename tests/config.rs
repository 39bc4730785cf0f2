//! Configuration: a TOML file via `--config`, flags over the file, the
//! `SWITCHBOARD_*` environment, clear errors for bad files, and `--help`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Bin, http_get};
use switchboard::Config;
use switchboard::config::ServeArgs;

/// Writes a config file unique to this test; removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("switchboard-test-{}-{tag}.toml", std::process::id()));
        std::fs::write(&path, text).expect("write temp config");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const FILE: &str = r#"
rate = 7
burst = 9
grace = 3
ring_timeout = 4
room_max = 6
max_frame = 2048
max_connections = 10
shutdown_deadline = 2
ice_servers = [{ urls = "stun:127.0.0.1:3478" }]

[[listener]]
dialect = "native"
listen = "127.0.0.1:0"
"#;

#[test]
fn the_file_is_read_and_flags_override_it() {
    let file = TempFile::new("read", FILE);
    let args = ServeArgs { config: Some(file.0.clone()), ..ServeArgs::default() };
    let c = Config::from_args(&args).expect("valid file");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].listen.to_string(), "127.0.0.1:0");
    assert_eq!((c.conn.rate, c.conn.burst, c.conn.max_frame), (7, 9, 2048));
    assert_eq!((c.grace, c.ring_timeout), (Duration::from_secs(3), Duration::from_secs(4)));
    assert_eq!((c.room_max, c.max_connections), (6, 10));
    assert_eq!(c.shutdown_deadline, Duration::from_secs(2));
    assert_eq!(c.ice.fixed[0].urls, vec!["stun:127.0.0.1:3478"]);

    let args = ServeArgs {
        config: Some(file.0.clone()),
        rate: Some(11),
        grace: Some(5),
        listen: Some("127.0.0.1:1234".parse().unwrap()),
        ice_servers: vec!["stun:127.0.0.1:9".into()],
        ..ServeArgs::default()
    };
    let c = Config::from_args(&args).expect("valid file and flags");
    assert_eq!(c.listeners[0].listen.to_string(), "127.0.0.1:1234");
    assert_eq!((c.conn.rate, c.conn.burst), (11, 9), "the flag wins, the file fills the rest");
    assert_eq!(c.grace, Duration::from_secs(5));
    assert_eq!(c.ice.json_for("u", std::time::SystemTime::now()), serde_json::json!([{"urls": ["stun:127.0.0.1:9"]}]));
}

#[test]
fn the_peerjs_table_sets_the_peerjs_dialect_and_flags_override_it() {
    let file = TempFile::new(
        "peerjs",
        "[peerjs]\nkey = \"k1\"\npath = \"/app\"\nallow_discovery = true\nexpire_timeout = 2500\nalive_timeout = 9000\nconcurrent_limit = 12\n",
    );
    let args = ServeArgs { config: Some(file.0.clone()), ..ServeArgs::default() };
    let p = Config::from_args(&args).expect("valid [peerjs] table").peerjs;
    assert_eq!((p.key.as_str(), p.path.as_str(), p.allow_discovery), ("k1", "/app/", true));
    assert_eq!((p.expire_timeout, p.alive_timeout), (Duration::from_millis(2500), Duration::from_millis(9000)));
    assert_eq!(p.concurrent_limit, 12);

    let mut args = ServeArgs { config: Some(file.0.clone()), ..ServeArgs::default() };
    args.peerjs.key = Some("k2".into());
    args.peerjs.concurrent_limit = Some(3);
    let p = Config::from_args(&args).expect("valid file and flags").peerjs;
    assert_eq!(
        (p.key.as_str(), p.concurrent_limit, p.path.as_str()),
        ("k2", 3, "/app/"),
        "flags win, the file fills the rest"
    );

    let typo = TempFile::new("peerjs-typo", "[peerjs]\nexpire_timout = 1\n");
    let args = ServeArgs { config: Some(typo.0.clone()), ..ServeArgs::default() };
    let err = format!("{:#}", Config::from_args(&args).expect_err("unknown key"));
    assert!(err.contains("expire_timout"), "{err}");
}

#[test]
fn bad_files_give_errors_naming_the_file_and_the_problem() {
    let missing = std::env::temp_dir().join("switchboard-test-no-such-file.toml");
    let args = ServeArgs { config: Some(missing.clone()), ..ServeArgs::default() };
    let err = format!("{:#}", Config::from_args(&args).expect_err("missing file"));
    assert!(err.contains(missing.to_str().unwrap()), "{err}");

    for (tag, text, hint) in [
        ("unknown-key", "colour = \"blue\"\n", "colour"),
        ("not-toml", "rate = = 3\n", "rate"),
        ("bad-listener", "[[listener]]\ndialect = \"morse\"\nlisten = \"127.0.0.1:0\"\n", "morse"),
        ("bad-value", "room_max = 1\n", "--room-max"),
    ] {
        let file = TempFile::new(tag, text);
        let args = ServeArgs { config: Some(file.0.clone()), ..ServeArgs::default() };
        let err = format!("{:#}", Config::from_args(&args).expect_err(tag));
        assert!(err.contains(hint), "{tag}: {err}");
        if tag != "bad-value" {
            assert!(err.contains(file.path()), "{tag}: {err}");
        }
    }
}

#[test]
fn the_cluster_settings_come_from_the_file_or_flags_and_namespaces_from_listener_names() {
    let file = TempFile::new(
        "cluster",
        "redis = \"redis://127.0.0.1:1\"\ncluster = \"prod\"\nnode_timeout = 3\n\n[[listener]]\ndialect = \"native\"\nlisten = \"127.0.0.1:0\"\n\n[[listener]]\ndialect = \"native\"\nname = \"second\"\nlisten = \"127.0.0.1:0\"\n",
    );
    let args = ServeArgs { config: Some(file.0.clone()), ..ServeArgs::default() };
    let c = Config::from_args(&args).expect("valid cluster file");
    let cluster = c.cluster.expect("a cluster");
    assert_eq!((cluster.redis.as_str(), cluster.name.as_str()), ("redis://127.0.0.1:1", "prod"));
    assert_eq!(cluster.node_timeout, Duration::from_secs(3));
    // The namespace is the listener's name (or dialect), not its position.
    assert_ne!(c.listeners[0].space(), c.listeners[1].space());
    let mut moved = c.listeners[1].clone();
    moved.listen = "127.0.0.1:9999".parse().unwrap();
    assert_eq!(moved.space(), c.listeners[1].space());

    let args =
        ServeArgs { config: Some(file.0.clone()), redis: Some("redis://127.0.0.1:2".into()), ..ServeArgs::default() };
    assert_eq!(Config::from_args(&args).unwrap().cluster.unwrap().redis, "redis://127.0.0.1:2", "the flag wins");

    for (tag, text, hint) in [
        (
            "same-space",
            "[[listener]]\ndialect = \"native\"\nlisten = \"127.0.0.1:0\"\n[[listener]]\ndialect = \"native\"\nlisten = \"127.0.0.1:0\"\n",
            "distinct `name`",
        ),
        ("bad-url", "redis = \"localhost:6379\"\n", "redis://"),
        ("bad-timeout", "redis = \"redis://127.0.0.1:1\"\nnode_timeout = 60\n", "--node-timeout"),
    ] {
        let file = TempFile::new(tag, text);
        let args = ServeArgs { config: Some(file.0.clone()), ..ServeArgs::default() };
        let err = format!("{:#}", Config::from_args(&args).expect_err(tag));
        assert!(err.contains(hint), "{tag}: {err}");
    }
}

#[test]
fn a_node_that_cannot_reach_redis_says_so_and_exits() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("redis://127.0.0.1:{port}");
    let (status, _, stderr) = Bin::run(&["--listen", "127.0.0.1:0", "--redis", &url]);
    assert!(!status.success());
    assert!(stderr.contains("cannot reach Redis") && stderr.contains(&url), "{stderr}");
}

#[test]
fn the_binary_reports_a_bad_config_file_and_exits_nonzero() {
    let file = TempFile::new("bin-bad", "colour = \"blue\"\n");
    let (status, _, stderr) = Bin::run(&["--config", file.path()]);
    assert!(!status.success());
    assert!(stderr.contains(file.path()) && stderr.contains("colour"), "{stderr}");
}

#[test]
fn help_lists_the_flags() {
    let (status, stdout, _) = Bin::run(&["--help"]);
    assert!(status.success());
    for flag in [
        "--config",
        "--listen",
        "--dialect",
        "--static",
        "--ice-server",
        "--turn-listen",
        "--turn-secret",
        "--turn-url",
        "SWITCHBOARD_TURN_SECRET",
        "--max-frame",
        "--rate",
        "--burst",
        "--max-connections",
        "--grace",
        "--ring-timeout",
        "--room-max",
        "--shutdown-deadline",
        "SWITCHBOARD_LISTEN",
        "--redis",
        "SWITCHBOARD_REDIS",
        "--cluster",
        "--node-timeout",
    ] {
        assert!(stdout.contains(flag), "--help lacks {flag}:\n{stdout}");
    }
}

#[tokio::test]
async fn the_binary_listens_where_the_environment_or_the_file_says() {
    let bin = Bin::spawn(&[], &[("SWITCHBOARD_LISTEN", "127.0.0.1:0")]);
    let addr = bin.addr();
    assert_ne!(addr.port(), 8080);
    assert_eq!(http_get(addr, "/healthz").await, (200, "ok\n".to_string()));
    drop(bin);

    let file = TempFile::new("bin-good", FILE);
    let bin = Bin::spawn(&["--config", file.path()], &[]);
    let addr = bin.addr();
    let (_, metrics) = http_get(addr, "/metrics").await;
    assert!(metrics.contains("switchboard_connections 0"), "{metrics}");
    // The file's limits reach the clients' welcome.
    let mut c = common::Client::connect(&format!("ws://{addr}/ws")).await;
    let welcome = c.recv_type("welcome").await;
    assert_eq!(welcome["limits"]["max_frame"], 2048);
    assert_eq!(welcome["limits"]["rate"], 7);
    assert_eq!(welcome["grace_s"], 3);
}
