//! nova: a WebSocket client SDK for connections that must stay up for weeks.
//!
//! You write what is special about your application; nova owns the connection: connect,
//! authenticate, subscribe, heartbeat, rate-limit, notice a dead peer, reconnect with backoff,
//! and report all of it. This crate is the facade: it re-exports everything in `nova-core` (the
//! seven behaviour traits, the [`Client`] runtime, configuration and types), offers a
//! [`prelude`], and the [`client`] attribute behind the default `macros` feature.
//!
//! ```no_run
//! use nova::prelude::*;
//!
//! # async fn run() -> Result<(), nova::Error> {
//! let config = ClientConfig::builder("wss://echo.example/ws").name("demo").build()?;
//! let (client, mut messages) = Client::connect(config, nova::AlwaysReconnect);
//! client.send_text("hello").await?;
//! while let Some(Ok(message)) = messages.recv().await {
//!     println!("{message:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! # `#[nova::client]`: a client from a strategy, a platform and your callbacks
//!
//! The seven behaviour traits ([`ConnectionHandler`], [`MessageHandler`],
//! [`SubscriptionHandler`], [`AuthHandler`], [`ErrorHandler`], [`HeartbeatHandler`],
//! [`RateLimitHandler`]) have a default for every callback. The attribute writes all seven impls
//! for a type, taking each callback from, in this order:
//!
//! 1. **your own method**, when the attribute is on the type's `impl` block and the block has a
//!    method with that callback's name (the seed's `defoverridable`);
//! 2. **the platform adapter** (`platform = ...`), for the protocol behaviours: message,
//!    subscription, auth, heartbeat, rate limit;
//! 3. **the strategy** (`strategy = "..."`), for the callbacks it defines;
//! 4. **the trait's default**.
//!
//! | strategy | callbacks | behaviour |
//! |---|---|---|
//! | `"always_reconnect"` | `handle_disconnect`, `should_reconnect` | reconnect after `250 ms × 2^attempt` (capped at 30 s, less the configured jitter), also after failed connects ([`AlwaysReconnect`]) |
//! | `"fail_fast"` | `handle_disconnect`, `should_reconnect` | stop at the first disconnect, with its reason, and at the first failed connect ([`FailFast`]) |
//! | `"log_and_continue"` | `handle_disconnect`, `should_reconnect`, `log_error` | log each disconnect as a warning, reconnect after `1000 ms × (attempt + 1)`; log errors at error level ([`LogAndContinue`]) |
//! | `"echo"` | `handle_frame`, `handle_message` | answer text frames with text and binary with binary, deliver every message ([`Echo`]) |
//! | `"default"` or none | — | the traits' defaults |
//!
//! ## On a struct: a complete client
//!
//! ```
//! #[nova::client(strategy = "fail_fast")]
//! struct Watchdog;
//!
//! fn assert_handler<T: nova::Handler>() {}
//! assert_handler::<Watchdog>();
//! ```
//!
//! ## On the `impl` block: override single callbacks
//!
//! Methods named like a callback go into their trait's impl (their signature is checked, with
//! an error on your tokens when it does not fit); every other item stays an ordinary method.
//! Put the attribute on **either** the struct **or** its `impl` block, never both (that would
//! implement each trait twice). Use the `impl` form as soon as you override anything; the
//! struct stays a plain struct.
//!
//! ```
//! use nova::prelude::*;
//!
//! struct Bot {
//!     seen: u64,
//! }
//!
//! #[nova::client(strategy = "always_reconnect")]
//! impl Bot {
//!     fn handle_message(&mut self, message: Message, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
//!         self.count();
//!         ctx.deliver(message);
//!         Ok(())
//!     }
//!
//!     fn count(&mut self) {
//!         self.seen += 1; // an ordinary method
//!     }
//! }
//! # fn assert_handler<T: nova::Handler>() {}
//! # assert_handler::<Bot>();
//! ```
//!
//! ## With a platform adapter
//!
//! `platform = Adapter` delegates the protocol behaviours (message, subscription, auth,
//! heartbeat, rate limit) to an adapter value held in the struct, so a bot overrides only
//! `handle_message` and keeps the adapter's auth, heartbeat and subscriptions. On a struct, the
//! adapter is the field marked `#[nova(platform)]` (then `platform = ...` may be left out), the
//! field named by `platform_field = name`, or the only field of the given type. On an `impl`
//! block the macro cannot see the fields: the adapter is `self.platform`, or the field named by
//! `platform_field = name`.
//!
//! ```
//! use std::time::Duration;
//! use nova::prelude::*;
//!
//! /// A platform adapter: usually from a `nova-<platform>` crate.
//! #[nova::client]
//! struct Venue;
//!
//! struct Bot {
//!     venue: Venue,
//! }
//!
//! #[nova::client(strategy = "always_reconnect", platform = Venue, platform_field = venue)]
//! impl Bot {
//!     fn handle_message(&mut self, message: Message, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
//!         ctx.deliver(message);
//!         Ok(())
//!     }
//! }
//! # fn assert_handler<T: nova::Handler>() {}
//! # assert_handler::<Bot>();
//! ```
//!
//! ## Writing one trait by hand
//!
//! `manual(Trait, ...)` leaves the listed traits out of the expansion; you write their impls.
//!
//! ```
//! use nova::prelude::*;
//!
//! #[nova::client(strategy = "log_and_continue", manual(AuthHandler))]
//! struct Bot {
//!     token: nova::Secret,
//! }
//!
//! impl AuthHandler for Bot {
//!     fn generate_auth_data(&mut self, auth: &AuthRequest, _ctx: &mut Context<'_>) -> Result<Option<Message>, HandlerError> {
//!         let (id, token) = (&auth.id, self.token.expose());
//!         Ok(Some(Message::text(format!(r#"{{"id":"{id}","op":"auth","token":"{token}"}}"#))))
//!     }
//!
//!     fn handle_auth_response(&mut self, response: &Message, _ctx: &mut Context<'_>) -> AuthOutcome {
//!         match response.as_text() {
//!             Some(r#"{"op":"auth","success":true}"#) => AuthOutcome::Authenticated,
//!             _ => AuthOutcome::NotAuthResponse,
//!         }
//!     }
//! }
//! # fn assert_handler<T: nova::Handler>() {}
//! # assert_handler::<Bot>();
//! ```
//!
//! ## Renamed dependency
//!
//! The generated code names nova by an absolute path, `::nova` by default. When nova is reached
//! by another name (a renamed dependency, or a re-export from your own SDK crate), say so with
//! `crate = "::my_nova"`.
//!
//! ## Errors
//!
//! Mistakes are compile errors on your own tokens: an unknown strategy (listing the valid
//! ones), an unknown or duplicate key, a callback with the wrong signature (showing the expected
//! one), the attribute on something that is neither a struct nor an `impl` block. Your item is
//! still emitted, so the rest of the crate keeps compiling and the editor keeps working.
//!
//! # Feature flags
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `macros` | yes | `#[nova::client]` (the `nova-macros` crate) |
//! | `webpki-roots` | yes | trust Mozilla's root certificates, compiled in |
//! | `ring` | yes | TLS crypto provider: rustls's *ring* backend |
//! | `aws-lc-rs` | no | TLS crypto provider: rustls's aws-lc-rs backend (needs cmake and a C compiler); ring wins when both are on |
//! | `settings` | yes | [`Settings::load`] and [`Settings::from_toml`]: settings from a TOML file |
//! | `native-roots` | no | allow [`TlsRoots::Native`]: the operating system's certificate store |
//! | `testing` | no | `nova::testing`: run handler callbacks in unit tests without a socket |

