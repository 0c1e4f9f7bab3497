//! Node.js helper processes of `tests/js-redis/`, driven by JSON lines.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::repo_root;

/// How long the waiting methods of [`NodeProcess`] wait when not told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many of the latest lines a failure message shows.
const SHOWN_LINES: usize = 40;

/// Records the answer of a `clients.mjs` `connect` command (`[{"index", "id"}, …]`) in
/// `ids`, a socket id per client index (grown as needed); returns the indexes connected.
///
/// Panics on an answer of another shape.
pub fn record_connected(answer: &Value, ids: &mut Vec<String>) -> Vec<usize> {
    let clients = answer.as_array().unwrap_or_else(|| panic!("connect answered {answer}"));
    let mut out = Vec::with_capacity(clients.len());
    for c in clients {
        let index = c["index"].as_u64().unwrap_or_else(|| panic!("no index in {c}")) as usize;
        let id = c["id"].as_str().unwrap_or_else(|| panic!("no id in {c}")).to_owned();
        if ids.len() <= index {
            ids.resize(index + 1, String::new());
        }
        ids[index] = id;
        out.push(index);
    }
    out
}

/// `tests/js-redis` of the repository, checked to have its Node packages installed.
///
/// Panics, telling to run `npm ci --prefix tests/js-redis`, when `node_modules` is missing.
pub fn js_redis_dir() -> PathBuf {
    let dir = repo_root().join("tests").join("js-redis");
    let marker = dir.join("node_modules").join("@socket.io").join("redis-adapter").join("package.json");
    assert!(
        marker.is_file(),
        "{} is missing: the Redis interop tests need their Node packages, run `npm ci --prefix tests/js-redis` from \
         the repository root first",
        marker.display()
    );
    dir
}

/// A Node.js script of `tests/js-redis/` (`server.mjs`, `clients.mjs`, `emitter.mjs`,
/// `echo.mjs`) speaking the folder's line protocol: it prints one JSON object per line on
/// stdout (`{"event": ...}` as things happen, `{"reply": id, "ok": ..., ...}` for commands)
/// and reads one JSON command per line on stdin (`{"id": ..., "cmd": ..., ...}`).
///
/// Lines are kept in arrival order until consumed: [`NodeProcess::next_line`] takes the
/// oldest, [`NodeProcess::wait_for`] the oldest one matching a predicate (leaving the others
/// for later). Every waiting method has a timeout and panics with the script's stderr and
/// its latest lines when it expires or when the process exits. The process is killed on
/// drop, and exits by itself when its stdin closes. `SHOAL_JS_STDERR=1` echoes its stderr
/// as it comes (with `DEBUG=socket.io*` for the libraries' traces).
#[derive(Debug)]
pub struct NodeProcess {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    pid: u32,
    lines: mpsc::UnboundedReceiver<Value>,
    backlog: VecDeque<Value>,
    latest: VecDeque<Value>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
}

