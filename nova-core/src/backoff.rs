//! Reconnect delays: exponential, linear or constant, capped, with jitter.
//!
//! For attempt `n` (0 for the first reconnect) the base delay is
//! `initial * 2^n` (exponential), `initial * (n + 1)` (linear) or `initial` (constant), capped at
//! `max`. Jitter then takes a uniformly random part of up to `jitter * base` off, so that many
//! clients dropped at once do not come back in lockstep, and a delay never exceeds the cap.
//! A floor of 10 ms (or `initial`, if smaller) keeps even full jitter from producing a tight loop.

use std::time::Duration;

use rand::{Rng, RngExt as _};

/// How reconnect delays grow with consecutive attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReconnectStrategy {
    /// `initial * 2^attempt`, capped.
    #[default]
    Exponential,
    /// `initial * (attempt + 1)`, capped.
    Linear,
    /// Always `initial`.
    Constant,
}

/// A reconnect delay policy.
///
/// ```
/// use std::time::Duration;
/// use nova_core::{Backoff, ReconnectStrategy};
///
/// let b = Backoff::new(ReconnectStrategy::Exponential, Duration::from_millis(250), Duration::from_secs(30));
/// assert_eq!(b.base_delay(0), Duration::from_millis(250));
/// assert_eq!(b.base_delay(3), Duration::from_secs(2));
/// assert_eq!(b.base_delay(20), Duration::from_secs(30));
/// let d = b.with_jitter(0.2).delay(3);
/// assert!(d <= Duration::from_secs(2) && d >= Duration::from_millis(1600));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    strategy: ReconnectStrategy,
    initial: Duration,
    max: Duration,
    jitter: f64,
}

/// The smallest delay jitter may produce (unless `initial` itself is smaller).
const FLOOR: Duration = Duration::from_millis(10);

impl Backoff {
    /// A policy without jitter.
    #[must_use]
    pub fn new(strategy: ReconnectStrategy, initial: Duration, max: Duration) -> Self {
        Self {
            strategy,
            initial,
            max: max.max(initial),
            jitter: 0.0,
        }
    }

    /// The same policy with a jitter fraction in `0.0..=1.0` (clamped).
    #[must_use]
    pub fn with_jitter(self, jitter: f64) -> Self {
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self { jitter, ..self }
    }

    /// The delay before attempt `attempt` (0-based) without jitter.
    #[must_use]
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let d = match self.strategy {
            ReconnectStrategy::Exponential => {
                let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
                self.initial.saturating_mul(factor)
            }
            ReconnectStrategy::Linear => self.initial.saturating_mul(attempt.saturating_add(1)),
            ReconnectStrategy::Constant => self.initial,
        };
        d.min(self.max)
    }

    /// The delay before attempt `attempt`, jitter applied with the thread's RNG.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, &mut rand::rng())
    }

    /// The delay before attempt `attempt`, jitter drawn from `rng` (for reproducible tests).
    #[must_use]
    pub(crate) fn delay_with(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let base = self.base_delay(attempt);
        if self.jitter == 0.0 {
            return base;
        }
        let cut = base.mul_f64(self.jitter * rng.random::<f64>());
        base.saturating_sub(cut).max(FLOOR.min(self.initial))
    }

    /// The smallest delay [`delay`](Self::delay) can return for `attempt`.
    #[must_use]
    pub fn min_delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        base.saturating_sub(base.mul_f64(self.jitter))
            .max(FLOOR.min(self.initial))
            .min(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn exponential_doubles_and_caps() {
        let b = Backoff::new(
            ReconnectStrategy::Exponential,
            MS(250),
            Duration::from_secs(30),
        );
        let got: Vec<_> = (0..10).map(|n| b.base_delay(n).as_millis()).collect();
        assert_eq!(
            got,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn linear_and_constant() {
        let l = Backoff::new(ReconnectStrategy::Linear, MS(1000), Duration::from_secs(5));
        let got: Vec<_> = (0..7).map(|n| l.base_delay(n).as_millis()).collect();
        assert_eq!(got, [1000, 2000, 3000, 4000, 5000, 5000, 5000]);
        let c = Backoff::new(ReconnectStrategy::Constant, MS(700), Duration::from_secs(5));
        assert!((0..5).all(|n| c.base_delay(n) == MS(700)));
    }

    #[test]
    fn jitter_stays_within_bounds_and_varies() {
        let b = Backoff::new(
            ReconnectStrategy::Exponential,
            MS(250),
            Duration::from_secs(30),
        )
        .with_jitter(0.5);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let d = b.delay_with(4, &mut rng);
            assert!(d <= MS(4000) && d >= MS(2000), "{d:?}");
            seen.insert(d);
        }
        assert!(
            seen.len() > 100,
            "jitter should spread delays, got {} distinct",
            seen.len()
        );
        assert_eq!(b.min_delay(4), MS(2000));
    }

    #[test]
    fn full_jitter_never_goes_below_the_floor() {
        let b = Backoff::new(ReconnectStrategy::Constant, MS(250), MS(250)).with_jitter(1.0);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert!((0..10_000).all(|_| b.delay_with(0, &mut rng) >= FLOOR));
        assert_eq!(
            Backoff::new(ReconnectStrategy::Constant, MS(1), MS(1))
                .with_jitter(f64::NAN)
                .delay(0),
            MS(1)
        );
    }
}
