//! Deciding whether the frame a client sent is the frame the recording expects.
//!
//! A [`Matcher`] compares a recorded client→server frame with the live one:
//!
//! - text frames that are both JSON are compared as JSON values (member order and whitespace do
//!   not matter), except for **ignored fields**: a name (`"nonce"`) ignores that member at any
//!   depth, a JSON pointer (`"/params/timestamp"`) exactly that one. Ignored members may differ
//!   or be missing on either side. Other text frames, and every text frame under
//!   [`Matcher::exact`], must be equal byte for byte;
//! - a recorded [`REDACTED`] (string or JSON string) matches anything;
//! - binary frames must be equal; close frames must have the same code; ping and pong payloads
//!   are not compared.
//!
//! **Correlated fields** ([`Matcher::correlate`]) are ignored too, and remembered: when the
//! client sends `"id": 7` where the recording has `"id": 3`, every later server frame of that
//! connection that has `"id": 3` is sent with `"id": 7`. That keeps request/response pairing
//! working when a client numbers its requests differently from the recorded one.
//!
//! **Skipped client frames** ([`Matcher::skip_client_if`], [`Matcher::skip_client_json`]) are
//! neither expected nor checked: timer-driven frames (a heartbeat every N seconds) whose
//! position in a recording is an accident of timing. WebSocket pings and pongs from the client
//! are skipped unless [`Matcher::check_pings`] is set.
//!
//! ```
//! use nova_testkit::replay::{Matcher, RecordedFrame};
//! use serde_json::json;
//!
//! let matcher = Matcher::json().ignore(["nonce", "/params/timestamp"]).correlate(["id"]);
//! let recorded = RecordedFrame::Text(r#"{"id":1,"method":"auth","params":{"timestamp":1,"nonce":"a","key":"<redacted>"}}"#.into());
//! let live = RecordedFrame::Text(r#"{"method":"auth","id":9,"params":{"key":"k","timestamp":2,"nonce":"b"}}"#.into());
//! assert!(matcher.check(&recorded, &live).is_ok());
//!
//! let other = RecordedFrame::Text(r#"{"id":1,"method":"subscribe","params":{}}"#.into());
//! let err = matcher.check(&recorded, &other).unwrap_err();
//! assert!(err.contains("/method"), "{err}");
//!
//! let heartbeat = Matcher::json().skip_client_json("op", json!(1));
//! assert!(heartbeat.skips(&RecordedFrame::Text(r#"{"op":1,"d":5}"#.into())));
//! ```

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::format::RecordedFrame;
use super::redact::REDACTED;

/// A predicate over client frames (see [`Matcher::skip_client_if`]).
type Skip = Arc<dyn Fn(&RecordedFrame) -> bool + Send + Sync>;

/// A rewrite of JSON client frames before they are compared (see [`Matcher::normalize_json`]).
type Normalize = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// How client frames are compared with the recording. See the [module docs](self).
///
/// `Default` is [`Matcher::json`] with nothing ignored.
#[derive(Clone)]
pub struct Matcher {
    json: bool,
    ignore: Vec<String>,
    correlate: Vec<String>,
    skip: Vec<Skip>,
    normalize: Vec<Normalize>,
    check_pings: bool,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("json", &self.json)
            .field("ignore", &self.ignore)
            .field("correlate", &self.correlate)
            .field("skip", &self.skip.len())
            .field("normalize", &self.normalize.len())
            .field("check_pings", &self.check_pings)
            .finish()
    }
}

impl Default for Matcher {
    fn default() -> Self {
        Matcher::json()
    }
}

/// Field names that differ between any two runs of most clients: request ids, timestamps,
/// nonces, signatures. [`Matcher::volatile`] ignores them (and correlates `id`).
pub const VOLATILE_FIELDS: &[&str] = &[
    "timestamp",
    "ts",
    "nonce",
    "signature",
    "sig",
    "expires",
    "req_id",
];

impl Matcher {
    /// Compares JSON text frames as JSON values, other frames exactly.
    #[must_use]
    pub fn json() -> Self {
        Matcher {
            json: true,
            ignore: Vec::new(),
            correlate: Vec::new(),
            skip: Vec::new(),
            normalize: Vec::new(),
            check_pings: false,
        }
    }

