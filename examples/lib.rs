//! Library part of nova-examples: empty; the examples live beside this crate.
