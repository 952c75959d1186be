//! Local servers for testing nova clients.

mod anvil;
pub mod bybit;
pub mod deribit;
pub mod discord;
pub mod hostile;
mod proxy;
pub mod redis;
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
pub use sim::{JsonRpcServer, OpServer, SimOptions};
pub use tls::{IssuedCert, TestCa};
