//! nova-core

mod transport;
pub use transport::{
    ClientIdentity, ConnectStage, Connected, NovaStream, ProxyAuth, ProxyConfig, TlsConfig,
    TlsRoots, Transport, TransportConfig, TransportError, WsStream, connect,
};
