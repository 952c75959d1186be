//! Deribit API v2 for nova: JSON-RPC 2.0 over WebSocket, with authentication, heartbeats,
//! subscriptions that survive reconnects, order-book continuity and credit-based rate limits.
//!
//! # What is here
//!
//! - [`DeribitAdapter`] ([`DeribitConfig`]): the five protocol behaviours. On every connect:
//!   `public/hello`, `public/set_heartbeat`, `public/auth` (`client_signature` or
//!   `client_credentials`); the token refreshed with the `refresh_token` grant before it
//!   expires; every `test_request` answered with `public/test`; subscriptions through
//!   `public/subscribe` / `private/subscribe`, their acks checked; books sequenced by
//!   `change_id` / `prev_change_id`, a gap closed by subscribing again for a fresh snapshot;
//!   `10028 too_many_requests` recognised.
//! - [`DeribitClient`]: typed calls (`get_instruments`, `ticker`, `buy`, `sell`, `cancel`,
//!   `get_positions`, any method through [`DeribitClient::call`]) and subscriptions.
//! - [`Channel`]: typed channel names; [`Notification`] / [`DeribitEvent`]: notification data
//!   as [`Ticker`], [`BookUpdate`], [`Trade`], [`Order`], [`UserTrade`], [`PriceIndex`], with
//!   the raw JSON kept.
//! - [`ErrorCode`], [`RpcError`], [`DeribitError`]: Deribit's documented error codes.
//! - [`Credentials`] (secret never in `Debug`), [`client_signature`].
//! - [`DeribitLimits`], [`operation_of`]: the credit costs of each method.
//!
//! # Wire protocol
//!
//! ```text
//! → {"jsonrpc":"2.0","id":1,"method":"public/auth","params":{"grant_type":"client_signature","client_id":"…",
//!    "timestamp":1576074319000,"nonce":"1iqt2wls","data":"","signature":"5659…9aa1"}}
//! ← {"jsonrpc":"2.0","id":1,"result":{"access_token":"…","expires_in":900,"refresh_token":"…","token_type":"bearer",…}}
//! → {"jsonrpc":"2.0","id":2,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms"]}}
//! ← {"jsonrpc":"2.0","id":2,"result":["book.BTC-PERPETUAL.100ms"]}
//! ← {"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"snapshot","change_id":297217,…}}}
//! ← {"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"change","prev_change_id":297217,"change_id":297218,…}}}
//! ← {"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}
//! → {"jsonrpc":"2.0","id":3,"method":"public/test","params":{}}
//! ```
//!
//! Tokens are scoped to the connection by default, and subscriptions belong to a connection:
//! after a reconnect, the adapter authenticates again and the runtime restores every
//! subscription (a book starts again from a snapshot).
//!
//! # Example
//!
//! Against the local simulator of `nova-testkit`:
//!
//! ```
//! use futures_util::StreamExt;
//! use nova_core::SubscriptionEvent;
//! use nova_deribit::{Channel, Credentials, DeribitClient, DeribitConfig, DeribitEvent, Interval, Notification};
//! use nova_testkit::deribit::{DeribitSim, TEST_CLIENT_ID, TEST_CLIENT_SECRET};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = DeribitSim::start().await?;
//! let config = DeribitConfig::default().credentials(Credentials::new(TEST_CLIENT_ID, TEST_CLIENT_SECRET));
//! let (deribit, _messages) = DeribitClient::connect(sim.url(), config)?;
//! let ticker = deribit.ticker("BTC-PERPETUAL").await?;
//! assert_eq!(ticker.instrument_name, "BTC-PERPETUAL");
//!
//! let mut book = deribit.subscribe(Channel::book("BTC-PERPETUAL", Interval::Ms100)).await?;
//! if let Some(SubscriptionEvent::Message(m)) = book.next().await {
//!     let DeribitEvent::Book(snapshot) = Notification::parse(&m)?.event()? else { panic!() };
//!     assert!(snapshot.is_snapshot());
//! }
//! deribit.close().await?;
//! # Ok(()) }
//! ```

mod adapter;
mod auth;
mod book_position;
mod client;
mod error;
mod message;
mod rate_limit;
mod subscription;
mod types;

pub use adapter::{DeribitAdapter, DeribitConfig};
pub use auth::{Credentials, Grant, client_signature, refresh_params};
pub use book_position::book_position;
pub use client::{DeribitClient, OrderRequest, OrderType, PRODUCTION_URL, TESTNET_URL};
pub use error::{DeribitError, ErrorCode, RpcError};
pub use message::{
    DeribitEvent, HEARTBEAT_METHOD, Incoming, MarketData, Notification, Peek, Response,
    SUBSCRIPTION_METHOD, error_code, peek, request, response_of,
};
pub use rate_limit::{Credits, DeribitLimits, operation_of};
pub use subscription::{Channel, ChannelKind, Interval};
pub use types::{
    AuthResult, BookLevel, BookUpdate, Direction, Instrument, Kind, LevelAction, Order,
    OrderResult, Position, PriceIndex, Ticker, TickerStats, Trade, UserTrade,
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
