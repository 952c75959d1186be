//! A string that never shows itself in `Debug` output or logs.

use std::fmt;

/// A credential (API secret, token, password). `Debug` prints `Secret("[redacted]")`; the value
/// is only reachable through [`expose`](Self::expose), which makes every use visible in review.
///
/// ```
/// use nova_core::Secret;
///
/// let s = Secret::new("hunter2");
/// assert_eq!(format!("{s:?}"), r#"Secret("[redacted]")"#);
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it (signing, a header).
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"[redacted]\")")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}
