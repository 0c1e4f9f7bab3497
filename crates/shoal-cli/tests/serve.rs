//! Runs the built `shoal` binary: `serve` on a free port, `/health` over raw TCP,
//! graceful exit on SIGTERM, and `--check-config`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use support::{Answer, Limits, Polling, SHOAL, Shoal, get_within};

/// How long every HTTP request may take, its whole response read.
const HTTP_WITHIN: Duration = Duration::from_secs(10);
/// The polling clients: every request within [`HTTP_WITHIN`], an expected packet within 5 s.
const POLLING: Limits = Limits { request: HTTP_WITHIN, packet: Duration::from_secs(5) };

/// Starts `shoal serve --port 0 --host 127.0.0.1 <args>` and waits (at most 30 s) for
/// its "listening on" line.
fn start(args: &[&str]) -> Shoal {
    Shoal::serve_within(args, Duration::from_secs(30))
}

/// One `GET path` over a fresh TCP connection.
async fn http_get(addr: SocketAddr, path: &str) -> Answer {
    get_within(addr, path, HTTP_WITHIN).await
}

#[tokio::test]
async fn demo_chat_over_raw_polling() {
    let server = start(&["--log", "warn,shoal::node=info"]);
    let addr = server.addr;
    let mut ada = Polling::connect_with(addr, POLLING).await;
    let mut bob = Polling::connect_with(addr, POLLING).await;

    ada.send(addr, r#"420["nick","ada"]"#).await;
    ada.expect(addr, |p| p == r#"430[{"ok":true,"nick":"ada"}]"#).await;
    ada.send(addr, r#"421["chat",{"room":"lobby","text":"too early"}]"#).await;
    ada.expect(addr, |p| p == r#"431[{"ok":false,"error":"join the room first"}]"#).await;
    ada.send(addr, r#"422["join","lobby"]"#).await;
    ada.expect(addr, |p| p == r#"432[{"ok":true,"room":"lobby"}]"#).await;
    ada.expect(addr, |p| p.starts_with(r#"42["system",{"room":"lobby","text":"ada joined lobby","#)).await;
    bob.send(addr, r#"42["join","lobby"]"#).await;
    ada.expect(addr, |p| p.contains(r#""text":"#) && p.contains("joined lobby")).await;

    bob.send(addr, r#"42["chat",{"room":"lobby","text":"hi"}]"#).await;
    for client in [&mut ada, &mut bob] {
        let chat = client.expect(addr, |p| p.starts_with(r#"42["chat","#)).await;
        let args: serde_json::Value = serde_json::from_str(&chat[2..]).expect("event JSON");
        assert_eq!(args[1]["from"], args[1]["nick"], "bob has no nick: his id stands for it");
        assert_eq!(args[1]["text"], "hi");
        assert!(args[1]["at"].as_u64().expect("at is a number") > 1_577_836_800_000);
    }

    // bob leaves the namespace: ada is told, from his on_disconnecting handler
    bob.send(addr, "41").await;
    ada.expect(addr, |p| p.contains(r#""text":"#) && p.contains("left lobby (client namespace disconnect)")).await;
}

#[tokio::test]
async fn serve_health_then_sigterm() {
    let mut server = start(&["--no-demo"]);
    assert_ne!(server.addr.port(), 0, "the actual port is printed, not 0");

    let health = http_get(server.addr, "/health").await;
    assert_eq!(health.status, 200, "{}", health.head);
    assert_eq!(health.header("content-type"), Some("application/json"), "{}", health.head);
    let json: serde_json::Value = serde_json::from_slice(&health.body).expect("JSON body");
    let node = json["node"].as_str().expect("the node id").to_owned();
    assert_eq!(node.len(), 4, "{json}");
    assert_eq!(json, serde_json::json!({"status": "ok", "node": node, "connections": 0, "forwarded": 0}));

    // no demo: nothing at /
    assert_eq!(http_get(server.addr, "/").await.status, 404);
    // Socket.IO answers on its path (a polling handshake)
    let open = http_get(server.addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(open.status, 200);
    assert!(open.body.starts_with(b"0{\"sid\":"), "{}", open.text());

    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    // give the reader thread a moment to pass on the last lines
    std::thread::sleep(Duration::from_millis(100));
    let log = server.new_lines().join("\n");
    assert!(log.contains("SIGTERM") && log.contains("shoal stopped"), "{log}");
}

#[tokio::test]
async fn serve_demo_page_then_sigint() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let web = web.to_str().expect("utf-8 path");
    let mut server = start(&["--demo-dir", web, "--log", "warn,shoal=info"]);

    let page = http_get(server.addr, "/").await;
    assert_eq!(page.status, 200, "{}", page.head);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(page.body).expect("utf-8 page");
    assert!(page.contains("<script src=\"/socket.io.min.js\"></script>"), "the page loads the client bundle");

    for path in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/socket.io.min.js/../../../Cargo.toml"] {
        let a = http_get(server.addr, path).await;
        assert_eq!(a.status, 400, "{path}");
        assert!(!a.text().contains("[workspace]"), "{path}");
    }
    assert_eq!(http_get(server.addr, "/package.json").await.status, 404);

    server.signal("INT");
    let status = server.wait_exit(Duration::from_secs(10)).expect("exits within 10 s of SIGINT");
    assert!(status.success(), "exit status {status}");
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &str) -> TempFile {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let path = std::env::temp_dir().join(format!("shoal-cli-{tag}-{}-{nanos}.toml", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn check_config(file: &TempFile, flags: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(SHOAL)
        .args(["serve", "--check-config", "--config"])
        .arg(&file.0)
        .args(flags)
        .output()
        .expect("run shoal");
    (out.status, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `--check-config` that must fail with exit status 1; its stderr.
fn check_config_fails(file: &TempFile, flags: &[&str]) -> String {
    let (status, _, stderr) = check_config(file, flags);
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn check_config_prints_the_merged_configuration() {
    let file = TempFile::new("good", "port = 4000\nping_interval = 1000\nlog = \"debug\"\n");
    let (status, stdout, stderr) = check_config(&file, &["--port", "4001", "--no-demo"]);
    assert!(status.success(), "{stderr}");
    // flags over file over defaults
    for line in ["port = 4001", "ping_interval = 1000", "log = \"debug\"", "ping_timeout = 20000", "demo = false"] {
        assert!(stdout.lines().any(|l| l == line), "missing {line:?} in:\n{stdout}");
    }
    assert!(stderr.contains("configuration is valid"), "{stderr}");
}

#[test]
fn check_config_rejects_an_unknown_key() {
    let file = TempFile::new("unknown", "port = 4000\nping_intervall = 1000\n");
    let stderr = check_config_fails(&file, &[]);
    assert!(stderr.contains("invalid configuration file"), "{stderr}");
    assert!(stderr.contains("unknown field `ping_intervall`"), "{stderr}");
}

#[test]
fn check_config_rejects_invalid_limits() {
    let file = TempFile::new("limits", "max_payload = 0\n");
    let stderr = check_config_fails(&file, &[]);
    assert!(stderr.contains("invalid configuration: max_payload must be positive"), "{stderr}");

    // a flag can make a bad file good...
    let (status, _, stderr) = check_config(&file, &["--max-payload", "10"]);
    assert!(status.success(), "{stderr}");
    // ...and a bad flag makes a good file bad
    let good = TempFile::new("good2", "");
    let stderr = check_config_fails(&good, &["--ping-timeout", "0"]);
    assert!(stderr.contains("ping interval and timeout must be positive"), "{stderr}");
}

#[test]
fn serve_refuses_a_bad_config_before_listening() {
    let file = TempFile::new("bad-serve", "connect_timeout = 0\n");
    let out = Command::new(SHOAL)
        .args(["serve", "--port", "0", "--host", "127.0.0.1", "--config"])
        .arg(&file.0)
        .output()
        .expect("run shoal");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connect_timeout must be positive"), "{stderr}");
}
