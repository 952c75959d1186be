//! The core of nova: the seven behaviour traits, the transport, the connection runtime, its
//! configuration and types.
//!
//! Most applications depend on the `nova` facade crate, which re-exports everything here.
//!
//! ```no_run
//! use nova_core::{Client, ClientConfig, DefaultHandler};
//!
//! # async fn run() -> Result<(), nova_core::Error> {
//! let config = ClientConfig::builder("ws://127.0.0.1:9000").name("demo").build()?;
//! let (client, mut messages) = Client::connect(config, DefaultHandler);
//! client.send_text("hello").await?;
//! while let Some(message) = messages.recv().await {
//!     match message {
//!         Ok(message) => println!("{message:?}"),
//!         Err(lagged) => eprintln!("{lagged}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `webpki-roots` | yes | trust Mozilla's root certificates, compiled in |
//! | `ring` | yes | TLS crypto provider: rustls's *ring* backend |
//! | `aws-lc-rs` | no | TLS crypto provider: rustls's aws-lc-rs backend (FIPS-capable; needs cmake and a C compiler); ring wins when both are on, a process default installed by the application wins over both |
//! | `settings` | yes | [`Settings::load`] and [`Settings::from_toml`]: settings from a TOML file (the `toml` crate); [`Settings`] itself and [`Settings::from_env`] need no feature |
//! | `native-roots` | no | allow [`TlsRoots::Native`]: the operating system's certificate store |
//! | `testing` | no | `nova_core::testing`: run handler callbacks in unit tests without a socket |
//!
//! nova depends on the `log` crate with `max_level_debug`, so a binary that uses nova compiles
//! no `log` record above DEBUG (records through `tracing` are not affected): tungstenite logs
//! every frame's payload at TRACE, and those payloads carry API secrets and tokens.

mod backoff;
mod config;
mod endpoint;
mod error;
mod handler;
pub mod jsonrpc;
mod message;
mod rate_limit;
mod request;
mod runtime;
mod secret;
mod settings;
mod strategy;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use backoff::{Backoff, ReconnectStrategy};
pub use config::{ClientConfig, ClientConfigBuilder, OverflowPolicy};
pub use endpoint::{
    ConnectPurpose, EndpointError, EndpointFuture, EndpointRequest, EndpointSource,
};
pub use error::{BoxError, ConfigError, Error, HandlerError};
pub use handler::{
    AuthHandler, AuthOutcome, AuthRequest, ConnectionHandler, Context, Data, Decoder,
    DefaultHandler, ErrorAction, ErrorContext, ErrorHandler, ErrorSource, FrameAction, Gap,
    GapAction, Handler, HeartbeatHandler, MessageHandler, MessageType, Operation, RateLimitAction,
    RateLimitDecision, RateLimitHandler, ReconnectDecision, RequestId, Sequence, SequenceCheck,
    SubscriptionHandler,
};
pub use message::{CloseFrame, Frame, Message, Text};
pub use rate_limit::{RateLimit, RateLimiter, TokenBucket};
pub use request::Request;
pub use runtime::{
    Client, Delivery, InMemoryRegistry, Lagged, LifecycleEvent, Messages, SubscriptionEvent,
    SubscriptionRegistry, SubscriptionStream,
};
pub use secret::Secret;
pub use settings::{PlatformSettings, Settings};
pub use strategy::{AlwaysReconnect, Echo, FailFast, LogAndContinue};
pub use types::{
    ConnectInfo, ConnectionState, ConnectionStatus, DisconnectReason, StopReason, Subscription,
    SubscriptionStatus,
};

mod transport;
/// Happy Eyeballs internals, reachable for nova-core's own tests only: not part of the API.
#[doc(hidden)]
pub use transport::eyeballs as __happy_eyeballs;
pub use transport::{
    ClientIdentity, ConnectStage, Connected, ProxyAuth, ProxyConfig, TlsConfig, TlsRoots,
    Transport, TransportConfig, TransportError, connect,
};
