//! `shoal` child processes: started, their log (stderr) read line by line, signalled,
//! waited for, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::SHOAL;

/// The log line `shoal serve` prints once it listens, followed by its address.
pub const SERVE_LISTENING: &str = "shoal listening on http://";
/// The log line `shoal balance` prints once it listens, followed by its address.
pub const BALANCE_LISTENING: &str = "shoal balance listening on http://";
/// How long [`Shoal::serve`] and [`Shoal::balance`] wait for the "listening" line.
pub const START_WITHIN: Duration = Duration::from_secs(60);

/// The lines a child wrote to its stderr so far, and whether the stream has ended.
#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    ended: bool,
}

/// [`Lines`], filled by a reader thread, with a condition variable signalled at every line.
type SharedLines = Arc<(Mutex<Lines>, Condvar)>;

/// Reads `stderr` line by line on a thread of its own, until it ends (so that the child
/// never blocks on a full pipe); echoes each line when `SHOAL_TEST_LOG` or
/// `SHOAL_NODE_LOG` is set.
fn capture(stderr: ChildStderr) -> SharedLines {
    let shared = SharedLines::default();
    let sink = shared.clone();
    let echo = std::env::var_os("SHOAL_TEST_LOG").is_some() || std::env::var_os("SHOAL_NODE_LOG").is_some();
    std::thread::spawn(move || {
        let (lines, changed) = &*sink;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("[shoal] {line}");
            }
            lines.lock().unwrap().lines.push(line);
            changed.notify_all();
        }
        lines.lock().unwrap().ended = true;
        changed.notify_all();
    });
    shared
}

/// Sends `signal` (by name: `TERM`, `INT`, `USR1`, `KILL`...) to process `pid` with the
/// `kill` command; asserts that it succeeded.
pub fn signal_pid(pid: u32, signal: &str) {
    let ok = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
    assert!(ok.success(), "kill -{signal} {pid} failed");
}

/// A running `shoal` process (`serve`, `balance`...), its stderr (the log) captured line
/// by line; killed if still running when dropped.
pub struct Shoal {
    pub child: Child,
    /// The address of its "listening" line (`0.0.0.0:0` for a process started with
    /// [`Shoal::spawn`] and not waited for).
    pub addr: SocketAddr,
    /// The node id (`node=`) of its "listening" line, if it names one (else empty).
    pub id: String,
    log: SharedLines,
    /// The log lines taken so far: those up to the "listening" line, then those returned
    /// by [`Shoal::new_lines`].
    taken: AtomicUsize,
    /// The index of its "listening" line in the log.
    listening_at: usize,
}

impl Shoal {
    /// Starts `shoal <args>` (stdin and stdout null, `SHOAL_REDIS_URL` removed from its
    /// environment) without waiting for anything.
    pub fn spawn(args: &[&str]) -> Shoal {
        let mut child = Command::new(SHOAL)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("SHOAL_REDIS_URL")
            .spawn()
            .expect("spawn shoal");
        let log = capture(child.stderr.take().expect("piped stderr"));
        Shoal {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            id: String::new(),
            log,
            taken: AtomicUsize::new(0),
            listening_at: 0,
        }
    }

    /// Starts `shoal <args>` and waits, at most `within`, for the log line containing
    /// `marker` followed by the bound address; kills it and panics (with its log) if none
    /// comes.
    pub fn start(args: &[&str], marker: &str, within: Duration) -> Shoal {
        let mut shoal = Shoal::spawn(args);
        let Some(at) = shoal.find_line(0, |l| l.contains(marker), within) else {
            let _ = shoal.child.kill();
            panic!("shoal {args:?}: no {marker:?} line within {within:?}; log so far:\n{}", shoal.lines().join("\n"));
        };
        let line = shoal.lines().swap_remove(at);
        let rest = line.split(marker).nth(1).unwrap_or_default();
        let addr = rest.split_whitespace().next().unwrap_or_default();
        shoal.addr = addr.parse().unwrap_or_else(|e| panic!("bad address in {line:?}: {e}"));
        let id = line.split("node=").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
        shoal.id = id.trim_end_matches(':').to_owned();
        shoal.listening_at = at;
        shoal.taken = AtomicUsize::new(at + 1);
        shoal
    }

    /// `shoal serve --port 0 --host 127.0.0.1 <args>`, listening within [`START_WITHIN`].
    pub fn serve(args: &[&str]) -> Shoal {
        Shoal::serve_within(args, START_WITHIN)
    }

    /// `shoal serve --port 0 --host 127.0.0.1 <args>`, listening within `within`.
    pub fn serve_within(args: &[&str], within: Duration) -> Shoal {
        let all = [&["serve", "--port", "0", "--host", "127.0.0.1"][..], args].concat();
        Shoal::start(&all, SERVE_LISTENING, within)
    }

    /// `shoal balance <args>`, listening within [`START_WITHIN`].
    pub fn balance(args: &[&str]) -> Shoal {
        Shoal::start(&[&["balance"][..], args].concat(), BALANCE_LISTENING, START_WITHIN)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (by name: `TERM`, `INT`, `USR1`, `KILL`...) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        signal_pid(self.pid(), signal);
    }

    /// SIGKILL, and waits for the exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
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

    /// Every log line so far.
    pub fn lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().lines.clone()
    }

    /// The log lines before the "listening" line.
    pub fn startup(&self) -> Vec<String> {
        let lines = &self.log.0.lock().unwrap().lines;
        lines[..self.listening_at.min(lines.len())].to_vec()
    }

    /// The log lines not taken yet (after the "listening" line, and after those of the
    /// previous call); takes them.
    pub fn new_lines(&self) -> Vec<String> {
        let lines = &self.log.0.lock().unwrap().lines;
        let from = self.taken.swap(lines.len(), Ordering::SeqCst);
        lines[from.min(lines.len())..].to_vec()
    }

    /// Waits, at most `within`, for a log line matching `pred` (any line since the start);
    /// returns it, or panics with the log.
    pub fn wait_line(&self, pred: impl FnMut(&str) -> bool, within: Duration) -> String {
        match self.find_line(0, pred, within) {
            Some(at) => self.lines().swap_remove(at),
            None => panic!("no such log line within {within:?}; log:\n{}", self.lines().join("\n")),
        }
    }

    /// The index of the first log line from index `from` on that matches `pred`, waiting
    /// for it at most `within` (and not once the log has ended).
    fn find_line(&self, from: usize, mut pred: impl FnMut(&str) -> bool, within: Duration) -> Option<usize> {
        let deadline = Instant::now() + within;
        let (lines, changed) = &*self.log;
        let mut log = lines.lock().unwrap();
        let mut at = from;
        loop {
            while at < log.lines.len() {
                if pred(&log.lines[at]) {
                    return Some(at);
                }
                at += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if log.ended || left.is_zero() {
                return None;
            }
            log = changed.wait_timeout(log, left).unwrap().0;
        }
    }
}

impl Drop for Shoal {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
