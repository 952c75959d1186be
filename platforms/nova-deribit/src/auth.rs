//! Credentials and `public/auth`'s parameters for each grant.
//!
//! - `client_credentials`: the client id and secret, sent as they are.
//! - `client_signature`: the secret never leaves the process; the request carries
//!   `signature = hex(HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + data))`, a timestamp
//!   (ms, valid for 60 s) and a single-use nonce. Both newlines are always present, even with
//!   empty `data`.
//! - `refresh_token`: a new token pair from the last refresh token, on the same connection.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use nova_core::Secret;
use serde_json::{Value, json};
use sha2::Sha256;

/// Which grant authenticates a new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Grant {
    /// `client_credentials`: the secret goes over the (TLS) connection.
    ClientCredentials,
    /// `client_signature`: an HMAC-SHA256 signature instead of the secret (the default).
    #[default]
    ClientSignature,
}

/// An API key: client id and secret. `Debug` never shows the secret.
///
/// ```
/// use nova_deribit::Credentials;
///
/// let creds = Credentials::new("AMANDA", "AMANDASECRECT");
/// assert!(!format!("{creds:?}").contains("AMANDASECRECT"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
}

impl Credentials {
    /// Credentials from an id and a secret.
    #[must_use]
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<Secret>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
        }
    }

    /// Credentials from `DERIBIT_CLIENT_ID` and `DERIBIT_CLIENT_SECRET`, when both are set.
    #[must_use]
    pub fn from_env() -> Option<Self> {
        let id = std::env::var("DERIBIT_CLIENT_ID").ok()?;
        let secret = std::env::var("DERIBIT_CLIENT_SECRET").ok()?;
        (!id.is_empty() && !secret.is_empty()).then(|| Self::new(id, secret))
    }

    /// `public/auth` params for the `client_credentials` grant.
    #[must_use]
    pub fn client_credentials_params(&self) -> Value {
        json!({
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose(),
        })
    }

    /// `public/auth` params for the `client_signature` grant, signed now with `nonce` and `data`.
    #[must_use]
    pub fn client_signature_params(&self, timestamp_ms: u64, nonce: &str, data: &str) -> Value {
        let signature = client_signature(self.client_secret.expose(), timestamp_ms, nonce, data);
        json!({
            "grant_type": "client_signature",
            "client_id": self.client_id,
            "timestamp": timestamp_ms,
            "nonce": nonce,
            "data": data,
            "signature": signature,
        })
    }
}

/// `public/auth` params for the `refresh_token` grant.
#[must_use]
pub fn refresh_params(refresh_token: &str) -> Value {
    json!({"grant_type": "refresh_token", "refresh_token": refresh_token})
}

/// `hex(HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + data))`, as Deribit's
/// `client_signature` grant expects.
///
/// ```
/// // The docs' worked example.
/// assert_eq!(
///     nova_deribit::client_signature("AMANDASECRECT", 1576074319000, "1iqt2wls", ""),
///     "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"
/// );
/// ```
#[must_use]
pub fn client_signature(secret: &str, timestamp_ms: u64, nonce: &str, data: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length: this cannot happen.
        return String::new();
    };
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(nonce.as_bytes());
    mac.update(b"\n");
    mac.update(data.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A fresh nonce: 16 random alphanumerics.
pub(crate) fn nonce() -> String {
    use rand::RngExt as _;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official example from Deribit's docs: ClientId `AMANDA`, ClientSecret
    /// `AMANDASECRECT`, Timestamp `1576074319000`, Nonce `1iqt2wls`, Data `""`.
    #[test]
    fn the_docs_official_client_signature_example() {
        let creds = Credentials::new("AMANDA", "AMANDASECRECT");
        let params = creds.client_signature_params(1_576_074_319_000, "1iqt2wls", "");
        assert_eq!(
            params,
            json!({"grant_type": "client_signature", "client_id": "AMANDA", "timestamp": 1_576_074_319_000u64,
                   "nonce": "1iqt2wls", "data": "",
                   "signature": "56590594f97921b09b18f166befe0d1319b198bbcdad7ca73382de2f88fe9aa1"})
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 16);
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let creds = Credentials::new("id", "s3cr3t");
        assert!(!format!("{creds:?}").contains("s3cr3t"));
    }
}
