//! Bybit V5 for nova: public market data, private account data and order entry over
//! WebSocket, with auth on every connect, heartbeats, subscriptions that survive reconnects,
//! order books that are never silently wrong, and order-entry rate limits.
//!
//! Scaffolded with `nova-gen integration bybit --platform generic`, then completed; see the
//! README for what the generator got wrong.
//!
//! # What is here
//!
//! - [`BybitClient`]: one connection to one [`Endpoint`] (`/v5/public/{spot,linear,inverse,option}`,
//!   `/v5/private`, `/v5/trade`): [`subscribe`](BybitClient::subscribe) to a [`Topic`],
//!   [`subscribe_book`](BybitClient::subscribe_book) for a maintained [`OrderBook`] through a
//!   [`BookStream`], and [`create_order`](BybitClient::create_order),
//!   [`amend_order`](BybitClient::amend_order), [`cancel_order`](BybitClient::cancel_order).
//! - [`BybitAdapter`] ([`BybitConfig`]): nova's behaviours for Bybit. `op: auth` with
//!   `HMAC-SHA256(secret, "GET/realtime" + expires)` ([`signature`]) before anything else on
//!   private and trade connections; `{"op":"ping"}` every 20 s with every endpoint's pong shape
//!   recognised ([`peek`]); subscribe acks matched by `req_id` (option acks, which have none,
//!   by order) and checked for `success`; books sequenced by `u` for the runtime's gap
//!   mechanism, a crossed book treated as a break; `20003`, `10006`, `10403`, `10429`
//!   recognised as rate limits ([`RetCode`]).
//! - [`Push`] / [`BybitEvent`]: typed data ([`Ticker`], [`PublicTrade`], [`BookMessage`],
//!   [`Kline`], [`Liquidation`], [`OrderUpdate`], [`Execution`], [`PositionUpdate`],
//!   [`WalletUpdate`]) with the raw JSON kept.
//! - [`OrderBook`]: a pure book (snapshot/delta, `u` continuity, `u == 1` restarts, `seq`,
//!   best bid/ask, levels, crossed check; typed [`BookError`]s, no panics).
//! - [`BybitLimits`]: the order-entry limit as a cost-weighted [`nova_core::RateLimit`].
//! - Order entry: [`OrderCreate`] (its `orderLinkId` is the idempotency key: a create cut off by
//!   a disconnect is not replayed; see [`trade`]), [`OrderAmend`], [`OrderCancel`],
//!   [`TradeResponse`].
//!
//! # Example
//!
//! Against the simulator of `nova-testkit`: a maintained book.
//!
//! ```
//! use nova_bybit::{BookEvent, BybitClient, BybitConfig, Endpoint, Topic};
//! use nova_testkit::bybit::BybitSim;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = BybitSim::start().await?;
//! let url = sim.url("/v5/public/linear");
//! let (bybit, _messages) = BybitClient::connect(&url, BybitConfig::new(Endpoint::Linear))?;
//! let mut book = bybit.subscribe_book(Topic::orderbook(50, "BTCUSDT")).await?;
//! while let Some(event) = book.next().await {
//!     if let BookEvent::Delta { .. } = event {
//!         let top = book.book().expect("valid after a snapshot and a delta");
//!         assert!(top.check_crossed().is_ok());
//!         println!("{top}");
//!         break;
//!     }
//! }
//! bybit.close().await?;
//! # Ok(()) }
//! ```

pub mod adapter;
pub mod auth;
pub mod book;
mod book_stream;
mod client;
mod endpoint;
mod error;
pub mod message;
mod rate_limit;
pub mod subscription;
pub mod trade;
mod types;

pub use adapter::{BybitAdapter, BybitConfig, PING_INTERVAL};
pub use auth::{Credentials, expires_in, now_ms, signature};
pub use book::{Applied, BookContinuity, BookData, BookError, BookMessage, Level, OrderBook};
pub use book_stream::{BookEvent, BookStream};
pub use client::BybitClient;
pub use endpoint::Endpoint;
pub use error::{BybitError, RetCode};
pub use message::{Ack, PING_OP, Peek, peek, peek_book, request_id};
pub use rate_limit::BybitLimits;
pub use subscription::{SUBSCRIBE_OP, Topic, UNSUBSCRIBE_OP, op_request};
pub use trade::{
    OrderAck, OrderAmend, OrderCancel, OrderCreate, OrderRef, OrderType, Side, TradeResponse,
    trade_request,
};
pub use types::{
    BybitEvent, Execution, Kline, Liquidation, OrderUpdate, PositionUpdate, PublicTrade, Push,
    Ticker, WalletCoin, WalletUpdate,
};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
