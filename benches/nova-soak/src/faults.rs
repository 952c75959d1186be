//! The fault repertoire and the seeded schedule that draws from it.
//!
//! Every draw comes from one `StdRng` seeded with `--seed`: which fault, which client or
//! platform, how long. The same seed gives the same sequence of faults at the same offsets;
//! what the clients are doing when each lands depends on scheduling, so a replay reproduces
//! the faults exactly and the interleaving closely.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng};

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum FaultKind {
    /// The relay resets the client's connection.
    Rst,
    /// The relay ends the connection with a FIN, no close frame.
    Fin,
    /// The relay forwards nothing for a while (a half-open peer).
    Stall,
    /// A frame with a reserved opcode.
    Malformed,
    /// A text frame that is not UTF-8.
    InvalidUtf8,
    /// A frame header past the client's size limit.
    Oversized,
    /// The next handshakes are answered 503 with `Retry-After`, and the connection reset.
    RefusedHandshake,
    /// The simulator closes every connection with a close code.
    CloseCode,
    /// The application stops reading its streams for a while.
    SlowConsumer,
    /// The simulator loses one update of every book.
    SequenceSkip,
    /// The simulator goes silent for a while.
    Silent,
    /// The simulator dies, stays down, and comes back at a new address behind the relays.
    ServerRestart,
}

impl FaultKind {
    /// Every kind, with its weight in the draw.
    pub(crate) const WEIGHTS: [(FaultKind, u32); 12] = [
        (FaultKind::Rst, 12),
        (FaultKind::Fin, 10),
        (FaultKind::Stall, 9),
        (FaultKind::Malformed, 7),
        (FaultKind::InvalidUtf8, 7),
        (FaultKind::Oversized, 7),
        (FaultKind::RefusedHandshake, 8),
        (FaultKind::CloseCode, 6),
        (FaultKind::SlowConsumer, 12),
        (FaultKind::SequenceSkip, 12),
        (FaultKind::Silent, 3),
        (FaultKind::ServerRestart, 3),
    ];

    /// Its name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rst => "rst",
            Self::Fin => "fin",
            Self::Stall => "stall",
            Self::Malformed => "malformed_frame",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Oversized => "oversized_frame",
            Self::RefusedHandshake => "refused_handshake",
            Self::CloseCode => "close_code",
            Self::SlowConsumer => "slow_consumer",
            Self::SequenceSkip => "sequence_skip",
            Self::Silent => "server_silent",
            Self::ServerRestart => "server_restart",
        }
    }
}

/// The close codes a simulator closes with: normal, going away, internal error, service
/// restart, try again later, and an application code.
pub(crate) const CLOSE_CODES: [u16; 6] = [1000, 1001, 1011, 1012, 1013, 4000];

/// One fault, fully drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fault {
    /// When, since the start of the run.
    pub(crate) at: Duration,
    /// What.
    pub(crate) kind: FaultKind,
    /// The client it hits (for a simulator fault: the platform of this client).
    pub(crate) client: usize,
    /// How long it lasts (stalls, pauses, silences, downtime), or how many handshakes are
    /// refused.
    pub(crate) length: Duration,
    /// The close code, for [`FaultKind::CloseCode`].
    pub(crate) code: u16,
    /// Handshakes refused, for [`FaultKind::RefusedHandshake`].
    pub(crate) refusals: u32,
}

/// The seeded schedule.
#[derive(Debug)]
pub(crate) struct Schedule {
    rng: StdRng,
    clients: usize,
    mean_gap: Duration,
    next_at: Duration,
}

impl Schedule {
    /// A schedule over `clients` clients with faults `mean_gap` apart on average.
    pub(crate) fn new(seed: u64, clients: usize, mean_gap: Duration) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            clients: clients.max(1),
            mean_gap,
            next_at: Duration::ZERO,
        }
    }

    /// The next fault.
    pub(crate) fn next_fault(&mut self) -> Fault {
        // Exponential gaps (a Poisson process), capped at ten times the mean.
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let gap = self.mean_gap.mul_f64((-u.ln()).min(10.0));
        self.next_at += gap;
        let total: u32 = FaultKind::WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut pick = self.rng.random_range(0..total);
        let mut kind = FaultKind::Rst;
        for (k, w) in FaultKind::WEIGHTS {
            if pick < w {
                kind = k;
                break;
            }
            pick -= w;
        }
        let client = self.rng.random_range(0..self.clients);
        let length = match kind {
            FaultKind::Stall => Duration::from_millis(self.rng.random_range(500..7_000)),
            FaultKind::SlowConsumer => Duration::from_millis(self.rng.random_range(500..10_000)),
            FaultKind::Silent => Duration::from_millis(self.rng.random_range(500..5_000)),
            FaultKind::ServerRestart => Duration::from_millis(self.rng.random_range(300..3_000)),
            _ => Duration::ZERO,
        };
        let code = CLOSE_CODES[self.rng.random_range(0..CLOSE_CODES.len())];
        let refusals = self.rng.random_range(1..4);
        Fault {
            at: self.next_at,
            kind,
            client,
            length,
            code,
            refusals,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_every_kind_comes_up() {
        let mut a = Schedule::new(42, 10, Duration::from_millis(100));
        let mut b = Schedule::new(42, 10, Duration::from_millis(100));
        let fa: Vec<Fault> = (0..2000).map(|_| a.next_fault()).collect();
        let fb: Vec<Fault> = (0..2000).map(|_| b.next_fault()).collect();
        assert_eq!(fa, fb);
        for (kind, _) in FaultKind::WEIGHTS {
            assert!(fa.iter().any(|f| f.kind == kind), "{kind:?}");
        }
        assert!(fa.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(fa.iter().all(|f| f.client < 10));
        let mut c = Schedule::new(43, 10, Duration::from_millis(100));
        assert_ne!(
            fa[..20],
            (0..20).map(|_| c.next_fault()).collect::<Vec<_>>()[..]
        );
    }
}
