//! The identify budget of one bot, shared by all its shards in the process.
//!
//! Two limits (`shared/PROTOCOLS.md` 3.4): `max_concurrency` Identify per 5 s, in buckets
//! (shard `s` uses bucket `s % max_concurrency`, one Identify per bucket per 5 s); and the daily
//! `session_start_limit` (`remaining` of `total`, back to `total` after `reset_after`; Resume does
//! not count). Going over the first earns Invalid Session; over the second, Discord resets the
//! token. [`IdentifyLimiter`] is sans-IO at heart ([`poll_acquire`](IdentifyLimiter::poll_acquire)
//! takes `now` and answers go, wait until, or exhausted) with one async helper
//! ([`acquire`](IdentifyLimiter::acquire)) for the runtime's edge. Share it with `Arc`; the lock
//! is held only for a few arithmetic steps.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::discovery::SessionStartLimit;

/// One bucket's window (the docs: per 5 seconds).
pub const IDENTIFY_WINDOW: Duration = Duration::from_secs(5);

/// The answer to "may shard `s` identify now?".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Yes; the budget was spent.
    Granted,
    /// Not before this instant (the bucket is busy).
    WaitUntil(Instant),
    /// The daily budget is spent; it comes back at this instant.
    Exhausted {
        /// When `remaining` is back to `total`.
        resets_at: Instant,
    },
}

/// The daily budget as last known, for telemetry and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStartReport {
    /// Identifies per period.
    pub total: u32,
    /// Identifies left.
    pub remaining: u32,
    /// Time until `remaining` is back to `total`.
    pub resets_in: Duration,
    /// Buckets per 5 s.
    pub max_concurrency: u32,
    /// Identifies granted by this limiter.
    pub granted: u64,
    /// Times a shard had to wait for its bucket.
    pub waits: u64,
}

#[derive(Debug)]
struct Inner {
    max_concurrency: u32,
    window: Duration,
    /// Per bucket: when it may identify again.
    free_at: HashMap<u32, Instant>,
    total: u32,
    remaining: u32,
    resets_at: Instant,
    reset_after: Duration,
    granted: u64,
    waits: u64,
}

impl Inner {
    fn refill(&mut self, now: Instant) {
        if now >= self.resets_at {
            self.remaining = self.total;
            self.resets_at = now + self.reset_after;
        }
    }
}

/// The identify limiter of one bot. Wrap it in an `Arc` and give every shard a clone.
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use nova_discord::{Acquire, IdentifyLimiter, SessionStartLimit};
///
/// let now = Instant::now();
/// let limit = SessionStartLimit { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 2 };
/// let limiter = Arc::new(IdentifyLimiter::new(&limit, now));
/// assert_eq!(limiter.poll_acquire(0, now), Acquire::Granted);
/// assert_eq!(limiter.poll_acquire(1, now), Acquire::Granted); // another bucket
/// assert_eq!(limiter.poll_acquire(2, now), Acquire::WaitUntil(now + Duration::from_secs(5)));
/// assert_eq!(limiter.report(now).remaining, 997);
/// ```
#[derive(Debug)]
pub struct IdentifyLimiter {
    inner: Mutex<Inner>,
}

impl IdentifyLimiter {
    /// A limiter from discovery's `session_start_limit`, as of `now`.
    #[must_use]
    pub fn new(limit: &SessionStartLimit, now: Instant) -> Self {
        Self::with_window(limit, now, IDENTIFY_WINDOW)
    }

