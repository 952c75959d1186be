//! `op: auth`: the signature Bybit documents, and the check of `expires`.
//!
//! `signature = hex(HMAC-SHA256(api_secret, "GET/realtime" + expires))`, lowercase, where
//! `expires` is a time in ms that must be later than the server's clock. Bybit's docs show
//! `expires` as a JSON number; some clients send a string: both are accepted.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// `hex(HMAC-SHA256(secret, "GET/realtime" + expires))`: what `op: auth` must carry.
///
/// ```
/// // A vector computed with Python's hmac and openssl (not published by Bybit).
/// assert_eq!(
///     nova_testkit::bybit::signature("test_secret", 1662350400000),
///     "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
/// );
/// ```
#[must_use]
pub fn signature(secret: &str, expires: u64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        // HMAC accepts keys of any length; this branch cannot be taken.
        Err(_) => return String::new(),
    };
    mac.update(format!("GET/realtime{expires}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Constant-time comparison of two strings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why an auth was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AuthError {
    /// Malformed args, an unknown key or an `expires` in the past.
    Params,
    /// The signature does not match.
    Sign,
}

/// Checks `args` (`[api_key, expires, signature]`) against `secret_of`; returns the key.
pub(super) fn verify(
    args: &[Value],
    now_ms: u64,
    secret_of: impl Fn(&str) -> Option<String>,
) -> Result<String, AuthError> {
    let [key, expires, sig] = args else {
        return Err(AuthError::Params);
    };
    let key = key.as_str().ok_or(AuthError::Params)?;
    let expires = match expires {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or(AuthError::Params)?;
    let sig = sig.as_str().ok_or(AuthError::Params)?;
    let secret = secret_of(key).ok_or(AuthError::Params)?;
    if expires <= now_ms {
        return Err(AuthError::Params);
    }
    if !same(&signature(&secret, expires), sig) {
        return Err(AuthError::Sign);
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_local_vectors() {
        assert_eq!(
            signature("AMANDASECRECT", 1_711_010_121_452),
            "c4d35fc20bd27bcaaa7fa8042a1929908faee54c24ad170024b9c0f64b78866b"
        );
    }

    #[test]
    fn verifies_numbers_and_strings_and_expiry() {
        let secret = |k: &str| (k == "k").then(|| "s".to_owned());
        let sig = signature("s", 2000);
        assert_eq!(
            verify(&[json!("k"), json!(2000), json!(sig)], 1000, secret),
            Ok("k".into())
        );
        assert_eq!(
            verify(&[json!("k"), json!("2000"), json!(sig)], 1000, secret),
            Ok("k".into())
        );
        assert_eq!(
            verify(&[json!("k"), json!(2000), json!(sig)], 2000, secret),
            Err(AuthError::Params)
        );
        assert_eq!(
            verify(&[json!("k"), json!(2000), json!("00")], 1000, secret),
            Err(AuthError::Sign)
        );
        assert_eq!(
            verify(&[json!("x"), json!(2000), json!(sig)], 1000, secret),
            Err(AuthError::Params)
        );
        assert_eq!(verify(&[json!("k")], 1000, secret), Err(AuthError::Params));
    }
}
