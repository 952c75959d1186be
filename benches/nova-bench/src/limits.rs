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

/// Reads the resident set size of this process from `/proc/self/statm` (pages × 4 KiB).
///
/// The file is opened once, up front: a process that has used up its file descriptors can
/// still read it.
pub(crate) struct Rss {
    file: std::fs::File,
}

impl Rss {
    /// Opens `/proc/self/statm`.
    pub(crate) fn open() -> std::io::Result<Self> {
        Ok(Self {
            file: std::fs::File::open("/proc/self/statm")?,
        })
    }

    /// The resident set size now, in bytes (0 when it cannot be read).
    pub(crate) fn bytes(&mut self) -> u64 {
        use std::io::{Read, Seek};
        const PAGE: u64 = 4096;
        let mut text = String::new();
        if self.file.rewind().is_err() || self.file.read_to_string(&mut text).is_err() {
            return 0;
        }
        text.split_whitespace()
            .nth(1)
            .and_then(|pages| pages.parse::<u64>().ok())
            .map_or(0, |pages| pages * PAGE)
    }
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

/// CPU time (user + system) of this process, from `/proc/self/stat`, and of one of its threads
/// when `tid` is given (`/proc/self/task/TID/stat`), in clock ticks (1/100 s on Linux).
pub(crate) fn cpu_ticks(tid: Option<u32>) -> u64 {
    let path = match tid {
        Some(tid) => format!("/proc/self/task/{tid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at field 3.
    field(11) + field(12)
}

/// The id of the calling thread, from `/proc/thread-self`.
pub(crate) fn thread_id() -> Option<u32> {
    std::fs::read_link("/proc/thread-self")
        .ok()?
        .file_name()?
        .to_str()?
        .parse()
        .ok()
}
