//! Where a book notification sits in its channel's sequence, read on the connection's hot path:
//! the three fields that place it (`change_id`, `prev_change_id`, `type`), borrowed, and the
//! read stops as soon as they are known, so the levels after them are neither parsed nor
//! scanned.

use std::borrow::Cow;
use std::fmt;

use nova_core::Message;
use nova_core::jsonrpc::IgnoredAny;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use crate::message::{Borrowed, fast_data};

/// A book notification's position: `(change_id, prev_change_id)`, with `None` for the
/// snapshot. `None` when the message is not a book notification.
///
/// Deribit writes the position before the levels; the read stops once the position is known
/// (a snapshot on a `raw` channel, which has no `type`, is read to its end). The levels are not
/// checked here: whoever reads the data parses them.
///
/// ```
/// use nova_core::Message;
/// use nova_deribit::book_position;
///
/// let change = Message::text(r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms",
///   "data":{"type":"change","timestamp":1,"prev_change_id":297217,"instrument_name":"BTC-PERPETUAL","change_id":297218,"bids":[],"asks":[]}}}"#);
/// assert_eq!(book_position(&change), Some((297218, Some(297217))));
/// let raw_snapshot = Message::text(r#"{"method":"subscription","params":{"channel":"book.BTC-PERPETUAL.raw",
///   "data":{"timestamp":1,"instrument_name":"BTC-PERPETUAL","change_id":5,"bids":[],"asks":[]}}}"#);
/// assert_eq!(book_position(&raw_snapshot), Some((5, None)));
/// ```
#[must_use]
pub fn book_position(message: &Message) -> Option<(u64, Option<u64>)> {
    let position = fast_data(message.as_bytes())
        .and_then(scan)
        .or_else(|| read(message.as_bytes()))?;
    position.answer()
}

/// The position read by serde, stopping once it is known.
fn read(bytes: &[u8]) -> Option<Position<'_>> {
    let mut position = Position::default();
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let read = InObject {
        inner: "params",
        then: InParams(&mut position),
    }
    .deserialize(&mut reader);
    // A stop is an error to serde; what was read before it is the answer.
    (read.is_ok() || position.complete()).then_some(position)
}

/// The hot path: a data object written the way Deribit writes it (the position's fields first,
/// as plain integers and strings) scanned by hand up to the position. `None` at the first thing
/// it does not expect (an escape, a nested value, a number it cannot read, the object's end),
/// and serde reads the message instead.
fn scan(data: &[u8]) -> Option<Position<'_>> {
    let mut position = Position::default();
    let mut at = 1; // past the data's `{`
    loop {
        let (key, next) = string(data, skip_space(data, at))?;
        at = skip_space(data, next);
        if *data.get(at)? != b':' {
            return None;
        }
        at = skip_space(data, at + 1);
        at = match key {
            b"change_id" => {
                let (n, next) = integer(data, at)?;
                position.change_id = Some(n);
                next
            }
            b"prev_change_id" => {
                let (n, next) = integer(data, at)?;
                position.prev_change_id = Some(n);
                position.prev_seen = true;
                next
            }
            b"type" => {
                let (kind, next) = string(data, at)?;
                position.kind = Some(Cow::Borrowed(std::str::from_utf8(kind).ok()?));
                next
            }
            _ => match data.get(at)? {
                b'"' => string(data, at)?.1,
                b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                    at + data[at..]
                        .iter()
                        .position(|&b| matches!(b, b',' | b'}' | b' ' | b'\n' | b'\r' | b'\t'))?
                }
                _ => return None,
            },
        };
        if position.complete() {
            return Some(position);
        }
        at = skip_space(data, at);
        if *data.get(at)? != b',' {
            return None;
        }
        at += 1;
    }
}

/// The first byte at or after `at` that is not JSON white space.
fn skip_space(bytes: &[u8], at: usize) -> usize {
    at + bytes.get(at..).map_or(0, |rest| {
        rest.iter()
            .position(|b| !matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
            .unwrap_or(rest.len())
    })
}

/// A string without escapes at `at`: its bytes and the index after its closing quote.
fn string(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = bytes.get(at..)?.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    (rest[end] == b'"').then(|| (&rest[..end], at + end + 2))
}

/// An unsigned integer at `at` (no sign, fraction or exponent, no overflow) and the index after it.
fn integer(bytes: &[u8], at: usize) -> Option<(u64, usize)> {
    let rest = bytes.get(at..)?;
    let len = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    if len == 0 || matches!(rest.get(len), Some(b'.' | b'e' | b'E')) {
        return None;
    }
    let n = rest[..len].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some((n, at + len))
}

impl Position<'_> {
    /// `(change_id, prev_change_id)`, the latter `None` for a snapshot.
    fn answer(&self) -> Option<(u64, Option<u64>)> {
        let change_id = self.change_id?;
        let snapshot = match self.kind.as_deref() {
            Some(kind) => kind == "snapshot",
            None => self.prev_change_id.is_none(),
        };
        Some((change_id, if snapshot { None } else { self.prev_change_id }))
    }
}