    /// Compares text frames byte for byte (a recorded [`REDACTED`] still matches any text).
    #[must_use]
    pub fn exact() -> Self {
        Matcher {
            json: false,
            ..Matcher::json()
        }
    }

    /// [`Matcher::json`] ignoring [`VOLATILE_FIELDS`] and correlating `id`.
    #[must_use]
    pub fn volatile() -> Self {
        Matcher::json()
            .ignore(VOLATILE_FIELDS.iter().copied())
            .correlate(["id"])
    }

    /// Ignores these fields: names at any depth, or JSON pointers (starting with `/`).
    #[must_use]
    pub fn ignore<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.ignore.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Ignores these field names and maps their recorded values to the live ones in later
    /// server frames of the connection.
    #[must_use]
    pub fn correlate<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.correlate.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Skips client frames for which `skip` holds: they are not expected when recorded and not
    /// checked when received.
    #[must_use]
    pub fn skip_client_if(
        mut self,
        skip: impl Fn(&RecordedFrame) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.skip.push(Arc::new(skip));
        self
    }

    /// Skips client text frames that are JSON objects whose top-level `field` equals `value`.
    #[must_use]
    pub fn skip_client_json(self, field: &str, value: Value) -> Self {
        let field = field.to_owned();
        self.skip_client_if(move |frame| match frame {
            RecordedFrame::Text(t) => serde_json::from_str::<Value>(t)
                .ok()
                .and_then(|v| v.get(&field).cloned())
                .is_some_and(|v| v == value),
            _ => false,
        })
    }

    /// Rewrites both the recorded and the live JSON value of each client text frame before
    /// they are compared: for what field rules cannot say, such as positions in an array
    /// (`{"op":"auth","args":[key, expires, signature]}`).
    ///
    /// ```
    /// use nova_testkit::replay::{Matcher, RecordedFrame};
    ///
    /// let matcher = Matcher::json().normalize_json(|v| {
    ///     if v["op"] == "auth" {
    ///         v["args"][1] = 0.into(); // expires
    ///         v["args"][2] = "".into(); // signature
    ///     }
    /// });
    /// let recorded = RecordedFrame::Text(r#"{"op":"auth","args":["k",1,"aa"]}"#.into());
    /// let live = RecordedFrame::Text(r#"{"op":"auth","args":["k",2,"bb"]}"#.into());
    /// assert!(matcher.check(&recorded, &live).is_ok());
    /// ```
    #[must_use]
    pub fn normalize_json(
        mut self,
        normalize: impl Fn(&mut Value) + Send + Sync + 'static,
    ) -> Self {
        self.normalize.push(Arc::new(normalize));
        self
    }

    /// Expects the client's pings and pongs where they were recorded (off by default: they are
    /// timer-driven).
    #[must_use]
    pub fn check_pings(mut self, on: bool) -> Self {
        self.check_pings = on;
        self
    }

    /// Whether a client frame is skipped (neither expected nor checked).
    pub fn skips(&self, frame: &RecordedFrame) -> bool {
        (!self.check_pings && frame.is_ping_or_pong()) || self.skip.iter().any(|s| s(frame))
    }

    /// Checks a live client frame against the recorded one; `Err` says where they differ.
    pub fn check(&self, expected: &RecordedFrame, got: &RecordedFrame) -> Result<(), String> {
        match (expected, got) {
            (RecordedFrame::Text(e), RecordedFrame::Text(g)) => self.check_text(e, g),
            (RecordedFrame::Binary(e), RecordedFrame::Binary(g)) => {
                if e == g {
                    Ok(())
                } else {
                    Err(format!(
                        "binary payloads differ ({} bytes expected, {} got)",
                        e.len(),
                        g.len()
                    ))
                }
            }
            (RecordedFrame::Ping(_), RecordedFrame::Ping(_))
            | (RecordedFrame::Pong(_), RecordedFrame::Pong(_))
            | (RecordedFrame::Drop, RecordedFrame::Drop) => Ok(()),
            (RecordedFrame::Close(e), RecordedFrame::Close(g)) => {
                let code = |c: &Option<super::format::CloseInfo>| c.as_ref().map(|c| c.code);
                if code(e) == code(g) {
                    Ok(())
                } else {
                    Err(format!(
                        "close codes differ: expected {:?}, got {:?}",
                        code(e),
                        code(g)
                    ))
                }
            }
            (e, g) => Err(format!(
                "expected a {} frame, got a {} frame",
                e.kind(),
                g.kind()
            )),
        }
    }

