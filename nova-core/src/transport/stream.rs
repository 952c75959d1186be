//! The byte stream under a WebSocket connection: plain TCP for `ws://`, TLS over TCP for
//! `wss://`.
//!
//! [`NovaStream`] is a two-variant enum that implements `AsyncRead` and `AsyncWrite` by
//! matching on the variant, so the hot path has no dynamic dispatch. When a proxy is used, the
//! TCP stream is the tunnel through the proxy and TLS runs inside it, end to end.

use std::{
    fmt, io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// A WebSocket connection's underlying stream.
pub enum NovaStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS (rustls) over TCP. Boxed: the TLS state is large.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A WebSocket connection over a [`NovaStream`].
pub type WsStream = tokio_tungstenite::WebSocketStream<NovaStream>;

impl NovaStream {
    /// The TCP socket underneath (to the server, or to the proxy when tunnelled).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            NovaStream::Plain(tcp) => tcp,
            NovaStream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// `true` for `wss://`.
    pub fn is_tls(&self) -> bool {
        matches!(self, NovaStream::Tls(_))
    }

    /// The ALPN protocol the TLS server selected, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            NovaStream::Plain(_) => None,
            NovaStream::Tls(tls) => tls.get_ref().1.alpn_protocol(),
        }
    }
}

impl fmt::Debug for NovaStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (variant, tcp) = match self {
            NovaStream::Plain(tcp) => ("Plain", tcp),
            NovaStream::Tls(tls) => ("Tls", tls.get_ref().0),
        };
        f.debug_struct("NovaStream")
            .field("kind", &variant)
            .field("local_addr", &tcp.local_addr().ok())
            .field("peer_addr", &tcp.peer_addr().ok())
            .finish()
    }
}

impl AsyncRead for NovaStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NovaStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NovaStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NovaStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NovaStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NovaStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NovaStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            NovaStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            NovaStream::Plain(s) => s.is_write_vectored(),
            NovaStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NovaStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NovaStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NovaStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NovaStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
