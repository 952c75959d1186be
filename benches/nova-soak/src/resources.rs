//! Memory and task counts over a run: samples of the process's RSS (`VmRSS` in
//! `/proc/self/status`), tokio's live tasks and its global queue, and the plateau criterion a
//! run must meet.
//!
//! The criterion: after a warm-up (a fifth of the run, at least 10 s), the highest sample of
//! the last quarter may exceed the highest of the first quarter by at most 10 % plus a fixed
//! allowance (8 MiB of RSS, 64 tasks). A leak of a connection's worth per fault grows linearly
//! and fails it; the noise of allocator arenas and timers does not.

use std::time::Duration;

/// One sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Since the start of the run.
    pub(crate) at: Duration,
    /// Resident set, KiB.
    pub(crate) rss_kib: u64,
    /// Tokio tasks alive.
    pub(crate) tasks: u64,
    /// Tasks waiting in tokio's global queue.
    pub(crate) global_queue: u64,
}

/// The resident set of this process, KiB (0 where `/proc` is not available).
pub(crate) fn rss_kib() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A sample now.
pub(crate) fn sample(at: Duration) -> Sample {
    let metrics = tokio::runtime::Handle::current().metrics();
    Sample {
        at,
        rss_kib: rss_kib(),
        tasks: metrics.num_alive_tasks() as u64,
        global_queue: metrics.global_queue_depth() as u64,
    }
}

/// What the plateau check found for one quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Plateau {
    /// The highest sample of the first quarter after the warm-up.
    pub(crate) early: u64,
    /// The highest sample of the last quarter.
    pub(crate) late: u64,
    /// The most `late` may be.
    pub(crate) bound: u64,
}

impl Plateau {
    /// Whether the quantity plateaued.
    pub(crate) fn holds(&self) -> bool {
        self.late <= self.bound
    }
}

/// Applies the criterion to `value` of `samples` of a run of `run` length; `None` when there
/// are too few samples after the warm-up to judge.
pub(crate) fn plateau(
    samples: &[Sample],
    run: Duration,
    value: impl Fn(&Sample) -> u64,
    allowance: u64,
) -> Option<Plateau> {
    let warm = (run / 5).max(Duration::from_secs(10));
    let post: Vec<u64> = samples
        .iter()
        .filter(|s| s.at >= warm)
        .map(&value)
        .collect();
    if post.len() < 8 {
        return None;
    }
    let q = post.len() / 4;
    let early = post[..q].iter().copied().max().unwrap_or(0);
    let late = post[post.len() - q..].iter().copied().max().unwrap_or(0);
    Some(Plateau {
        early,
        late,
        bound: early + early / 10 + allowance,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(f: impl Fn(u64) -> u64) -> Vec<Sample> {
        (0..100)
            .map(|i| Sample {
                at: Duration::from_secs(i),
                rss_kib: f(i),
                tasks: 10,
                global_queue: 0,
            })
            .collect()
    }

    #[test]
    fn a_plateau_passes_and_a_linear_leak_fails() {
        let flat = run(|i| 50_000 + (i % 7) * 300 + if i < 10 { 0 } else { 20_000 });
        let p = plateau(&flat, Duration::from_secs(100), |s| s.rss_kib, 8192).unwrap();
        assert!(p.holds(), "{p:?}");
        let leak = run(|i| 50_000 + i * 400);
        let p = plateau(&leak, Duration::from_secs(100), |s| s.rss_kib, 8192).unwrap();
        assert!(!p.holds(), "{p:?}");
        assert!(plateau(&leak[..12], Duration::from_secs(12), |s| s.tasks, 64).is_none());
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_kib() > 0);
    }
}