    fn check_text(&self, expected: &str, got: &str) -> Result<(), String> {
        if self.json {
            if let (Ok(mut e), Ok(mut g)) = (
                serde_json::from_str::<Value>(expected),
                serde_json::from_str::<Value>(got),
            ) {
                for normalize in &self.normalize {
                    normalize(&mut e);
                    normalize(&mut g);
                }
                return self.check_json(&e, &g, &mut String::new());
            }
        }
        if glob_match(expected, got) {
            Ok(())
        } else {
            Err("texts differ".to_owned())
        }
    }

    fn ignored(&self, path: &str, key: &str) -> bool {
        let named = |f: &String| {
            f == key
                || f.strip_prefix(path)
                    .and_then(|rest| rest.strip_prefix('/'))
                    .is_some_and(|rest| rest == key && f.starts_with('/'))
        };
        self.ignore.iter().any(named) || self.correlate.iter().any(|f| f == key)
    }

    fn check_json(&self, e: &Value, g: &Value, path: &mut String) -> Result<(), String> {
        if e.as_str() == Some(REDACTED) {
            return Ok(());
        }
        let at = |path: &str| {
            if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            }
        };
        match (e, g) {
            (Value::Object(em), Value::Object(gm)) => {
                for (key, ev) in em {
                    if self.ignored(path, key) {
                        continue;
                    }
                    let len = path.len();
                    path.push('/');
                    path.push_str(key);
                    let result = match gm.get(key) {
                        Some(gv) => self.check_json(ev, gv, path),
                        None => Err(format!("at {path}: expected {ev}, the member is missing")),
                    };
                    path.truncate(len);
                    result?;
                }
                for (key, gv) in gm {
                    if !em.contains_key(key) && !self.ignored(path, key) {
                        return Err(format!("at {path}/{key}: unexpected member with {gv}"));
                    }
                }
                Ok(())
            }
            (Value::Array(ea), Value::Array(ga)) => {
                if ea.len() != ga.len() {
                    return Err(format!(
                        "at {}: expected {} elements, got {}",
                        at(path),
                        ea.len(),
                        ga.len()
                    ));
                }
                for (i, (ev, gv)) in ea.iter().zip(ga).enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    let result = self.check_json(ev, gv, path);
                    path.truncate(len);
                    result?;
                }
                Ok(())
            }
            (e, g) if e == g => Ok(()),
            (e, g) => Err(format!("at {}: expected {e}, got {g}", at(path))),
        }
    }

    /// The `(field, recorded, live)` values of correlated fields in a matched pair of frames,
    /// where they differ.
    pub(crate) fn correlations(
        &self,
        expected: &RecordedFrame,
        got: &RecordedFrame,
    ) -> Vec<(String, Value, Value)> {
        let mut out = Vec::new();
        if self.correlate.is_empty() {
            return out;
        }
        let (RecordedFrame::Text(e), RecordedFrame::Text(g)) = (expected, got) else {
            return out;
        };
        let (Ok(e), Ok(g)) = (
            serde_json::from_str::<Value>(e),
            serde_json::from_str::<Value>(g),
        ) else {
            return out;
        };
        collect_pairs(&e, &g, &self.correlate, &mut out);
        out
    }
}

fn collect_pairs(e: &Value, g: &Value, fields: &[String], out: &mut Vec<(String, Value, Value)>) {
    match (e, g) {
        (Value::Object(em), Value::Object(gm)) => {
            for (key, ev) in em {
                let Some(gv) = gm.get(key) else { continue };
                if fields.iter().any(|f| f == key) {
                    if ev != gv {
                        out.push((key.clone(), ev.clone(), gv.clone()));
                    }
                } else {
                    collect_pairs(ev, gv, fields, out);
                }
            }
        }
        (Value::Array(ea), Value::Array(ga)) => {
            for (ev, gv) in ea.iter().zip(ga) {
                collect_pairs(ev, gv, fields, out);
            }
        }
        _ => {}
    }
}

/// The recorded-to-live values of correlated fields on one connection; bounded (the oldest
/// mapping is forgotten past [`Correlations::CAPACITY`]).
#[derive(Debug, Default)]
pub(crate) struct Correlations {
    map: std::collections::VecDeque<(String, Value, Value)>,
}

