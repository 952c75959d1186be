//! Identifiers the simulator makes up: tickets, envelope ids, event ids.
//!
//! A splitmix64 generator seeded once per simulator from the standard library's random
//! hasher keys: tickets are not guessable from one run to the next, and no crypto crate is
//! needed for a test server. Envelope ids look like Slack's (a UUID-shaped string).

use std::hash::{BuildHasher, RandomState};

/// A splitmix64 generator (Steele, Lea and Flood, 2014): tiny, fast, good enough for ids.
#[derive(Debug)]
pub(super) struct Ids {
    state: u64,
}

impl Ids {
    /// A generator seeded from the process's random hasher keys.
    pub(super) fn new() -> Self {
        Self {
            state: RandomState::new().hash_one(0x5eed_u64),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A UUID-shaped id (version 4 layout), as Slack's envelope ids are.
    pub(super) fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    /// A ticket: 32 hex digits.
    pub(super) fn ticket(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape_and_uniqueness() {
        let mut ids = Ids::new();
        let a = ids.uuid();
        let b = ids.uuid();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        assert_eq!(lens, vec![8, 4, 4, 4, 12]);
        assert!(parts[2].starts_with('4'));
        assert_eq!(ids.ticket().len(), 32);
    }
}
