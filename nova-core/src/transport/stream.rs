//! The byte stream under a WebSocket connection: plain TCP for `ws://`, TLS over TCP for
//! `wss://`.
//!
//! [`NovaStream`] is a two-variant enum that implements `AsyncRead` and `AsyncWrite` by
//! matching on the variant, so the hot path has no dynamic dispatch. When a proxy is used, the
//! TCP stream is the tunnel through the proxy and TLS runs inside it, end to end.
//!
//! [`AdaptiveStream`] sits between it and tungstenite and gives reads a buffer that fits the
//! traffic: tungstenite itself keeps only a small buffer (it zero-fills the whole buffer before
//! every read, so its size is resident memory for every connection, idle or not); when a read
//! fills that small buffer — more data is waiting — the stream switches to a burst buffer of
//! [`TransportConfig::read_buffer_size`](super::TransportConfig::read_buffer_size) and reads up
//! to that much per system call, handing it out from memory; when traffic calms down (reads
//! that the small buffer could have taken, then nothing to read) the burst buffer is released.

use std::{
    fmt, io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// A WebSocket connection's underlying stream. Internal: the public API shows what it needs
/// of it through [`Connected`](super::Connected), so no rustls type is part of nova's API.
pub(crate) enum NovaStream {
    /// `ws://`: plain TCP.
    Plain(TcpStream),
    /// `wss://`: TLS (rustls) over TCP. Boxed: the TLS state is large.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A WebSocket connection over a [`NovaStream`] (through an [`AdaptiveStream`]). Internal: the
/// runtime's socket; tokio-tungstenite is not part of nova's API.
pub(crate) type WsStream = tokio_tungstenite::WebSocketStream<AdaptiveStream>;

/// The most tungstenite reads at once (it zero-fills that much before every read): small, since
/// under load the burst buffer serves its reads from memory. 2 KiB costs fewer instructions per
/// message than 4 KiB in the flood benchmark (less zero-filling).
pub(crate) const SMALL_READ_BUFFER: usize = 2048;

/// Consecutive reads that fit the small buffer after which the burst buffer is released at the
/// next moment nothing is left to read.
const CALM_READS: u32 = 4;

/// A [`NovaStream`] whose reads use a buffer that grows with the traffic and is released when
/// the connection is quiet. Dereferences to the [`NovaStream`].
pub(crate) struct AdaptiveStream {
    inner: NovaStream,
    /// The burst buffer (empty when released); `buf[start..end]` is read but not handed out.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Size of the burst buffer when it is allocated.
    burst: usize,
    /// Consecutive reads that the caller's own buffer could have taken.
    calm: u32,
}

impl AdaptiveStream {
    /// Wraps `inner`; under load, reads take up to `burst` bytes at once (0: never buffer).
    pub(crate) fn new(inner: NovaStream, burst: usize) -> Self {
        Self {
            inner,
            buf: Box::default(),
            start: 0,
            end: 0,
            burst,
            calm: 0,
        }
    }

    /// Bytes held by the burst buffer now (0 when released).
    #[must_use]
    #[allow(
        dead_code,
        reason = "a diagnostic kept for memory work; no caller today"
    )]
    pub(crate) fn burst_capacity(&self) -> usize {
        self.buf.len()
    }

    fn copy_out(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.end - self.start);
        out.put_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

impl std::ops::Deref for AdaptiveStream {
    type Target = NovaStream;
    fn deref(&self) -> &NovaStream {
        &self.inner
    }
}

impl std::ops::DerefMut for AdaptiveStream {
    fn deref_mut(&mut self) -> &mut NovaStream {
        &mut self.inner
    }
}

impl fmt::Debug for AdaptiveStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveStream")
            .field("inner", &self.inner)
            .field("burst_capacity", &self.buf.len())
            .field("buffered", &(self.end - self.start))
            .finish()
    }
}

impl AsyncRead for AdaptiveStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            this.copy_out(out);
            return Poll::Ready(Ok(()));
        }
        let wanted = out.remaining();
        if this.buf.is_empty() {
            // Direct: read into the caller's buffer. Filled to the brim means more is waiting.
            let before = out.filled().len();
            let poll = Pin::new(&mut this.inner).poll_read(cx, out);
            let got = out.filled().len() - before;
            if matches!(poll, Poll::Ready(Ok(()))) && got == wanted && this.burst > wanted {
                this.buf = vec![0; this.burst].into_boxed_slice();
                this.calm = 0;
            }
            return poll;
        }
        let mut into = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut into) {
            Poll::Ready(Ok(())) => {
                let got = into.filled().len();
                this.calm = if got <= wanted { this.calm + 1 } else { 0 };
                this.start = 0;
                this.end = got;
                this.copy_out(out);
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if this.calm >= CALM_READS {
                    this.buf = Box::default();
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncWrite for AdaptiveStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl NovaStream {
    /// The TCP socket underneath (to the server, or to the proxy when tunnelled).
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            NovaStream::Plain(tcp) => tcp,
            NovaStream::Tls(tls) => tls.get_ref().0,
        }
    }

    /// `true` for `wss://`.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, NovaStream::Tls(_))
    }

    /// The ALPN protocol the TLS server selected, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
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
