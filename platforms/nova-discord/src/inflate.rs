//! `zlib-stream` transport compression, the receiving side.
//!
//! With `compress=zlib-stream` every gateway payload arrives deflated through one zlib context
//! that lives as long as the connection, each message flushed with `Z_SYNC_FLUSH` so that it
//! ends with `00 00 ff ff`. A payload may be split across several WebSocket messages: bytes are
//! buffered until that suffix, then inflated through the connection's one inflate context.
//! Both the buffered input and the inflated output are bounded; corrupt input is a typed error
//! after which the context is unusable (reconnect, resumably, with a fresh
//! [`ZlibStreamInflater`]).

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::InflateError;

/// The suffix that ends every complete `zlib-stream` message.
pub const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The default bound on one inflated message: 8 MiB (a large guild's GUILD_CREATE is a few
/// MiB).
pub const DEFAULT_MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Output buffers larger than this are given back after the message that needed them.
const KEEP_CAPACITY: usize = 64 * 1024;

/// One connection's inflate context.
///
/// ```
/// use flate2::{Compress, Compression, FlushCompress};
/// use nova_discord::ZlibStreamInflater;
///
/// // What the server does: one deflate context, a sync flush per message.
/// let mut deflate = Compress::new(Compression::default(), true);
/// let mut frame = Vec::with_capacity(256);
/// deflate.compress_vec(br#"{"op":11}"#, &mut frame, FlushCompress::Sync)?;
///
/// let mut inflater = ZlibStreamInflater::new(1 << 20);
/// let (head, tail) = frame.split_at(3);
/// assert_eq!(inflater.push_text(head)?, None); // not a whole message yet
/// assert_eq!(inflater.push_text(tail)?, Some(r#"{"op":11}"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ZlibStreamInflater {
    decompress: Decompress,
    pending: Vec<u8>,
    out: Vec<u8>,
    max_message: usize,
}

impl Default for ZlibStreamInflater {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE)
    }
}

impl ZlibStreamInflater {
    /// A fresh context (expects the zlib header first) whose messages may inflate to at most
    /// `max_message` bytes.
    #[must_use]
    pub fn new(max_message: usize) -> Self {
        Self {
            decompress: Decompress::new(true),
            pending: Vec::new(),
            out: Vec::new(),
            max_message,
        }
    }

    /// Starts over for a new connection.
    pub fn reset(&mut self) {
        self.decompress.reset(true);
        self.pending.clear();
        self.out.clear();
    }

    /// Feeds one WebSocket binary message. `Some(bytes)` when it completed a gateway message
    /// (the inflated JSON), `None` when more is needed.
    ///
    /// # Errors
    /// [`InflateError::Corrupt`] on invalid data, [`InflateError::TooLarge`] past the bound,
    /// [`InflateError::StreamEnded`] if the server ended the zlib stream.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<&[u8]>, InflateError> {
        let complete = if self.pending.is_empty() {
            frame.ends_with(&ZLIB_SUFFIX)
        } else {
            ends_with_suffix(&self.pending, frame)
        };
        if !complete || !self.pending.is_empty() {
            if self.pending.len() + frame.len() > self.max_message {
                self.pending.clear();
                return Err(InflateError::TooLarge {
                    limit: self.max_message,
                });
            }
            self.pending.extend_from_slice(frame);
            if !complete {
                return Ok(None);
            }
            let input = std::mem::take(&mut self.pending);
            let result = self.inflate(&input);
            // Keep the buffer's allocation for the next split message.
            self.pending = input;
            self.pending.clear();
            result?;
        } else {
            self.inflate(frame)?;
        }
        Ok(Some(&self.out))
    }

    /// As [`push`](Self::push), as text.
    ///
    /// # Errors
    /// As [`push`](Self::push), and [`InflateError::Utf8`] when the message is not UTF-8.
    pub fn push_text(&mut self, frame: &[u8]) -> Result<Option<&str>, InflateError> {
        match self.push(frame)? {
            Some(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(InflateError::Utf8),
            None => Ok(None),
        }
    }

    /// Inflates `input` (one or more whole sync-flushed blocks) into `self.out`.
    fn inflate(&mut self, mut input: &[u8]) -> Result<(), InflateError> {
        self.out.clear();
        if self.out.capacity() > KEEP_CAPACITY {
            self.out.shrink_to(KEEP_CAPACITY);
        }
        loop {
            if self.out.capacity() == self.out.len() {
                if self.out.len() >= self.max_message {
                    return Err(InflateError::TooLarge {
                        limit: self.max_message,
                    });
                }
                let grow = (input.len() * 4)
                    .max(self.out.capacity())
                    .max(1024)
                    .min(self.max_message - self.out.len());
                self.out.reserve_exact(grow);
            }
            let before = self.decompress.total_in();
            let out_before = self.out.len();
            let status = self
                .decompress
                .decompress_vec(input, &mut self.out, FlushDecompress::Sync)
                .map_err(|e| InflateError::Corrupt(Box::new(e)))?;
            let consumed =
                usize::try_from(self.decompress.total_in() - before).unwrap_or(usize::MAX);
            input = input.get(consumed..).unwrap_or_default();
            let room_left = self.out.len() < self.out.capacity();
            if status == Status::StreamEnd {
                return Err(InflateError::StreamEnded);
            }
            // All input taken and room left over: the flush is complete. No progress with room
            // to spare: nothing more can come out of this input.
            let stuck = consumed == 0 && self.out.len() == out_before;
            if room_left && (input.is_empty() || stuck) {
                return Ok(());
            }
        }
    }
}

