//! Discord's `zlib-stream` transport compression, the sending side.
//!
//! One zlib deflate context lives as long as the connection (RFC 1950 header once, at the
//! start); every gateway payload is fed through it and flushed with `Z_SYNC_FLUSH`, so each
//! WebSocket message ends on a byte boundary with the empty stored block `00 00 ff ff`. The
//! receiver keeps one inflate context for the connection and inflates when it sees that suffix.

use flate2::{Compress, Compression, FlushCompress, Status};

/// The suffix every `Z_SYNC_FLUSH`ed message ends with.
pub const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// One connection's deflate context.
///
/// ```
/// use nova_testkit::discord::ZlibStreamDeflater;
///
/// let mut deflater = ZlibStreamDeflater::new();
/// let first = deflater.compress(br#"{"op":10}"#);
/// assert!(first.ends_with(&[0x00, 0x00, 0xff, 0xff]));
/// let second = deflater.compress(br#"{"op":11}"#);
/// assert!(second.ends_with(&[0x00, 0x00, 0xff, 0xff]));
/// ```
#[derive(Debug)]
pub struct ZlibStreamDeflater {
    compress: Compress,
}

impl Default for ZlibStreamDeflater {
    fn default() -> Self {
        Self::new()
    }
}

impl ZlibStreamDeflater {
    /// A fresh context (the first message carries the zlib header).
    #[must_use]
    pub fn new() -> Self {
        Self {
            compress: Compress::new(Compression::default(), true),
        }
    }

    /// Deflates `payload` through the connection's context and sync-flushes it: the result is
    /// one WebSocket message, ending with [`ZLIB_SUFFIX`].
    #[must_use]
    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() / 2 + 64);
        let mut input = payload;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(64));
            }
            let before_in = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(input, &mut out, FlushCompress::Sync);
            let consumed = usize::try_from(self.compress.total_in() - before_in).unwrap_or(0);
            input = &input[consumed.min(input.len())..];
            match status {
                // Done when all input is in and the flush had room to finish.
                Ok(Status::Ok | Status::BufError)
                    if input.is_empty() && out.len() < out.capacity() =>
                {
                    break;
                }
                Ok(_) => {}
                // Deflate cannot fail on in-memory buffers; stop rather than loop.
                Err(_) => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use flate2::{Decompress, FlushDecompress};

    use super::*;

    #[test]
    fn messages_share_one_context_and_end_with_the_suffix() {
        let mut deflater = ZlibStreamDeflater::new();
        let mut inflate = Decompress::new(true);
        let big = "x".repeat(100_000);
        for text in ["{\"op\":10}", big.as_str(), "{\"op\":11}"] {
            let bytes = deflater.compress(text.as_bytes());
            assert!(bytes.ends_with(&ZLIB_SUFFIX));
            let mut out = Vec::with_capacity(text.len() + 64);
            let status = inflate.decompress_vec(&bytes, &mut out, FlushDecompress::Sync);
            assert!(status.is_ok());
            assert_eq!(out, text.as_bytes());
        }
    }
}