    /// As [`new`](Self::new) with another bucket window (tests, or a future Discord change).
    #[must_use]
    pub fn with_window(limit: &SessionStartLimit, now: Instant, window: Duration) -> Self {
        let reset_after = Duration::from_millis(limit.reset_after);
        Self {
            inner: Mutex::new(Inner {
                max_concurrency: limit.max_concurrency.max(1),
                window,
                free_at: HashMap::new(),
                total: limit.total,
                remaining: limit.remaining.min(limit.total),
                resets_at: now + reset_after,
                reset_after: Duration::from_secs(24 * 3600),
                granted: 0,
                waits: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data is counters and instants, valid after any panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bucket of shard `shard_id`.
    #[must_use]
    pub fn bucket(&self, shard_id: u32) -> u32 {
        shard_id % self.lock().max_concurrency
    }

    /// May shard `shard_id` identify at `now`? `Granted` spends one Identify of the daily budget
    /// and holds its bucket for the window.
    pub fn poll_acquire(&self, shard_id: u32, now: Instant) -> Acquire {
        let mut inner = self.lock();
        inner.refill(now);
        if inner.remaining == 0 {
            return Acquire::Exhausted {
                resets_at: inner.resets_at,
            };
        }
        let bucket = shard_id % inner.max_concurrency;
        if let Some(&free_at) = inner.free_at.get(&bucket)
            && now < free_at
        {
            inner.waits += 1;
            return Acquire::WaitUntil(free_at);
        }
        let window = inner.window;
        inner.free_at.insert(bucket, now + window);
        inner.remaining -= 1;
        inner.granted += 1;
        Acquire::Granted
    }

    /// Waits (tokio timer) until shard `shard_id` may identify, then spends the budget.
    ///
    /// # Errors
    /// The instant the daily budget comes back, when it is spent (do not wait a day inside a
    /// connect: report it and let the application decide).
    pub async fn acquire(&self, shard_id: u32) -> Result<(), Instant> {
        loop {
            // tokio's clock, so a paused test clock drives it too.
            let now = tokio::time::Instant::now().into_std();
            match self.poll_acquire(shard_id, now) {
                Acquire::Granted => return Ok(()),
                Acquire::WaitUntil(at) => {
                    tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                }
                Acquire::Exhausted { resets_at } => return Err(resets_at),
            }
        }
    }

    /// Takes a newer `session_start_limit` (a new discovery). Buckets already held stay held.
    pub fn update(&self, limit: &SessionStartLimit, now: Instant) {
        let mut inner = self.lock();
        inner.max_concurrency = limit.max_concurrency.max(1);
        inner.total = limit.total;
        inner.remaining = limit.remaining.min(limit.total);
        inner.resets_at = now + Duration::from_millis(limit.reset_after);
    }

    /// The budget as of `now`.
    #[must_use]
    pub fn report(&self, now: Instant) -> SessionStartReport {
        let mut inner = self.lock();
        inner.refill(now);
        SessionStartReport {
            total: inner.total,
            remaining: inner.remaining,
            resets_in: inner.resets_at.saturating_duration_since(now),
            max_concurrency: inner.max_concurrency,
            granted: inner.granted,
            waits: inner.waits,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn limit(remaining: u32, max_concurrency: u32) -> SessionStartLimit {
        SessionStartLimit {
            total: 1000,
            remaining,
            reset_after: 60_000,
            max_concurrency,
        }
    }

    #[test]
    fn one_bucket_paces_every_shard() {
        let now = Instant::now();
        let limiter = IdentifyLimiter::new(&limit(1000, 1), now);
        assert_eq!(limiter.poll_acquire(0, now), Acquire::Granted);
        let later = now + IDENTIFY_WINDOW;
        assert_eq!(limiter.poll_acquire(1, now), Acquire::WaitUntil(later));
        assert_eq!(limiter.poll_acquire(1, later), Acquire::Granted);
        let report = limiter.report(later);
        assert_eq!(
            (report.granted, report.waits, report.remaining),
            (2, 1, 998)
        );
    }

    #[test]
    fn buckets_are_shard_mod_concurrency() {
        let now = Instant::now();
        let limiter = IdentifyLimiter::new(&limit(1000, 16), now);
        for shard in 0..16 {
            assert_eq!(
                limiter.poll_acquire(shard, now),
                Acquire::Granted,
                "shard {shard}"
            );
        }
        assert_eq!(limiter.bucket(17), 1);
        assert!(matches!(
            limiter.poll_acquire(17, now),
            Acquire::WaitUntil(_)
        ));
    }

    #[test]
    fn the_daily_budget_runs_out_and_comes_back() {
        let now = Instant::now();
        let limiter = IdentifyLimiter::new(&limit(1, 1), now);
        assert_eq!(limiter.poll_acquire(0, now), Acquire::Granted);
        let resets_at = now + Duration::from_secs(60);
        let next = now + IDENTIFY_WINDOW;
        assert_eq!(
            limiter.poll_acquire(0, next),
            Acquire::Exhausted { resets_at }
        );
        assert_eq!(limiter.report(next).remaining, 0);
        assert_eq!(limiter.poll_acquire(0, resets_at), Acquire::Granted);
        assert_eq!(limiter.report(resets_at).remaining, 999);
    }

    #[test]
    fn update_takes_discovery_numbers() {
        let now = Instant::now();
        let limiter = IdentifyLimiter::new(&limit(10, 1), now);
        limiter.update(&limit(5, 4), now);
        let report = limiter.report(now);
        assert_eq!((report.remaining, report.max_concurrency), (5, 4));
    }

    #[tokio::test(start_paused = true)]
    async fn shards_of_one_process_share_it() {
        let now = tokio::time::Instant::now().into_std();
        let limiter = Arc::new(IdentifyLimiter::new(&limit(1000, 1), now));
        let mut tasks = Vec::new();
        for shard in 0..3 {
            let limiter = Arc::clone(&limiter);
            tasks.push(tokio::spawn(async move {
                limiter
                    .acquire(shard)
                    .await
                    .map(|()| tokio::time::Instant::now())
            }));
        }
        let mut granted_at = Vec::new();
        for task in tasks {
            if let Ok(Ok(at)) = task.await {
                granted_at.push(at.into_std());
            }
        }
        granted_at.sort();
        assert_eq!(granted_at.len(), 3);
        // Paused clock: the instants are exact, not measured.
        assert_eq!(granted_at[1] - granted_at[0], IDENTIFY_WINDOW);
        assert_eq!(granted_at[2] - granted_at[1], IDENTIFY_WINDOW);
    }
}
