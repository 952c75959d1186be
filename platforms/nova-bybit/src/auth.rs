//! `op: auth`: the credentials and the signature Bybit checks.
//!
//! ```text
//! expires   = now_ms + window                       (a time in ms the server must not have reached)
//! signature = hex(HMAC-SHA256(api_secret, "GET/realtime" + expires))   (lowercase, 64 chars)
//! → {"req_id":"1","op":"auth","args":["<api_key>", <expires>, "<signature>"]}
//! ```
//!
//! The server refuses an `expires` at or before its own clock. A client whose clock runs
//! behind the server's by more than the window is refused, so the window
//! ([`BybitConfig::auth_expiry`](crate::BybitConfig::auth_expiry), default 10 s) is wider than
//! the one second Bybit's examples use: ordinary clock skew does not reject it, and a captured
//! auth message is of no use after those seconds (and only over TLS to begin with).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use nova_core::{Secret, Settings};
use serde_json::{Value, json};
use sha2::Sha256;

/// API credentials. `Debug` never shows them.
///
/// ```
/// use nova_bybit::Credentials;
///
/// let credentials = Credentials::new("key", "very-secret");
/// assert!(!format!("{credentials:?}").contains("very-secret"));
/// ```
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The API key.
    pub api_key: Secret,
    /// The API secret.
    pub api_secret: Secret,
}

impl Credentials {
    /// The environment variable holding the API key.
    pub const API_KEY_VAR: &'static str = "BYBIT_API_KEY";
    /// The environment variable holding the API secret.
    pub const API_SECRET_VAR: &'static str = "BYBIT_API_SECRET";

    /// Credentials from a key and a secret.
    #[must_use]
    pub fn new(api_key: impl Into<Secret>, api_secret: impl Into<Secret>) -> Self {
        Self {
            api_key: api_key.into(),
            api_secret: api_secret.into(),
        }
    }

    /// Credentials from `BYBIT_API_KEY` and `BYBIT_API_SECRET`, when both are set and non-empty.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let api_key = std::env::var(Self::API_KEY_VAR)
            .ok()
            .filter(|k| !k.is_empty())?;
        let api_secret = std::env::var(Self::API_SECRET_VAR)
            .ok()
            .filter(|s| !s.is_empty())?;
        Some(Self::new(api_key, api_secret))
    }

    /// Credentials from the `[platforms.bybit]` section of nova's settings.
    #[must_use]
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let platform = settings.platforms.get("bybit")?;
        Some(Self {
            api_key: platform.api_key.clone()?,
            api_secret: platform.api_secret.clone()?,
        })
    }

    /// The `args` of `op: auth` for `expires` (ms since the epoch).
    #[must_use]
    pub fn auth_args(&self, expires: u64) -> Value {
        json!([
            self.api_key.expose(),
            expires,
            signature(self.api_secret.expose(), expires)
        ])
    }
}

/// `hex(HMAC-SHA256(secret, "GET/realtime" + expires))`, lowercase: the signature of `op: auth`.
///
/// ```
/// // Computed with Python's hmac and openssl (PROTOCOLS.md 2.7; Bybit publishes no vector).
/// assert_eq!(
///     nova_bybit::signature("test_secret", 1_662_350_400_000),
///     "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
/// );
/// ```
#[must_use]
pub fn signature(secret: &str, expires: u64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length: this branch is never taken.
        Err(_) => return String::new(),
    };
    mac.update(b"GET/realtime");
    mac.update(expires.to_string().as_bytes());
    let bytes = mac.finalize().into_bytes();
    let mut out = String::with_capacity(64);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// Milliseconds since the Unix epoch, now.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The `expires` of an auth sent now with a validity `window`.
#[must_use]
pub fn expires_in(window: Duration) -> u64 {
    now_ms().saturating_add(u64::try_from(window.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_vectors() {
        // PROTOCOLS.md 2.7: computed locally with Python's hmac and openssl, which agree.
        assert_eq!(
            signature("test_secret", 1_662_350_400_000),
            "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
        );
        assert_eq!(
            signature("AMANDASECRECT", 1_711_010_121_452),
            "c4d35fc20bd27bcaaa7fa8042a1929908faee54c24ad170024b9c0f64b78866b"
        );
    }

    #[test]
    fn auth_args_carry_key_expiry_and_signature_never_the_secret() {
        let c = Credentials::new("k", "test_secret");
        let args = c.auth_args(1_662_350_400_000);
        assert_eq!(
            args,
            json!([
                "k",
                1_662_350_400_000_u64,
                "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
            ])
        );
        assert!(!args.to_string().contains("test_secret"));
    }

    #[test]
    fn expiry_is_ahead_of_now() {
        let now = now_ms();
        assert!(expires_in(Duration::from_secs(10)) >= now + 10_000);
    }
}
