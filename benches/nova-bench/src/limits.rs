//! Process resources: the open-file limit, resident memory, and small statistics helpers.

use std::time::Duration;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (or asks for a higher hard limit first,
/// which only works with `CAP_SYS_RESOURCE` outside a restricting namespace). Returns the soft
/// and hard limits in force afterwards.
pub(crate) fn raise_nofile() -> (Option<u64>, Option<u64>) {
    const WANTED: u64 = 1 << 20;
    let wanted = Rlimit {
        current: Some(WANTED),
        maximum: Some(WANTED),
    };
    if setrlimit(Resource::Nofile, wanted).is_err() {
        let limit = getrlimit(Resource::Nofile);
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
    let now = getrlimit(Resource::Nofile);
    (now.current, now.maximum)
}

/// Resident set size of this process in bytes, from `/proc/self/statm` (pages × 4 KiB).
pub(crate) fn rss_bytes() -> u64 {
    const PAGE: u64 = 4096;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * PAGE)
}

/// The median of `values` (the lower middle for an even count); 0 when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
}

/// The quantile `per_mille`/1000 of sorted durations, by nearest rank.
pub(crate) fn quantile(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (per_mille * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds with one decimal.
pub(crate) fn micros(d: Duration) -> f64 {
    (d.as_nanos() as f64 / 100.0).round() / 10.0
}