impl Correlations {
    /// How many mappings are kept.
    pub(crate) const CAPACITY: usize = 4096;

    pub(crate) fn learn(&mut self, pairs: Vec<(String, Value, Value)>) {
        for pair in pairs {
            self.map.retain(|(f, r, _)| !(f == &pair.0 && r == &pair.1));
            if self.map.len() == Self::CAPACITY {
                self.map.pop_front();
            }
            self.map.push_back(pair);
        }
    }

    /// A server frame with recorded values of correlated fields replaced by live ones.
    pub(crate) fn apply(&self, frame: RecordedFrame) -> RecordedFrame {
        if self.map.is_empty() {
            return frame;
        }
        let RecordedFrame::Text(text) = &frame else {
            return frame;
        };
        let Ok(mut value) = serde_json::from_str::<Value>(text) else {
            return frame;
        };
        if self.rewrite(&mut value) {
            if let Ok(text) = serde_json::to_string(&value) {
                return RecordedFrame::Text(text);
            }
        }
        frame
    }

    fn rewrite(&self, value: &mut Value) -> bool {
        let mut changed = false;
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if let Some((_, _, live)) =
                        self.map.iter().rev().find(|(f, r, _)| f == key && r == v)
                    {
                        *v = live.clone();
                        changed = true;
                    } else {
                        changed |= self.rewrite(v);
                    }
                }
            }
            Value::Array(items) => {
                for v in items {
                    changed |= self.rewrite(v);
                }
            }
            _ => {}
        }
        changed
    }
}

/// Whether `got` equals `pattern`, where each [`REDACTED`] in `pattern` stands for any text.
fn glob_match(pattern: &str, got: &str) -> bool {
    let parts: Vec<&str> = pattern.split(REDACTED).collect();
    if parts.len() == 1 {
        return pattern == got;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = got.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = match rest.split_last() {
        Some(split) => split,
        None => return true,
    };
    for part in middle {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(s: &str) -> RecordedFrame {
        RecordedFrame::Text(s.to_owned())
    }

    #[test]
    fn globs() {
        assert!(glob_match("a<redacted>b", "aXYZb"));
        assert!(glob_match("<redacted>", ""));
        assert!(!glob_match("a<redacted>b", "ab!"));
        assert!(glob_match("k=<redacted>&s=<redacted>", "k=1&s=2"));
        assert!(!glob_match("abc", "abd"));
    }

    #[test]
    fn json_differences_name_the_path() {
        let m = Matcher::json().ignore(["/a/t"]);
        assert!(
            m.check(
                &text(r#"{"a":{"t":1,"u":[1,2]}}"#),
                &text(r#"{"a":{"u":[1,2],"t":2}}"#)
            )
            .is_ok()
        );
        let err = m
            .check(&text(r#"{"a":{"u":[1,2]}}"#), &text(r#"{"a":{"u":[1,3]}}"#))
            .unwrap_err();
        assert_eq!(err, "at /a/u/1: expected 2, got 3");
        let err = m
            .check(&text(r#"{"a":{}}"#), &text(r#"{"a":{"x":true}}"#))
            .unwrap_err();
        assert_eq!(err, "at /a/x: unexpected member with true");
        // A pointer ignores only that member.
        assert!(m.check(&text(r#"{"t":1}"#), &text(r#"{"t":2}"#)).is_err());
        let err = m
            .check(&text("{}"), &RecordedFrame::Binary(vec![1]))
            .unwrap_err();
        assert_eq!(err, "expected a text frame, got a binary frame");
    }

    #[test]
    fn correlated_ids_are_rewritten_in_later_server_frames() {
        let m = Matcher::json().correlate(["id"]);
        let pairs = m.correlations(&text(r#"{"id":3,"m":"x"}"#), &text(r#"{"id":7,"m":"x"}"#));
        let mut c = Correlations::default();
        c.learn(pairs);
        let out = c.apply(text(r#"{"id":3,"result":{"id":3}}"#));
        assert_eq!(out, text(r#"{"id":7,"result":{"id":7}}"#));
        assert_eq!(c.apply(text(r#"{"id":4}"#)), text(r#"{"id":4}"#));
    }
}
