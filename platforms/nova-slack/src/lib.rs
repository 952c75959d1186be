//! Slack Socket Mode for nova: a client whose connections come from `apps.connections.open`,
//! whose envelopes are acknowledged and never handled twice, and whose refreshes are
//! make-before-break handovers.
//!
//! ```no_run
//! use nova_core::{HandlerError, Secret};
//! use nova_slack::{Ack, Envelope, SlackApp, SlackOptions, SocketModeApi};
//!
//! struct Bot;
//!
//! impl SlackApp for Bot {
//!     fn on_envelope(&mut self, envelope: &Envelope) -> Result<Ack, HandlerError> {
//!         println!("{}", envelope.payload_json());
//!         Ok(envelope.ack())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let api = SocketModeApi::new(Secret::new(std::env::var("SLACK_APP_TOKEN")?))?;
//! let config = nova_slack::config(api).build()?;
//! let (client, _messages) = nova_slack::connect(config, Bot, SlackOptions::default());
//! let reason = client.stopped().await;
//! eprintln!("stopped: {reason}");
//! # Ok(()) }
//! ```
//!
//! # What is here
//!
//! - [`Slack`] (the seven behaviours), [`SlackApp`] (the application's callback),
//!   [`config`] and [`connect`]: see the `adapter` module's description below.
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
//! On the runtime: every attempt's URL comes from `apps.connections.open` (nova-core's
//! `EndpointSource`); `hello` opens the connection for sends; `warning` and
//! `refresh_requested` start a make-before-break handover (`Context::request_handover`), during
//! which both connections deliver and [`DedupWindow`] keeps what arrives twice from being
//! handled twice; `link_disabled` stops the client; each envelope is acknowledged right after
//! [`SlackApp::on_envelope`] returns.
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
mod adapter;
mod dedup;
mod envelope;
mod open;

pub use ack::{Ack, AckError};
pub use adapter::{AckOnly, Slack, SlackApp, SlackOptions, SlackStats, config, connect};
pub use dedup::{DedupWindow, DuplicateBy, Verdict};
pub use envelope::{
    DebugInfo, Disconnect, DisconnectAction, DisconnectReason, Envelope, EnvelopeType, Hello,
    Inbound, ParseError,
};
pub use open::{
    ConfigError, DEFAULT_API_URL, DEFAULT_RETRY_AFTER, DEFAULT_TIMEOUT, MAX_BODY, OpenError,
    SocketModeApi, SocketModeApiBuilder,
};
