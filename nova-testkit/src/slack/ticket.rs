//! Single-use connection tickets, as `apps.connections.open` hands them out.
//!
//! Every successful `apps.connections.open` issues a ticket that goes into the WebSocket URL
//! (`/link/?ticket=...`). A ticket opens one connection: the second handshake with it is
//! refused, and so is one after the ticket's lifetime. At most [`MAX_TICKETS`] tickets are
//! remembered; past that the expired ones are forgotten (a forgotten ticket is refused as
//! unknown, which is still a refusal).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How many tickets are remembered before expired ones are forgotten.
pub(super) const MAX_TICKETS: usize = 4096;

/// Why a ticket was refused at the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Never issued (or long forgotten).
    Unknown,
    /// Already used by an earlier handshake.
    Reused,
    /// Older than the ticket lifetime.
    Expired,
}

#[derive(Debug)]
struct Ticket {
    issued: Instant,
    used: bool,
}

/// The tickets issued so far.
#[derive(Debug, Default)]
pub(super) struct Tickets {
    issued: HashMap<String, Ticket>,
}

impl Tickets {
    /// Remembers a newly issued ticket.
    pub(super) fn issue(&mut self, ticket: String, now: Instant, lifetime: Duration) {
        if self.issued.len() >= MAX_TICKETS {
            self.issued
                .retain(|_, t| now.saturating_duration_since(t.issued) <= lifetime);
        }
        self.issued.insert(
            ticket,
            Ticket {
                issued: now,
                used: false,
            },
        );
    }

    /// Uses `ticket` for a handshake at `now`: `Ok` once, a [`Refusal`] after that.
    pub(super) fn redeem(
        &mut self,
        ticket: &str,
        now: Instant,
        lifetime: Duration,
    ) -> Result<(), Refusal> {
        let Some(entry) = self.issued.get_mut(ticket) else {
            return Err(Refusal::Unknown);
        };
        if entry.used {
            return Err(Refusal::Reused);
        }
        if now.saturating_duration_since(entry.issued) > lifetime {
            return Err(Refusal::Expired);
        }
        entry.used = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_expiry() {
        let lifetime = Duration::from_secs(30);
        let now = Instant::now();
        let mut tickets = Tickets::default();
        tickets.issue("a".into(), now, lifetime);
        tickets.issue("b".into(), now, lifetime);
        assert_eq!(tickets.redeem("a", now, lifetime), Ok(()));
        assert_eq!(tickets.redeem("a", now, lifetime), Err(Refusal::Reused));
        assert_eq!(tickets.redeem("x", now, lifetime), Err(Refusal::Unknown));
        let later = now + Duration::from_secs(31);
        assert_eq!(tickets.redeem("b", later, lifetime), Err(Refusal::Expired));
    }

    #[test]
    fn bounded() {
        let lifetime = Duration::from_millis(1);
        let start = Instant::now();
        let mut tickets = Tickets::default();
        for i in 0..(MAX_TICKETS * 2) {
            tickets.issue(
                i.to_string(),
                start + Duration::from_millis(i as u64),
                lifetime,
            );
        }
        assert!(tickets.issued.len() <= MAX_TICKETS + 1);
    }
}
