//! Transport: from a `ws://`/`wss://` URL and a [`TransportConfig`] to an established
//! WebSocket stream.
//!
//! The sequence, bounded as a whole by [`TransportConfig::connect_timeout`]:
//!
//! 1. parse the URL (`ws` → port 80, `wss` → port 443 by default);
//! 2. resolve the host and open TCP (or open TCP to the proxy);
//! 3. with a proxy, open the tunnel: HTTP `CONNECT` or SOCKS5 ([`ProxyConfig`]);
//! 4. for `wss://`, the TLS handshake through rustls/ring inside the tunnel ([`TlsConfig`]);
//! 5. the WebSocket handshake through tokio-tungstenite, with the configured headers,
//!    subprotocols and frame limits.
//!
//! The result is a [`Connected`]: a WebSocket over a `NovaStream` (plain or TLS, an enum
//! rather than a trait object), or a typed [`TransportError`] naming the failed step. The
//! socket libraries underneath (tokio-tungstenite, rustls) stay inside: `Connected` sends and
//! receives nova's [`Message`](crate::Message)s and [`Frame`](crate::Frame)s.
//! Build a [`Transport`] once per configuration and call [`Transport::connect`] for every
//! (re)connect; the free function [`connect`] is the one-shot form.

mod config;
mod connect;
mod error;
pub mod eyeballs;
mod proxy;
mod stream;
mod tls;

pub use config::{ClientIdentity, ProxyAuth, ProxyConfig, TlsConfig, TlsRoots, TransportConfig};
pub use connect::{Connected, Transport, connect};
pub use error::{ConnectStage, TransportError};
pub(crate) use stream::{AdaptiveStream, NovaStream, WsStream};
