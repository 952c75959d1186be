//! Local servers for testing nova clients.

mod proxy;
pub mod server;
mod sim;
mod tls;

pub use server::{
    Frame, Received, Responder, ServerConnection, ServerOptions, TestServer, wait_until,
};

pub use proxy::{ConnectProxy, Socks5Proxy};
pub use sim::{JsonRpcServer, OpServer, SimOptions};
pub use tls::{IssuedCert, TestCa};
