//! Latency percentiles and readings of `/proc`.

use std::time::Duration;

/// Latency samples in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<u32>,
}

impl Latencies {
    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        self.samples.push(d.as_micros().min(u128::from(u32::MAX)) as u32);
    }

    /// Adds all of `other`'s samples.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True if there is no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `p`-th percentile (0..=100) in microseconds (nearest rank), 0 when empty.
    pub fn percentile(&mut self, p: f64) -> u32 {
        if self.samples.is_empty() {
            return 0;
        }
        self.samples.sort_unstable();
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }
}

/// CPU time and memory of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// CPU time used so far (all threads), in seconds.
    pub cpu_s: f64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/<pid>` (`None` if the process is gone). CPU time is the sum of the
/// threads' run time from `schedstat` (nanoseconds), which is far more precise than the
/// 10 ms ticks of `stat`; it falls back to `stat` if schedstat is unavailable.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cpu_s = schedstat_cpu(pid).or_else(|| stat_cpu(pid))?;
    Some(ProcSample { cpu_s, rss_kib })
}

/// The current process.
pub fn sample_self() -> ProcSample {
    sample(std::process::id()).unwrap_or_default()
}

fn schedstat_cpu(pid: u32) -> Option<f64> {
    let mut total_ns: u64 = 0;
    let mut any = false;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(s) = std::fs::read_to_string(entry.path().join("schedstat")) else { continue };
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            total_ns += ns;
            any = true;
        }
    }
    any.then(|| total_ns as f64 / 1e9)
}

fn stat_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // after ")": state is field 3; utime and stime are fields 14 and 15
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The soft limit on open files of this process.
pub fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        assert_eq!(l.percentile(50.0), 0);
        for i in 1..=100 {
            l.record(Duration::from_micros(i));
        }
        assert_eq!(l.percentile(50.0), 50);
        assert_eq!(l.percentile(99.0), 99);
        assert_eq!(l.percentile(100.0), 100);
        assert_eq!(l.percentile(0.0), 1);
        let mut one = Latencies::default();
        one.record(Duration::from_millis(3));
        assert_eq!(one.percentile(99.9), 3000);
    }

    #[test]
    fn reads_its_own_process() {
        let before = sample_self();
        // burn a little CPU
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let after = sample_self();
        assert!(after.rss_kib > 0);
        assert!(after.cpu_s > before.cpu_s, "{before:?} {after:?}");
        assert!(open_files_limit() > 0);
    }
}
