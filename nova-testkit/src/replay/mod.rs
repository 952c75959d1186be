//! Record a live WebSocket session and replay it as a test.
//!
//! A production incident (a reconnect storm, a message the client choked on, a subscription
//! that did not come back) becomes a regression test in three steps:
//!
//! 1. **Record**: run the client against a [`Relay`] that forwards to the real server and
//!    writes every frame both ways, with its direction and timing, to a JSON Lines file (the
//!    [format](Recording) is documented and versioned). [`Redactions`] keep API keys and tokens
//!    out of the file.
//! 2. **Commit** the file as a fixture (`tests/fixtures/*.jsonl`).
//! 3. **Replay**: a [`ReplayServer`] serves the file back. It plays the server's frames and
//!    *expects* the client's, checking each with a [`Matcher`] (JSON equality with volatile
//!    fields ignored, request ids correlated, heartbeats skipped), one recorded connection per
//!    accepted connection, so a reconnect in the incident is replayed too. The test asserts
//!    what the application received, and that the [`ReplayReport`] is OK: every frame matched,
//!    nothing missing, nothing extra, or else which line, expected what, got what.
//!
//! ```
//! use std::time::Duration;
//! use nova_core::{Client, ClientConfig, DefaultHandler};
//! use nova_testkit::TestServer;
//! use nova_testkit::replay::{Matcher, Relay, RelayOptions, ReplayOptions, ReplayServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. Record a session with an echo server (in real life: the platform's URL).
//! let upstream = TestServer::start().await?;
//! let relay = Relay::start(&upstream.url(), RelayOptions::default()).await?;
//! let (client, mut messages) =
//!     Client::connect(ClientConfig::builder(relay.url()).build()?, DefaultHandler);
//! client.send_text(r#"{"op":"subscribe","args":["btc"]}"#).await?;
//! let echo = messages.recv().await.expect("running")?;
//! client.close(1000, "done").await?;
//! let recording = relay.finish(Duration::from_secs(5)).await;
//! upstream.shutdown().await;
//!
//! // 2. recording.save("tests/fixtures/echo.jsonl")?; and later Recording::load(..)?
//!
//! // 3. Replay it: no upstream any more.
//! let options = ReplayOptions::default().matcher(Matcher::volatile());
//! let server = ReplayServer::start(recording, options).await?;
//! let (client, mut messages) =
//!     Client::connect(ClientConfig::builder(server.url()).build()?, DefaultHandler);
//! client.send_text(r#"{"op":"subscribe","args":["btc"]}"#).await?;
//! assert_eq!(messages.recv().await.expect("running")?.as_text(), echo.as_text());
//! client.close(1000, "done").await?;
//! server.finish(Duration::from_secs(5)).await.assert_ok();
//! # Ok(()) }
//! ```

// Public (and re-exported flat below) because each module's docs are the reference users need:
// the file format, the matching rules, the redaction rules, how the relay and the server work.
pub mod format;
pub mod matcher;
pub mod redact;
pub mod relay;
pub mod report;
pub mod server;
mod wire;

pub use format::{
    CloseInfo, ConnectionScript, Direction, FORMAT_NAME, FORMAT_VERSION, FrameRecord, Header, Open,
    Record, RecordedFrame, Recording, RecordingError,
};
pub use matcher::{Matcher, VOLATILE_FIELDS};
pub use redact::{REDACTED, Redactions, redact_url};
pub use relay::{Relay, RelayError, RelayOptions};
pub use report::{Issue, ReplayReport};
pub use server::{MISMATCH_CLOSE_CODE, Pace, ReplayError, ReplayOptions, ReplayServer};