pub use nova_core::*;

/// Makes a type a complete nova client. See the [crate documentation](crate#novaclient-a-client-from-a-strategy-a-platform-and-your-callbacks).
///
/// `#[nova::client(strategy = "...", platform = Adapter, platform_field = name, manual(Trait, ...), crate = "path")]`,
/// every key optional, on a struct or on its inherent `impl` block.
#[cfg(feature = "macros")]
pub use nova_macros::client;

/// The names most clients need: the seven behaviour traits, the client and its configuration,
/// the context and messages callbacks work with, and the decisions they return.
///
/// ```
/// use nova::prelude::*;
///
/// struct Quiet;
///
/// impl ErrorHandler for Quiet {
///     fn log_error(&mut self, _error: &Error, _context: &ErrorContext) {}
/// }
/// ```
pub mod prelude {
    pub use nova_core::{
        AuthHandler, AuthOutcome, AuthRequest, Client, ClientConfig, ConnectInfo,
        ConnectionHandler, Context, DisconnectReason, Error, ErrorAction, ErrorContext,
        ErrorHandler, Frame, FrameAction, Handler, HandlerError, HeartbeatHandler, LifecycleEvent,
        Message, MessageHandler, MessageType, Operation, RateLimitAction, RateLimitDecision,
        RateLimitHandler, ReconnectDecision, StopReason, Subscription, SubscriptionHandler,
    };
}

/// Paths the code generated by `#[nova::client]` uses. Not public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use nova_core::*;
    pub use serde_json;
}

/// Every Rust code block of the workspace README, compiled (and run, unless `no_run`) as a
/// doctest.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The crate README's code blocks (what crates.io shows), compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
