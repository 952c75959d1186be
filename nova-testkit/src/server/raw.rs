//! Hand-made WebSocket frames, written to the socket as raw bytes.
//!
//! Server-to-client frames are never masked (RFC 6455, section 5.1).

/// Opcode of a text frame.
pub(crate) const OPCODE_TEXT: u8 = 0x1;

/// An unmasked frame with FIN set and the given opcode and payload.
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = Vec::with_capacity(len + 10);
    out.push(0x80 | (opcode & 0x0f));
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(small), _) if small < 126 => out.push(small),
        (_, Ok(len16)) => {
            out.push(126);
            out.extend_from_slice(&len16.to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// A text frame whose payload is not valid UTF-8.
pub(crate) fn invalid_utf8_text() -> Vec<u8> {
    // 0xC3 starts a two-byte sequence; 0x28 is not a continuation byte. 0xFF never occurs in UTF-8.
    frame(OPCODE_TEXT, &[b'o', b'k', 0xC3, 0x28, 0xFF, 0xFE])
}

/// A well-formed text frame of `len` bytes of ASCII `'x'`.
pub(crate) fn text_of_len(len: usize) -> Vec<u8> {
    frame(OPCODE_TEXT, &vec![b'x'; len])
}

/// Bytes that no WebSocket peer may accept: all three RSV bits set (no extension was
/// negotiated) and a reserved non-control opcode (0x3), followed by a few junk bytes.
pub(crate) fn garbage() -> Vec<u8> {
    vec![0xF3, 0x04, 0xDE, 0xAD, 0xBE, 0xEF]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_encodings() {
        assert_eq!(frame(1, b"hi"), vec![0x81, 2, b'h', b'i']);
        let f = frame(1, &[0u8; 200]);
        assert_eq!(&f[..4], &[0x81, 126, 0, 200]);
        assert_eq!(f.len(), 204);
        let f = frame(2, &vec![0u8; 70_000]);
        assert_eq!(&f[..2], &[0x82, 127]);
        assert_eq!(
            u64::from_be_bytes(f[2..10].try_into().unwrap_or([0; 8])),
            70_000
        );
    }
}