/// Whether `pending` followed by `frame` ends with [`ZLIB_SUFFIX`].
fn ends_with_suffix(pending: &[u8], frame: &[u8]) -> bool {
    if frame.len() >= ZLIB_SUFFIX.len() {
        return frame.ends_with(&ZLIB_SUFFIX);
    }
    let need = ZLIB_SUFFIX.len() - frame.len();
    pending.len() >= need
        && pending[pending.len() - need..] == ZLIB_SUFFIX[..need]
        && frame == &ZLIB_SUFFIX[need..]
}

#[cfg(test)]
mod tests {
    use flate2::{Compress, Compression, FlushCompress};

    use super::*;

    /// The server side: one context, a sync flush per message.
    struct Deflater(Compress);

    impl Deflater {
        fn new() -> Self {
            Self(Compress::new(Compression::default(), true))
        }

        fn message(&mut self, text: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(text.len() + 1024);
            let mut input = text;
            loop {
                let before = self.0.total_in();
                let status = self.0.compress_vec(input, &mut out, FlushCompress::Sync);
                assert!(status.is_ok());
                let used = usize::try_from(self.0.total_in() - before).unwrap_or(0);
                input = &input[used..];
                if input.is_empty() && out.len() < out.capacity() {
                    return out;
                }
                out.reserve(out.capacity());
            }
        }
    }

    #[test]
    fn messages_through_one_context() {
        let mut deflater = Deflater::new();
        let mut inflater = ZlibStreamInflater::default();
        let big = format!(r#"{{"op":0,"d":"{}"}}"#, "abc".repeat(200_000));
        for text in [r#"{"op":10}"#, big.as_str(), r#"{"op":11}"#, big.as_str()] {
            let frame = deflater.message(text.as_bytes());
            assert!(frame.ends_with(&ZLIB_SUFFIX));
            let got = inflater.push_text(&frame).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got, Some(text));
        }
    }

    #[test]
    fn split_frames_wait_for_the_suffix() {
        let mut deflater = Deflater::new();
        let mut inflater = ZlibStreamInflater::default();
        let text = r#"{"op":0,"t":"X","s":1,"d":{"a":"bbbbbbbbbbbbbbbbbbbb"}}"#;
        let frame = deflater.message(text.as_bytes());
        // Split inside the suffix itself.
        let cut = frame.len() - 2;
        assert_eq!(inflater.push(&frame[..cut]).ok().flatten(), None);
        assert_eq!(inflater.push_text(&frame[cut..]).ok().flatten(), Some(text));
        // Byte by byte.
        let frame = deflater.message(text.as_bytes());
        let mut result = None;
        for byte in &frame {
            result = inflater
                .push_text(std::slice::from_ref(byte))
                .ok()
                .flatten()
                .map(str::to_owned);
        }
        assert_eq!(result.as_deref(), Some(text));
    }

    #[test]
    fn bounded_output() {
        let mut deflater = Deflater::new();
        let mut inflater = ZlibStreamInflater::new(1000);
        let frame = deflater.message(&vec![b'x'; 10_000]);
        assert!(frame.len() < 1000, "compresses well");
        assert!(matches!(
            inflater.push(&frame),
            Err(InflateError::TooLarge { limit: 1000 })
        ));
        // Buffered input is bounded too.
        let mut inflater = ZlibStreamInflater::new(10);
        assert!(matches!(inflater.push(&[1; 8]), Ok(None)));
        assert!(matches!(
            inflater.push(&[1; 8]),
            Err(InflateError::TooLarge { .. })
        ));
    }

    #[test]
    fn corrupt_input_is_an_error() {
        let mut inflater = ZlibStreamInflater::default();
        let garbage = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0xff, 0xff];
        assert!(matches!(
            inflater.push(&garbage),
            Err(InflateError::Corrupt(_))
        ));
        // A valid header then a message from another context.
        let mut ours = Deflater::new();
        let mut theirs = Deflater::new();
        let mut inflater = ZlibStreamInflater::default();
        assert!(inflater.push(&ours.message(b"{}")).is_ok());
        let foreign = theirs.message(b"{\"op\":1}");
        assert!(matches!(
            inflater.push(&foreign),
            Err(InflateError::Corrupt(_))
        ));
        // A fresh context after reset works again.
        inflater.reset();
        let mut fresh = Deflater::new();
        assert_eq!(
            inflater.push_text(&fresh.message(b"{}")).ok().flatten(),
            Some("{}")
        );
    }

    #[test]
    fn not_utf8() {
        let mut deflater = Deflater::new();
        let mut inflater = ZlibStreamInflater::default();
        let frame = deflater.message(&[0xff, 0xfe]);
        assert!(matches!(
            inflater.push_text(&frame),
            Err(InflateError::Utf8(_))
        ));
    }
}
