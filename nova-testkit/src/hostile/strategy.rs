//! The proptest side of [`hostile`](super) (feature `proptest`): the configuration every nova
//! property test uses and the strategy of hostile messages built from a parser's field names
//! and a few valid messages.
//!
//! ```
//! use nova_testkit::hostile::strategy::{config, messages};
//! use proptest::prelude::*;
//!
//! const KEYS: &[&str] = &["id", "method", "params"];
//! const VALID: &[&str] = &[r#"{"jsonrpc":"2.0","id":1,"result":true}"#];
//!
//! proptest! {
//!     #![proptest_config(config(100))]
//!     // In a test file, with `#[test]` above it.
//!     fn parsing_never_panics(message in messages(VALID, KEYS)) {
//!         let _ = serde_json::from_slice::<serde_json::Value>(message.as_bytes());
//!     }
//! }
//! # fn main() {
//! parsing_never_panics();
//! # }
//! ```

use std::sync::Arc;

use nova_core::Message;
use proptest::prelude::*;
use serde_json::Value;

use super::{arbitrary_json, cases, mutate, mutate_bytes};

/// The configuration of a nova property test: [`cases`]`(default)` cases (the environment
/// variable `NOVA_PROPTEST_CASES` overrides the default), and no failure-persistence files
/// written into the source tree (a failure prints its input; the seed replays it).
#[must_use]
pub fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A hostile message, one of four kinds drawn evenly: arbitrary bytes (a binary message),
/// arbitrary JSON with object keys drawn from `keys`, one of the `valid` messages mutated as
/// JSON ([`mutate`]), or one mutated at the byte level ([`mutate_bytes`]; a text message when
/// the result is UTF-8, else binary).
///
/// `valid` holds JSON texts; one that does not parse is used only at the byte level.
pub fn messages<S: AsRef<str>>(
    valid: &[S],
    keys: &'static [&'static str],
) -> impl Strategy<Value = Message> + use<S> {
    let texts: Arc<[String]> = valid.iter().map(|v| v.as_ref().to_owned()).collect();
    let parsed: Arc<[Value]> = texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
        .collect();
    let count = texts.len().max(1);
    let bytes = || proptest::collection::vec(any::<u8>(), 0..256);
    prop_oneof![
        bytes().prop_map(Message::binary),
        bytes().prop_map(move |b| Message::text(arbitrary_json(&b, keys).to_string())),
        (0..count, bytes()).prop_map(move |(i, b)| match parsed.get(i) {
            Some(valid) => Message::text(mutate(valid, &b, keys).to_string()),
            None => Message::text(arbitrary_json(&b, keys).to_string()),
        }),
        (0..count, bytes()).prop_map(move |(i, b)| {
            let valid = texts.get(i).map_or(&[][..], |t| t.as_bytes());
            match String::from_utf8(mutate_bytes(valid, &b)) {
                Ok(text) => Message::text(text),
                Err(e) => Message::binary(e.into_bytes()),
            }
        }),
    ]
}