/// The fields read so far.
#[derive(Default)]
struct Position<'a> {
    change_id: Option<u64>,
    prev_change_id: Option<u64>,
    /// Whether `prev_change_id` was there (even as `null`).
    prev_seen: bool,
    kind: Option<Cow<'a, str>>,
}

impl Position<'_> {
    /// Whether the rest of the data cannot change the answer.
    fn complete(&self) -> bool {
        self.change_id.is_some()
            && match self.kind.as_deref() {
                Some("snapshot") => true,
                Some(_) => self.prev_seen,
                None => false,
            }
    }
}

/// What ends the read once the position is complete.
const STOP: &str = "book position read";

/// An object whose member `inner` is read by `then`; the other members are skipped.
struct InObject<T> {
    inner: &'static str,
    then: T,
}

impl<'de, T: DeserializeSeed<'de, Value = ()>> DeserializeSeed<'de> for InObject<T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: DeserializeSeed<'de, Value = ()>> Visitor<'de> for InObject<T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with `{}`", self.inner)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut then = Some(self.then);
        while let Some(Borrowed(key)) = map.next_key()? {
            match then.take() {
                Some(seed) if key == self.inner => map.next_value_seed(seed)?,
                other => {
                    then = other;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A notification's `params`: its `data` is read.
struct InParams<'p, 'a>(&'p mut Position<'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for InParams<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        InObject {
            inner: "data",
            then: InData(self.0),
        }
        .deserialize(deserializer)
    }
}

/// A book notification's `data`: read until the position is complete.
struct InData<'p, 'a>(&'p mut Position<'a>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for InData<'_, 'a> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for InData<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a book update")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let position = self.0;
        while let Some(Borrowed(key)) = map.next_key()? {
            match &*key {
                "change_id" => position.change_id = Some(map.next_value()?),
                "prev_change_id" => {
                    position.prev_change_id = map.next_value()?;
                    position.prev_seen = true;
                }
                "type" => position.kind = Some(map.next_value::<Borrowed<'a>>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if position.complete() {
                return Err(de::Error::custom(STOP));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Option<(u64, Option<u64>)> {
        book_position(&Message::text(text))
    }

    #[test]
    fn reads_the_position_in_any_order_and_stops_before_the_levels() {
        // The levels after the position are not read: a broken tail does not matter.
        assert_eq!(
            at(
                r#"{"params":{"channel":"b","data":{"type":"change","prev_change_id":1,"change_id":2,"bids":[[oops"#
            ),
            Some((2, Some(1)))
        );
        assert_eq!(
            at(
                r#"{"params":{"data":{"bids":[],"change_id":9,"type":"snapshot","prev_change_id":3}},"method":"subscription"}"#
            ),
            Some((9, None))
        );
        // No type (raw channels): read to the end; a missing prev_change_id is the snapshot.
        assert_eq!(
            at(r#"{"params":{"data":{"change_id":4,"prev_change_id":3,"asks":[]}}}"#),
            Some((4, Some(3)))
        );
        assert_eq!(
            at(r#"{"params":{"data":{"change_id":4}}}"#),
            Some((4, None))
        );
        // A null prev_change_id on a change: no predecessor to check against.
        assert_eq!(
            at(r#"{"params":{"data":{"type":"change","prev_change_id":null,"change_id":4}}}"#),
            Some((4, None))
        );
    }

    #[test]
    fn anything_else_has_no_position() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"result":[]}"#,
            r#"{"params":{"data":{"type":"change","prev_change_id":1}}}"#,
            r#"{"params":{"data":[1,2]}}"#,
            r#"{"params":"x"}"#,
            r#"{"params":{"data":{"change_id":"7","type":"change","prev_change_id":1}}}"#,
            r#"{"params":{"data":{"change_id":4,"asks":[}}}"#,
            "[]",
            "",
            "{",
        ] {
            assert_eq!(at(text), None, "{text}");
        }
    }

    #[test]
    fn book_positions() {
        let snap = Message::text(
            r#"{"method":"subscription","params":{"channel":"book.X.100ms","data":{"type":"snapshot","change_id":10,"bids":[],"asks":[]}}}"#,
        );
        assert_eq!(book_position(&snap), Some((10, None)));
        let raw_change = Message::text(
            r#"{"method":"subscription","params":{"channel":"book.X.raw","data":{"change_id":12,"prev_change_id":11}}}"#,
        );
        assert_eq!(book_position(&raw_change), Some((12, Some(11))));
        assert_eq!(book_position(&Message::text("{}")), None);
    }
}
