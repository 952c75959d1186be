//! `public/auth`: credentials, signatures, tokens.
//!
//! `client_signature` is checked as Deribit documents it:
//! `signature = hex(HMAC-SHA256(client_secret, timestamp + "\n" + nonce + "\n" + data))`, with
//! an empty `data` when it is omitted, a timestamp (ms) no older than the signature window and
//! a nonce used only once within that window. Tokens are random strings shaped like Deribit's
//! (`{issued_ms}.{id}.{random}`), scoped to the connection.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The most nonces remembered: older ones are forgotten first (their timestamps are stale by
/// then in any realistic run).
const NONCES_KEPT: usize = 100_000;

/// `hex(HMAC-SHA256(secret, timestamp \n nonce \n data))`.
pub(super) fn signature(secret: &str, timestamp: u64, nonce: &str, data: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp}\n{nonce}\n{data}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Lowercase hex of `bytes`.
pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Constant-time comparison of two strings (the signature check).
pub(super) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Nonces seen, so each is used once.
#[derive(Debug, Default)]
pub(super) struct Nonces {
    seen: HashMap<(String, String), Instant>,
    order: VecDeque<(String, String)>,
}

impl Nonces {
    /// Records `(client_id, nonce)`; returns false when it was already used within `window`.
    pub(super) fn use_once(
        &mut self,
        client_id: &str,
        nonce: &str,
        now: Instant,
        window: Duration,
    ) -> bool {
        let key = (client_id.to_owned(), nonce.to_owned());
        if let Some(at) = self.seen.get(&key) {
            if now.saturating_duration_since(*at) < window {
                return false;
            }
        }
        if self.seen.insert(key.clone(), now).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > NONCES_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

/// A small deterministic generator (xorshift64*) for prices and token bytes.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// An integer in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A token string: `{issued_ms}.{tag}.{48 hex chars}`.
    pub(super) fn token(&mut self, issued_ms: u64, tag: &str) -> String {
        let mut bytes = [0u8; 24];
        for chunk in bytes.chunks_mut(8) {
            let n = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
        format!("{issued_ms}.{tag}.{}", hex(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_worked_example() {
        assert_eq!(
            signature("AMANDASECRECT", 1_576_074_319_000, "1iqt2wls", ""),
            "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"
        );
    }

    #[test]
    fn nonces_are_single_use() {
        let mut nonces = Nonces::default();
        let now = Instant::now();
        let window = Duration::from_secs(60);
        assert!(nonces.use_once("a", "n1", now, window));
        assert!(!nonces.use_once("a", "n1", now, window));
        assert!(nonces.use_once("b", "n1", now, window));
    }

    #[test]
    fn comparison() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
