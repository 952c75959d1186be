//! Library part of nova-examples: what the examples share with their tests. The examples
//! themselves live beside this crate.

#[path = "prometheus/mod.rs"]
pub mod prometheus;
