//! Keeping secrets out of fixtures: redaction rules for frames, and URL redaction.
//!
//! A [`Relay`](super::Relay) forwards every frame unchanged and records it after applying its
//! [`Redactions`]:
//!
//! - a **field** rule replaces the value of every JSON object member with that name, at any
//!   depth of a text frame that is JSON, by the string [`REDACTED`] (`"client_secret"`,
//!   `"token"`, `"api_key"`, `"signature"`...). Frames are re-serialized only when a field was
//!   redacted, so other frames are recorded byte for byte;
//! - a **string** rule replaces every occurrence of a secret (an API key, a token) in text
//!   frames, binary frames and close reasons by [`REDACTED`].
//!
//! The upstream URL and each request target lose their query string and user information
//! ([`redact_url`]): tickets and keys often travel there. Compressed binary frames (Discord's
//! zlib-stream) cannot be searched: capture those sessions uncompressed, or check the file.
//!
//! When replaying, a recorded [`REDACTED`] matches any value (see
//! [`Matcher`](super::Matcher)), so a test can log in with a test key against a fixture that
//! recorded a real one.
//!
//! ```
//! use nova_testkit::replay::{RecordedFrame, Redactions};
//!
//! let rules = Redactions::new().field("client_secret").string("xapp-1-SECRET");
//! let frame = RecordedFrame::Text(
//!     r#"{"method":"public/auth","params":{"client_id":"me","client_secret":"s3cr3t"}}"#.into(),
//! );
//! let RecordedFrame::Text(text) = rules.apply(frame) else { unreachable!() };
//! assert!(!text.contains("s3cr3t"));
//! assert!(text.contains(r#""client_secret":"<redacted>""#));
//! assert_eq!(rules.apply_text("token xapp-1-SECRET"), "token <redacted>");
//! assert!(!format!("{rules:?}").contains("SECRET"));
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::format::{CloseInfo, RecordedFrame};

/// What a redacted value is replaced by.
pub const REDACTED: &str = "<redacted>";

/// Redaction rules (see the [module docs](self)). Its `Debug` output names the fields and
/// counts the strings, never shows them.
#[derive(Clone, Default)]
pub struct Redactions {
    strings: Vec<String>,
    fields: Vec<String>,
}

impl fmt::Debug for Redactions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactions")
            .field("fields", &self.fields)
            .field(
                "strings",
                &format_args!("<{} redacted>", self.strings.len()),
            )
            .finish()
    }
}

impl Redactions {
    /// No rules.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret string to replace wherever it appears (empty strings are ignored).
    #[must_use]
    pub fn string(mut self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if !secret.is_empty() {
            self.strings.push(secret);
        }
        self
    }

    /// Adds a JSON field name whose values are replaced.
    #[must_use]
    pub fn field(mut self, name: impl Into<String>) -> Self {
        self.fields.push(name.into());
        self
    }

    /// Adds several field names.
    #[must_use]
    pub fn fields<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields.extend(names.into_iter().map(Into::into));
        self
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty() && self.fields.is_empty()
    }

    /// Applies the rules to a frame.
    pub fn apply(&self, frame: RecordedFrame) -> RecordedFrame {
        if self.is_empty() {
            return frame;
        }
        match frame {
            RecordedFrame::Text(t) => RecordedFrame::Text(self.apply_text(&t)),
            RecordedFrame::Binary(b) => RecordedFrame::Binary(self.apply_bytes(b)),
            RecordedFrame::Close(Some(c)) => RecordedFrame::Close(Some(CloseInfo {
                code: c.code,
                reason: self.apply_text(&c.reason),
            })),
            other => other,
        }
    }

    /// Applies the rules to a text payload: fields first (if it is JSON), then strings.
    pub fn apply_text(&self, text: &str) -> String {
        let mut out = None;
        if !self.fields.is_empty() {
            if let Ok(mut value) = serde_json::from_str::<Value>(text) {
                if redact_fields(&mut value, &self.fields) {
                    out = serde_json::to_string(&value).ok();
                }
            }
        }
        let mut out = out.unwrap_or_else(|| text.to_owned());
        for secret in &self.strings {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    fn apply_bytes(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        for secret in &self.strings {
            let needle = secret.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(needle) {
                    out.extend_from_slice(REDACTED.as_bytes());
                    i += needle.len();
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            bytes = out;
        }
        bytes
    }
}

/// Replaces the value of every member named in `fields`; returns whether anything changed.
fn redact_fields(value: &mut Value, fields: &[String]) -> bool {
    let mut changed = false;
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if fields.iter().any(|f| f == key) {
                    if v.as_str() != Some(REDACTED) {
                        *v = Value::String(REDACTED.to_owned());
                        changed = true;
                    }
                } else {
                    changed |= redact_fields(v, fields);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                changed |= redact_fields(v, fields);
            }
        }
        _ => {}
    }
    changed
}

/// A URL or request target without its query string, fragment and user information:
/// `wss://user:pw@host/ws?key=k` becomes `wss://host/ws?<redacted>`.
///
/// ```
/// use nova_testkit::replay::redact_url;
/// assert_eq!(redact_url("wss://u:p@example.com/ws?ticket=abc#x"), "wss://example.com/ws?<redacted>");
/// assert_eq!(redact_url("/link/?ticket=abc"), "/link/?<redacted>");
/// assert_eq!(redact_url("ws://127.0.0.1:9000"), "ws://127.0.0.1:9000");
/// ```
pub fn redact_url(url: &str) -> String {
    let (base, had_query) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], url[i..].starts_with('?')),
        None => (url, false),
    };
    let base = match base.find("://") {
        Some(scheme_end) => {
            let rest = &base[scheme_end + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{}{}", &base[..scheme_end + 3], &rest[at + 1..]),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    if had_query {
        format!("{base}?{REDACTED}")
    } else {
        base
    }
}

/// `t` as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_796_227_626);
        assert_eq!(rfc3339(t), "2026-12-02T16:07:06Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn nested_fields_and_bytes() {
        let rules = Redactions::new().field("sig").string("KEY");
        assert_eq!(
            rules.apply_text(r#"{"a":[{"sig":1}],"b":"KEY"}"#),
            r#"{"a":[{"sig":"<redacted>"}],"b":"<redacted>"}"#
        );
        assert_eq!(rules.apply_text("not json KEY"), "not json <redacted>");
        assert_eq!(
            rules.apply_bytes(b"xKEYyKEY".to_vec()),
            b"x<redacted>y<redacted>"
        );
    }
}
