//! nova: a WebSocket client SDK for connections that must stay up for weeks.
//!
//! This facade re-exports [`nova_core`]; see its documentation for the behaviours, the runtime
//! and the configuration.

pub use nova_core::*;
