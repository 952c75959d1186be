//! Hostile input for property tests of parsers: arbitrary JSON and valid messages mutated, built
//! deterministically from a byte string.
//!
//! A property test draws bytes (`proptest::collection::vec(any::<u8>(), 0..256)`) and turns them
//! into input here, so the same bytes always give the same input and shrinking the bytes shrinks
//! the input. Nothing here depends on a property-testing crate but `strategy` (feature
//! `proptest`): the configuration and the message strategy every nova property test shares.
//! [`cases`] reads how many cases to run (`NOVA_PROPTEST_CASES`).
//!
//! - [`arbitrary_json`]: any JSON value, with object keys drawn from the field names the parser
//!   under test looks at (so the input reaches past the first `match`), numbers at the limits
//!   (`u64::MAX`, `i64::MIN`, `1e308`, `-0.0`, `2^53 + 1`…), hex-looking strings of every length,
//!   and now and then a huge string.
//! - [`mutate`]: a valid message with one to four mutations: a field dropped, a value replaced by
//!   one of another type, a number set to a limit, a string made huge, a number written as a
//!   string (and back), a value wrapped in an array, a key renamed.
//! - [`mutate_bytes`]: a text cut short, a byte flipped or inserted, invalid UTF-8 spliced in.
//!
//! ```
//! use nova_testkit::hostile::{arbitrary_json, mutate};
//! use serde_json::json;
//!
//! let keys = ["id", "method", "params"];
//! let any = arbitrary_json(&[7, 1, 200, 3], &keys);
//! let valid = json!({"id": 1, "method": "public/test", "params": {}});
//! let bad = mutate(&valid, &[0, 4, 2, 9, 1], &keys);
//! // The same bytes always give the same input.
//! assert_eq!(bad, mutate(&valid, &[0, 4, 2, 9, 1], &keys));
//! # let _ = any;
//! ```

use serde_json::{Map, Number, Value};

#[cfg(feature = "proptest")]
pub mod strategy;

/// Cases per property: the environment variable `NOVA_PROPTEST_CASES` when it holds a number,
/// else `default` (thousands in CI; more by hand, e.g. `NOVA_PROPTEST_CASES=100000`).
#[must_use]
pub fn cases(default: u32) -> u32 {
    std::env::var("NOVA_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Length of the huge strings [`arbitrary_json`] and [`mutate`] make (64 KiB and a little, so
/// that a 16-bit length field overflows).
pub const HUGE: usize = 65_537;

/// Numbers at the limits of the types parsers read them into.
pub fn limit_numbers() -> Vec<Value> {
    let mut out: Vec<Value> = vec![
        Value::from(0u64),
        Value::from(1u64),
        Value::from(-1i64),
        Value::from(u64::MAX),
        Value::from(u64::MAX - 1),
        Value::from(i64::MAX),
        Value::from(i64::MIN),
        Value::from(u64::from(u32::MAX)),
        Value::from(u64::from(u32::MAX) + 1),
        Value::from(u64::from(u16::MAX) + 1),
        Value::from(9_007_199_254_740_993u64), // 2^53 + 1: not exact as an f64
    ];
    for f in [
        0.5,
        -0.0,
        1e308,
        -1e308,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        1.8446744073709552e19,
    ] {
        if let Some(n) = Number::from_f64(f) {
            out.push(Value::Number(n));
        }
    }
    out
}

/// Reads choices from a byte string; past its end every read is 0.
#[derive(Debug)]
pub struct Entropy<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Entropy<'a> {
    /// Reads from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let wide = u16::from(self.byte()) << 8 | u16::from(self.byte());
        usize::from(wide) % n
    }

    /// A 64-bit value.
    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| acc << 8 | u64::from(self.byte()))
    }

    /// One of `items` (`None` when empty).
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> Option<&'t T> {
        let i = self.below(items.len());
        items.get(i)
    }
}

/// A string: a key of the parser's, a short run of arbitrary characters, a hex quantity of any
/// length, or (rarely) a huge string.
fn string(e: &mut Entropy<'_>, keys: &[&str]) -> String {
    match e.below(10) {
        0..=2 => e.pick(keys).map_or_else(String::new, |k| (*k).to_owned()),
        3..=5 => {
            let len = e.below(24);
            (0..len)
                .map(|_| match e.below(4) {
                    0 => char::from(e.byte()),
                    1 => char::from_u32(0x80 + u32::from(e.byte()) * 97).unwrap_or('\u{fffd}'),
                    2 => ['"', '\\', '\0', '\n', '\u{2028}', '😀', '/', '.'][e.below(8)],
                    _ => char::from(b'a' + e.byte() % 26),
                })
                .collect()
        }
        6..=8 => {
            let len = [0, 1, 2, 15, 16, 17, 31, 32, 33, 64, 65][e.below(11)];
            let digits: String = (0..len)
                .map(|_| char::from(b"0123456789abcdefABCDEFx g"[e.below(25)]))
                .collect();
            ["0x", "0X", "", "-0x", "0x0"][e.below(5)].to_owned() + &digits
        }
        _ => "x".repeat(HUGE),
    }
}

/// Any JSON value, built from `bytes`; object keys come from `keys` most of the time.
pub fn arbitrary_json(bytes: &[u8], keys: &[&str]) -> Value {
    value(&mut Entropy::new(bytes), keys, 4)
}