impl NodeProcess {
    /// Starts `node tests/js-redis/<script> <args...>` (working directory `tests/js-redis`).
    ///
    /// Panics if Node.js is missing or `tests/js-redis/node_modules` is not installed.
    pub fn spawn(script: &str, args: &[&str]) -> NodeProcess {
        let dir = js_redis_dir();
        let path = dir.join(script);
        assert!(path.is_file(), "no script {}", path.display());
        let mut child = Command::new("node")
            .arg(&path)
            .args(args)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (is Node.js installed?): {e}"));
        let pid = child.id();
        let name = format!("{script} {}", args.join(" "));

        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                let value = match serde_json::from_str::<Value>(&line) {
                    Ok(v @ Value::Object(_)) => v,
                    // a stray line from a library: kept, visible in failure messages
                    _ => json!({"event": "stdout", "text": line}),
                };
                if tx.send(value).is_err() {
                    break;
                }
            }
        });

        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        let echo = std::env::var_os("SHOAL_JS_STDERR").is_some();
        let label = script.to_owned();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                if echo {
                    eprint!("[{label} {pid}] {text}");
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&text);
            }
        });

        let stdin = child.stdin.take();
        NodeProcess {
            name,
            child: Some(child),
            stdin,
            pid,
            lines,
            backlog: VecDeque::new(),
            latest: VecDeque::new(),
            stderr,
            next_id: 1,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the script wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Panics with `why`, the script's latest lines and its stderr.
    pub fn fail(&self, why: &str) -> ! {
        let latest: Vec<String> = self.latest.iter().map(Value::to_string).collect();
        panic!(
            "node {} (pid {}): {why}\n-- latest lines:\n{}\n-- unconsumed: {}\n-- stderr:\n{}",
            self.name,
            self.pid,
            latest.join("\n"),
            self.backlog.len(),
            self.stderr()
        );
    }

    /// Writes one command line (`cmd` serialized as one line of JSON). Does not wait.
    pub fn send(&mut self, cmd: Value) {
        let mut line = cmd.to_string();
        line.push('\n');
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin already closed")),
        };
        if let Err(e) = written {
            self.fail(&format!("cannot send {cmd}: {e}"));
        }
    }

    /// Sends `cmd` with a fresh `id` and waits (up to `timeout`) for its reply:
    /// `Ok(result)` for `{"ok": true, "result": ...}`, `Err(error)` for `{"ok": false,
    /// "error": ...}`. Other lines that arrive meanwhile stay for later.
    pub async fn request(&mut self, mut cmd: Value, timeout: Duration) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        match cmd.as_object_mut() {
            Some(obj) => {
                obj.insert("id".to_owned(), json!(id));
            }
            None => self.fail(&format!("a command must be a JSON object, not {cmd}")),
        }
        let what = cmd.get("cmd").and_then(Value::as_str).unwrap_or("?").to_owned();
        self.send(cmd);
        let reply = self
            .wait_for_described(|v| v.get("reply") == Some(&json!(id)), timeout, &format!("the reply to {what} #{id}"))
            .await;
        if reply.get("ok") == Some(&Value::Bool(true)) {
            Ok(reply.get("result").cloned().unwrap_or(Value::Null))
        } else {
            Err(reply.get("error").and_then(Value::as_str).unwrap_or("(no error message)").to_owned())
        }
    }

    /// [`NodeProcess::request`] with [`DEFAULT_TIMEOUT`], panicking on an error reply.
    pub async fn call(&mut self, cmd: Value) -> Value {
        self.call_within(cmd, DEFAULT_TIMEOUT).await
    }

    /// [`NodeProcess::request`] with an explicit timeout, panicking on an error reply.
    pub async fn call_within(&mut self, cmd: Value, timeout: Duration) -> Value {
        let shown = cmd.to_string();
        match self.request(cmd, timeout).await {
            Ok(v) => v,
            Err(e) => self.fail(&format!("command {shown} failed: {e}")),
        }
    }

    /// The oldest unconsumed line, waiting up to `timeout` for one.
    pub async fn next_line(&mut self, timeout: Duration) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        self.recv(timeout, "the next line").await
    }

    /// The oldest unconsumed line matching `pred`, waiting up to `timeout` for one; the
    /// lines skipped stay for later calls.
    pub async fn wait_for(&mut self, pred: impl FnMut(&Value) -> bool, timeout: Duration) -> Value {
        self.wait_for_described(pred, timeout, "a matching line").await
    }

    /// The oldest unconsumed `{"event": name, ...}` line, waiting up to [`DEFAULT_TIMEOUT`].
    pub async fn wait_for_event(&mut self, name: &str) -> Value {
        self.wait_for_event_within(name, DEFAULT_TIMEOUT).await
    }

    /// As [`NodeProcess::wait_for_event`] with an explicit timeout.
    pub async fn wait_for_event_within(&mut self, name: &str, timeout: Duration) -> Value {
        self.wait_for_described(
            |v| v.get("event").and_then(Value::as_str) == Some(name),
            timeout,
            &format!("event {name:?}"),
        )
        .await
    }

    /// The `n` oldest unconsumed lines matching `pred`, all within `timeout`.
    pub async fn wait_for_n(
        &mut self,
        mut pred: impl FnMut(&Value) -> bool,
        n: usize,
        timeout: Duration,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let what = format!("matching line {} of {n} (got {:?})", out.len() + 1, out);
            out.push(self.wait_for_described(&mut pred, left, &what).await);
        }
        out
    }

    /// Panics if a line matching `pred` is unconsumed now or arrives within `quiet`.
    pub async fn assert_none(&mut self, mut pred: impl FnMut(&Value) -> bool, quiet: Duration) {
        if let Some(v) = self.backlog.iter().find(|v| pred(v)) {
            let v = v.clone();
            self.fail(&format!("unexpected line {v}"));
        }
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Err(_) => return,
                Ok(None) => self.exited("checking that nothing matching arrives").await,
                Ok(Some(v)) => {
                    self.remember(&v);
                    if pred(&v) {
                        self.fail(&format!("unexpected line {v}"));
                    }
                    self.backlog.push_back(v);
                }
            }
        }
    }

    /// Removes and returns every line received so far (without waiting) that matches `pred`.
    pub fn take_matching(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Vec<Value> {
        self.pull_available();
        let (taken, kept): (Vec<Value>, Vec<Value>) = self.backlog.drain(..).partition(|v| pred(v));
        self.backlog = kept.into();
        taken
    }

    /// Discards every line received so far; returns how many there were.
    pub fn drain(&mut self) -> usize {
        self.pull_available();
        let n = self.backlog.len();
        self.backlog.clear();
        n
    }

    /// Closes the script's stdin (it exits by itself, as when the test process goes away).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `timeout` for the process to exit (after `close` or
    /// [`NodeProcess::close_stdin`]); returns its exit code, or kills it and panics.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status.code();
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill();
                self.fail(&format!("did not exit within {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process (SIGKILL) and waits for it. Lines already printed stay readable.
    pub fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn pull_available(&mut self) {
        while let Ok(v) = self.lines.try_recv() {
            self.remember(&v);
            self.backlog.push_back(v);
        }
    }

    fn remember(&mut self, v: &Value) {
        if self.latest.len() == SHOWN_LINES {
            self.latest.pop_front();
        }
        self.latest.push_back(v.clone());
    }

    async fn recv(&mut self, timeout: Duration, what: &str) -> Value {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(Some(v)) => {
                self.remember(&v);
                v
            }
            Ok(None) => self.exited(&format!("waiting for {what}")).await,
            Err(_) => self.fail(&format!("nothing within {timeout:?} while waiting for {what}")),
        }
    }

    async fn wait_for_described(
        &mut self,
        mut pred: impl FnMut(&Value) -> bool,
        timeout: Duration,
        what: &str,
    ) -> Value {
        self.pull_available();
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i).expect("index from position");
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(v)) => {
                    self.remember(&v);
                    if pred(&v) {
                        return v;
                    }
                    self.backlog.push_back(v);
                }
                Ok(None) => self.exited(&format!("waiting for {what}")).await,
                Err(_) => self.fail(&format!("nothing matching within {timeout:?} while waiting for {what}")),
            }
        }
    }

    async fn exited(&mut self, what: &str) -> ! {
        // stdout is closed: the process is exiting; give it and the stderr reader a moment
        let mut status = None;
        for _ in 0..50 {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(s)) = child.try_wait()
            {
                status = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let status = status.map_or_else(|| "no exit status yet".to_owned(), |s| s.to_string());
        self.fail(&format!("closed its stdout ({status}) while {what}"))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
