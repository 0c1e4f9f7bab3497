//! Runs the built `shoal` binary: `serve` on a free port, `/health` over raw TCP,
//! graceful exit on SIGTERM, and `--check-config`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// A running `shoal serve`, killed if the test fails before it exits.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Every stderr line (the log), as it comes.
    lines: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `shoal serve <args>` and waits for its "listening on" line.
    fn start(args: &[&str]) -> Server {
        let mut child = Command::new(SHOAL)
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        // keep draining so the child never blocks on a full pipe
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("shoal listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        break addr.parse().unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("no \"listening on\" line; log so far:\n{}", seen.join("\n"));
                }
            }
        };
        Server { child, addr, lines }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Sends `signal` (by name, `TERM`/`INT`) with the `kill` command.
    fn signal(&self, signal: &str) {
        let ok = Command::new("kill").arg(format!("-{signal}")).arg(self.pid()).status().expect("run kill");
        assert!(ok.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log lines received so far.
    fn log(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request over a fresh TCP connection; `(status, head, body)`.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .expect("read response");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head");
    let head = String::from_utf8(raw[..split].to_vec()).expect("utf-8 head");
    let body = raw[split + 4..].to_vec();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    (status, head, body)
}

/// One HTTP/1.1 POST with a text body; `(status, body)`.
async fn http_post(addr: SocketAddr, path: &str, body: &str) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")
        .expect("read response");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    (status, raw[split + 4..].to_vec())
}

/// A Socket.IO client over raw HTTP long-polling, enough to drive the demo.
struct PollingClient {
    addr: SocketAddr,
    sid: String,
    /// Engine.IO packets received and not yet looked at.
    inbox: Vec<String>,
}

impl PollingClient {
    async fn connect(addr: SocketAddr) -> PollingClient {
        let (status, _, body) = http_get(addr, "/socket.io/?EIO=4&transport=polling").await;
        assert_eq!(status, 200);
        let open: serde_json::Value = serde_json::from_slice(&body[1..]).expect("open packet");
        let sid = open["sid"].as_str().expect("sid").to_owned();
        let mut client = PollingClient { addr, sid, inbox: Vec::new() };
        client.send("40").await;
        client.expect(|p| p.starts_with("40{")).await;
        client
    }

    fn url(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    async fn send(&self, packet: &str) {
        let (status, body) = http_post(self.addr, &self.url(), packet).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    /// Polls until a packet matching `pred` arrives; returns it (others stay in the inbox).
    async fn expect(&mut self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(i) = self.inbox.iter().position(|p| pred(p)) {
                return self.inbox.remove(i);
            }
            assert!(Instant::now() < deadline, "no matching packet; got {:?}", self.inbox);
            let (status, _, body) = http_get(self.addr, &self.url()).await;
            assert_eq!(status, 200);
            let text = String::from_utf8(body).expect("text payload");
            self.inbox.extend(text.split('\u{1e}').filter(|p| *p != "2").map(str::to_owned));
        }
    }
}

#[tokio::test]
async fn demo_chat_over_raw_polling() {
    let server = Server::start(&["--port", "0", "--host", "127.0.0.1", "--log", "warn,shoal::node=info"]);
    let mut ada = PollingClient::connect(server.addr).await;
    let mut bob = PollingClient::connect(server.addr).await;

    ada.send(r#"420["nick","ada"]"#).await;
    ada.expect(|p| p == r#"430[{"ok":true,"nick":"ada"}]"#).await;
    ada.send(r#"421["chat",{"room":"lobby","text":"too early"}]"#).await;
    ada.expect(|p| p == r#"431[{"ok":false,"error":"join the room first"}]"#).await;
    ada.send(r#"422["join","lobby"]"#).await;
    ada.expect(|p| p == r#"432[{"ok":true,"room":"lobby"}]"#).await;
    ada.expect(|p| p.starts_with(r#"42["system",{"room":"lobby","text":"ada joined lobby","#)).await;
    bob.send(r#"42["join","lobby"]"#).await;
    ada.expect(|p| p.contains(r#""text":"#) && p.contains("joined lobby")).await;

    bob.send(r#"42["chat",{"room":"lobby","text":"hi"}]"#).await;
    for client in [&mut ada, &mut bob] {
        let chat = client.expect(|p| p.starts_with(r#"42["chat","#)).await;
        let args: serde_json::Value = serde_json::from_str(&chat[2..]).expect("event JSON");
        assert_eq!(args[1]["from"], args[1]["nick"], "bob has no nick: his id stands for it");
        assert_eq!(args[1]["text"], "hi");
        assert!(args[1]["at"].as_u64().expect("at is a number") > 1_577_836_800_000);
    }

    // bob leaves the namespace: ada is told, from his on_disconnecting handler
    bob.send("41").await;
    ada.expect(|p| p.contains(r#""text":"#) && p.contains("left lobby (client namespace disconnect)")).await;
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn serve_health_then_sigterm() {
    let mut server = Server::start(&["--port", "0", "--host", "127.0.0.1", "--no-demo"]);
    assert_ne!(server.addr.port(), 0, "the actual port is printed, not 0");

    let (status, head, body) = http_get(server.addr, "/health").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON body");
    let node = json["node"].as_str().expect("the node id").to_owned();
    assert_eq!(node.len(), 4, "{json}");
    assert_eq!(json, serde_json::json!({"status": "ok", "node": node, "connections": 0, "forwarded": 0}));

    // no demo: nothing at /
    let (status, _, _) = http_get(server.addr, "/").await;
    assert_eq!(status, 404);
    // Socket.IO answers on its path (a polling handshake)
    let (status, _, body) = http_get(server.addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"0{\"sid\":"), "{}", String::from_utf8_lossy(&body));

    server.signal("TERM");
    let status = server.wait(Duration::from_secs(10)).expect("exits within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}");
    // give the reader thread a moment to pass on the last lines
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log().join("\n");
    assert!(log.contains("SIGTERM") && log.contains("shoal stopped"), "{log}");
}

#[tokio::test]
async fn serve_demo_page_then_sigint() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let web = web.to_str().expect("utf-8 path");
    let mut server =
        Server::start(&["--port", "0", "--host", "127.0.0.1", "--demo-dir", web, "--log", "warn,shoal=info"]);

    let (status, head, body) = http_get(server.addr, "/").await;
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(body).expect("utf-8 page");
    assert!(page.contains("<script src=\"/socket.io.min.js\"></script>"), "the page loads the client bundle");

    for path in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/socket.io.min.js/../../../Cargo.toml"] {
        let (status, _, body) = http_get(server.addr, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(!String::from_utf8_lossy(&body).contains("[workspace]"), "{path}");
    }
    assert_eq!(http_get(server.addr, "/package.json").await.0, 404);

    server.signal("INT");
    let status = server.wait(Duration::from_secs(10)).expect("exits within 10 s of SIGINT");
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
    let (status, _, stderr) = check_config(&file, &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid configuration file"), "{stderr}");
    assert!(stderr.contains("unknown field `ping_intervall`"), "{stderr}");
}

#[test]
fn check_config_rejects_invalid_limits() {
    let file = TempFile::new("limits", "max_payload = 0\n");
    let (status, _, stderr) = check_config(&file, &[]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid configuration: max_payload must be positive"), "{stderr}");

    // a flag can make a bad file good...
    let (status, _, stderr) = check_config(&file, &["--max-payload", "10"]);
    assert!(status.success(), "{stderr}");
    // ...and a bad flag makes a good file bad
    let good = TempFile::new("good2", "");
    let (status, _, stderr) = check_config(&good, &["--ping-timeout", "0"]);
    assert_eq!(status.code(), Some(1), "{stderr}");
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