/// Any JSON value read from `e`, nested at most `depth` deep.
pub fn value(e: &mut Entropy<'_>, keys: &[&str], depth: u32) -> Value {
    let kinds = if depth == 0 { 5 } else { 8 };
    match e.below(kinds) {
        0 => Value::Null,
        1 => Value::Bool(e.byte() % 2 == 0),
        2 => {
            let limits = limit_numbers();
            e.pick(&limits).cloned().unwrap_or(Value::Null)
        }
        3 => Value::from(e.u64() >> e.below(64)),
        4 => Value::String(string(e, keys)),
        5 | 6 => {
            let len = e.below(5);
            let mut map = Map::new();
            for _ in 0..len {
                let key = if e.below(4) == 0 {
                    string(e, &[])
                } else {
                    e.pick(keys).map_or_else(String::new, |k| (*k).to_owned())
                };
                map.insert(key, value(e, keys, depth - 1));
            }
            Value::Object(map)
        }
        _ => {
            let len = e.below(5);
            Value::Array((0..len).map(|_| value(e, keys, depth - 1)).collect())
        }
    }
}

/// JSON pointers to every node of `value` (the root is `""`), in pre-order.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            out.push(at.clone());
            for (k, v) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            out.push(at.clone());
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// Splits a pointer into its parent and last token (`None` for the root).
fn parent_of(pointer: &str) -> Option<(&str, String)> {
    let cut = pointer.rfind('/')?;
    let last = pointer[cut + 1..].replace("~1", "/").replace("~0", "~");
    Some((&pointer[..cut], last))
}

/// `valid` with one to four mutations chosen by `bytes` (see the [module docs](self)).
pub fn mutate(valid: &Value, bytes: &[u8], keys: &[&str]) -> Value {
    let mut e = Entropy::new(bytes);
    let mut out = valid.clone();
    let count = 1 + e.below(4);
    for _ in 0..count {
        let mut all = Vec::new();
        pointers(&out, String::new(), &mut all);
        let Some(pointer) = e.pick(&all).cloned() else {
            break;
        };
        match e.below(8) {
            // Drop the node from its parent.
            0 | 1 => match parent_of(&pointer) {
                Some((parent, last)) => match out.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&last);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>() {
                            if i < items.len() {
                                items.remove(i);
                            }
                        }
                    }
                    _ => {}
                },
                None => out = Value::Object(Map::new()),
            },
            // Replace it with a value of another type.
            2 | 3 => {
                let replacement = value(&mut e, keys, 2);
                if let Some(node) = out.pointer_mut(&pointer) {
                    *node = replacement;
                }
            }
            // A number at a limit.
            4 => {
                let limits = limit_numbers();
                let replacement = e.pick(&limits).cloned().unwrap_or(Value::Null);
                if let Some(node) = out.pointer_mut(&pointer) {
                    *node = replacement;
                }
            }
            // A huge string, or a string of the parser's keys.
            5 => {
                let replacement = Value::String(string(&mut e, keys));
                if let Some(node) = out.pointer_mut(&pointer) {
                    *node = match e.below(2) {
                        0 => Value::String("9".repeat(HUGE)),
                        _ => replacement,
                    };
                }
            }
            // Numbers written as strings, strings as numbers, anything wrapped in an array.
            6 => {
                if let Some(node) = out.pointer_mut(&pointer) {
                    let swapped = match node.take() {
                        Value::Number(n) => Value::String(n.to_string()),
                        Value::String(s) => match s.parse::<u64>() {
                            Ok(n) => Value::from(n),
                            Err(_) => Value::Array(vec![Value::String(s)]),
                        },
                        Value::Bool(b) => Value::from(u8::from(b)),
                        other => Value::Array(vec![other]),
                    };
                    *node = swapped;
                }
            }
            // Rename a key of an object.
            _ => {
                if let Some((parent, last)) = parent_of(&pointer) {
                    let new_key = string(&mut e, keys);
                    if let Some(Value::Object(map)) = out.pointer_mut(parent) {
                        if let Some(v) = map.remove(&last) {
                            map.insert(new_key, v);
                        }
                    }
                }
            }
        }
    }
    out
}

/// `text`'s bytes mutated at the byte level: cut short, a byte flipped, inserted or removed,
/// invalid UTF-8 spliced in. The result is often not UTF-8; send it as a binary message or a
/// raw frame.
pub fn mutate_bytes(text: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut e = Entropy::new(bytes);
    let mut out = text.to_vec();
    let count = 1 + e.below(3);
    for _ in 0..count {
        let at = e.below(out.len() + 1);
        match e.below(5) {
            0 => out.truncate(at),
            1 => {
                if let Some(b) = out.get_mut(at) {
                    *b ^= 1 << e.below(8);
                }
            }
            2 => out.insert(at, e.byte()),
            3 => {
                if at < out.len() {
                    out.remove(at);
                }
            }
            _ => {
                let bad: &[u8] = [
                    &[0xC3, 0x28][..],
                    &[0xFF],
                    &[0xED, 0xA0, 0x80],
                    &[0xF0, 0x9F],
                ][e.below(4)];
                let tail = out.split_off(at.min(out.len()));
                out.extend_from_slice(bad);
                out.extend_from_slice(&tail);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        let keys = ["a", "b"];
        let valid = serde_json::json!({"a": 1, "b": {"c": [1, 2, "x"]}});
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200u32 {
            let mut state = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let bytes: Vec<u8> = (0..32)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    state.to_be_bytes()[0]
                })
                .collect();
            assert_eq!(mutate(&valid, &bytes, &keys), mutate(&valid, &bytes, &keys));
            seen.insert(mutate(&valid, &bytes, &keys).to_string());
            let _ = arbitrary_json(&bytes, &keys);
            let _ = mutate_bytes(b"{\"a\":1}", &bytes);
        }
        assert!(seen.len() > 50, "mutations should differ: {}", seen.len());
    }

    #[test]
    fn empty_entropy_is_fine() {
        assert_eq!(arbitrary_json(&[], &[]), Value::Null);
        let _ = mutate(&Value::Null, &[], &[]);
        assert_eq!(mutate_bytes(b"", &[]), Vec::<u8>::new());
    }
}
