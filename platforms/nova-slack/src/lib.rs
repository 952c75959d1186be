//! Slack Socket Mode for nova: the protocol pieces that do not need the connection runtime.
//!
//! # What is here
//!
//! - [`Inbound`]: one pass over a frame gives [`Hello`] (`num_connections`, [`DebugInfo`] with
//!   `approximate_connection_time`), [`Disconnect`] ([`DisconnectReason`] and the
//!   [`DisconnectAction`] it calls for), or an [`Envelope`] (`events_api`, `slash_commands`,
//!   `interactive`) with its payload kept exactly as received.
//! - [`Ack`]: `{"envelope_id": ..}`, optionally with a response payload
//!   ([`Envelope::ack_with`] checks `accepts_response_payload`).
//! - [`DedupWindow`]: has this envelope (by `envelope_id`) or event (by `event_id`) been handled
//!   before? Bounded memory.
//! - [`SocketModeApi`]: `apps.connections.open` with the app-level token as a
//!   [`Secret`](nova_core::Secret), typed [`OpenError`]s (`invalid_auth`, `429` with its
//!   `Retry-After`, other errors).
//!
//! The adapter (the nova-core behaviours) waits for two runtime hooks: an async URL source
//! awaited before every connect, and a make-before-break handover. See the README.
//!
//! # Wire protocol
//!
//! ```text
//! POST https://slack.com/api/apps.connections.open   Authorization: Bearer xapp-…
//!   ← {"ok":true,"url":"wss://wss-primary.slack.com/link/?ticket=…&app_id=…"}
//! ← {"type":"hello","num_connections":1,"debug_info":{…,"approximate_connection_time":18060},"connection_info":{"app_id":"A111"}}
//! ← {"envelope_id":"e1","payload":{…,"event_id":"Ev1",…},"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}
//! → {"envelope_id":"e1"}
//! ← {"envelope_id":"e2","payload":{…,"command":"/hello",…},"type":"slash_commands","accepts_response_payload":true}
//! → {"envelope_id":"e2","payload":{"text":"Hi!"}}
//! ← {"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"…"}}
//! ```

mod ack;
mod dedup;
mod envelope;
mod open;

pub use ack::{Ack, AckError};
pub use dedup::{DedupWindow, DuplicateBy, Verdict};
pub use envelope::{
    DebugInfo, Disconnect, DisconnectAction, DisconnectReason, Envelope, EnvelopeType, Hello,
    Inbound, ParseError,
};
pub use open::{
    ConfigError, DEFAULT_API_URL, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT, MAX_BODY, OpenError,
    SocketModeApi, SocketModeApiBuilder,
};
