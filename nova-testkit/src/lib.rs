//! Local servers for testing nova clients, on `127.0.0.1`, without a network.
//!
//! - [`TestServer`] ([`ServerOptions`], [`ServerConnection`]): a WebSocket server that echoes
//!   or answers through a [`Responder`], records every frame and handshake, and injects faults
//!   (drop the TCP connection, go silent, close with a code, invalid UTF-8, oversized frames,
//!   refused or delayed handshakes), over TLS too ([`TestCa`]).
//! - [`ConnectProxy`], [`Socks5Proxy`]: HTTP CONNECT and SOCKS5 proxies.
//! - Simulators: [`JsonRpcServer`] (JSON-RPC 2.0, Deribit's shape), [`OpServer`] (Bybit's
//!   shape), and fuller ones for [`deribit`], [`bybit`], [`discord`] and [`slack`].
//! - [`Anvil`] (a local Ethereum node) and [`RedisServer`] harnesses.
//! - [`replay`]: record a live session through a [`Relay`] and serve it back with a
//!   [`ReplayServer`] that checks the client's side: an incident becomes a test.
//!
//! A nova client against the echo server:
//!
//! ```
//! use nova_core::{Client, ClientConfig, DefaultHandler};
//! use nova_testkit::TestServer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start().await?;
//! let config = ClientConfig::builder(server.url()).build()?;
//! let (client, mut messages) = Client::connect(config, DefaultHandler);
//! client.send_text("hello").await?;
//! let echo = messages.recv().await.expect("the client is running")?;
//! assert_eq!(echo.as_text(), Some("hello"));
//! client.close(1000, "done").await?;
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod anvil;
pub mod bybit;
pub mod deribit;
pub mod discord;
pub mod hostile;
mod proxy;
pub mod redis;
pub mod replay;
pub mod server;
mod sim;
pub mod slack;
mod tls;

pub use server::{
    Frame, Received, Responder, ServerConnection, ServerOptions, TestServer, wait_until,
};

pub use anvil::{
    ANVIL_ENV, Anvil, AnvilBuilder, AnvilError, TICK_EMITTER_INIT_CODE, TICK_TOPIC, Ticker,
};
pub use proxy::{ConnectProxy, Socks5Proxy};
pub use redis::{RedisError, RedisServer};
pub use replay::{Recording, Relay, ReplayReport, ReplayServer};
pub use sim::{JsonRpcServer, OpServer, SimOptions};
pub use tls::{IssuedCert, TestCa};

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
