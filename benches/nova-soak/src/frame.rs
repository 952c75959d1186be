//! Where WebSocket frames begin in a server-to-client byte stream, and the bad frames the relay
//! slips in at those boundaries.
//!
//! The relay forwards bytes, not frames; to inject a whole frame without cutting another in two
//! it follows the stream: first the HTTP upgrade response (up to the blank line), then frame
//! headers (RFC 6455 §5.2: two bytes, a 16- or 64-bit extended length, a masking key when the
//! mask bit is set) and payloads. [`FrameCursor::advance`] consumes a chunk and says the first
//! offset in it where a new frame would start.

/// A frame the relay injects to break the connection the way a misbehaving server would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// Opcode 0x3 (reserved): a protocol error, close code 1002.
    ReservedOpcode,
    /// A text frame whose payload is not UTF-8: close code 1007.
    InvalidUtf8,
    /// A binary frame header announcing 64 MiB, far past the client's limit: close code 1009.
    /// Nothing after it on this connection is a frame boundary any more.
    Oversized,
}

impl BadFrame {
    /// The bytes on the wire (a server's frames are not masked).
    pub(crate) fn bytes(self) -> Vec<u8> {
        match self {
            Self::ReservedOpcode => vec![0x83, 0x00],
            Self::InvalidUtf8 => vec![0x81, 0x04, 0xC3, 0x28, 0xA0, 0xA1],
            Self::Oversized => {
                let mut b = vec![0x82, 0x7F];
                b.extend_from_slice(&(64u64 << 20).to_be_bytes());
                b
            }
        }
    }
}

/// Where the cursor is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// In the HTTP response; `matched` bytes of `\r\n\r\n` seen.
    Http { matched: usize },
    /// In a frame header; `have` of its bytes seen.
    Header { buf: [u8; 14], have: usize },
    /// In a payload; `left` bytes to go.
    Payload { left: u64 },
}

/// Follows a server-to-client stream to find frame boundaries.
#[derive(Clone, Debug)]
pub(crate) struct FrameCursor {
    state: State,
    /// Close frames seen (opcode 0x8).
    closes: u64,
}

impl Default for FrameCursor {
    fn default() -> Self {
        Self {
            state: State::Http { matched: 0 },
            closes: 0,
        }
    }
}

/// How long the header whose first `have` bytes are `buf[..have]` is (as far as known).
fn header_len(buf: &[u8; 14], have: usize) -> usize {
    if have < 2 {
        return 2;
    }
    let ext = match buf[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if buf[1] & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// The payload length a complete header announces.
fn payload_len(buf: &[u8; 14]) -> u64 {
    match buf[1] & 0x7F {
        126 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    }
}

impl FrameCursor {
    /// Whether the next byte starts a frame.
    fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }

    /// Close frames seen so far.
    pub(crate) fn closes(&self) -> u64 {
        self.closes
    }

    /// Consumes `chunk`; returns the first offset in `0..=chunk.len()` at which a frame would
    /// start, if there is one.
    pub(crate) fn advance(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut first = None;
        let mut i = 0;
        loop {
            if first.is_none() && self.at_boundary() {
                first = Some(i);
            }
            if i >= chunk.len() {
                return first;
            }
            match &mut self.state {
                State::Http { matched } => {
                    const END: &[u8] = b"\r\n\r\n";
                    *matched = if chunk[i] == END[*matched] {
                        *matched + 1
                    } else if chunk[i] == b'\r' {
                        1
                    } else {
                        0
                    };
                    if *matched == END.len() {
                        self.state = State::Header {
                            buf: [0; 14],
                            have: 0,
                        };
                    }
                    i += 1;
                }
                State::Header { buf, have } => {
                    buf[*have] = chunk[i];
                    *have += 1;
                    i += 1;
                    if *have == header_len(buf, *have) {
                        if buf[0] & 0x0F == 0x8 {
                            self.closes += 1;
                        }
                        let left = payload_len(buf);
                        self.state = if left == 0 {
                            State::Header {
                                buf: [0; 14],
                                have: 0,
                            }
                        } else {
                            State::Payload { left }
                        };
                    }
                }
                State::Payload { left } => {
                    let avail = (chunk.len() - i) as u64;
                    let take = avail.min(*left);
                    *left -= take;
                    // `take` is at most `chunk.len() - i`, a usize.
                    i += usize::try_from(take).unwrap_or(chunk.len() - i);
                    if *left == 0 {
                        self.state = State::Header {
                            buf: [0; 14],
                            have: 0,
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HTTP: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";

    #[test]
    fn the_first_boundary_follows_the_http_response() {
        let mut c = FrameCursor::default();
        assert_eq!(c.advance(&HTTP[..10]), None);
        assert_eq!(c.advance(&HTTP[10..]), Some(HTTP.len() - 10));
        // At a boundary already: offset 0.
        assert_eq!(c.advance(&[0x81, 0x02, b'h']), Some(0));
        // In the middle of a payload: the boundary is after its last byte.
        assert_eq!(c.advance(&[b'i', 0x81]), Some(1));
    }

    #[test]
    fn extended_lengths_and_masks_are_followed() {
        let mut c = FrameCursor::default();
        c.advance(HTTP);
        let mut frame = vec![0x82, 126, 0x01, 0x00];
        frame.extend(std::iter::repeat_n(7u8, 256));
        let mut masked = vec![0x81, 0x80 | 3, 1, 2, 3, 4, b'a', b'b', b'c'];
        frame.append(&mut masked);
        // Fed one byte at a time, boundaries are found exactly at frame starts.
        let mut starts = Vec::new();
        for (i, b) in frame.iter().enumerate() {
            if c.advance(std::slice::from_ref(b)) == Some(0) {
                starts.push(i);
            }
        }
        assert_eq!(starts, vec![0, 260]);
        assert_eq!(c.closes(), 0);
        // A masked close frame, as a client sends it.
        c.advance(&[0x88, 0x82, 1, 2, 3, 4, 0x03, 0xE8]);
        assert_eq!(c.closes(), 1);
        assert_eq!(c.advance(&[]), Some(0));
        let mut big = vec![0x82, 127];
        big.extend_from_slice(&70_000u64.to_be_bytes());
        assert_eq!(c.advance(&big), Some(0));
        assert_eq!(c.advance(&vec![0; 69_999]), None);
        assert_eq!(c.advance(&[0, 0x89]), Some(1));
    }

    #[test]
    fn bad_frames_are_whole_frames() {
        let mut c = FrameCursor::default();
        c.advance(HTTP);
        for bad in [BadFrame::ReservedOpcode, BadFrame::InvalidUtf8] {
            assert_eq!(c.advance(&bad.bytes()), Some(0));
            assert_eq!(c.advance(&[]), Some(0), "{bad:?}");
        }
        assert_eq!(BadFrame::Oversized.bytes().len(), 10);
    }
}
