//! Parsing and expansion of `#[nova::client]`, kept in a plain crate so it can be unit-tested.
