//! Messages and frames: what travels over a WebSocket, as the handlers see it.
//!
//! A [`Message`] is a complete data message (text or binary). A [`Frame`] is anything the
//! connection reads, control frames included; [`ConnectionHandler::handle_frame`] sees frames,
//! [`MessageHandler::handle_message`] sees messages. Both are cheap to clone: the payload is a
//! reference-counted [`Bytes`] buffer shared with the socket layer, never copied.
//!
//! [`ConnectionHandler::handle_frame`]: crate::ConnectionHandler::handle_frame
//! [`MessageHandler::handle_message`]: crate::MessageHandler::handle_message

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite;
use tungstenite::Utf8Bytes;

/// UTF-8 text, shared without copying with the buffer it was read into.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Utf8Bytes);

impl Text {
    /// Text from a static string, without allocating.
    #[must_use]
    pub const fn from_static(s: &'static str) -> Self {
        Self(Utf8Bytes::from_static(s))
    }

    /// The text as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub(crate) fn into_inner(self) -> Utf8Bytes {
        self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

/// A complete WebSocket data message.
///
/// Not `#[non_exhaustive]`: RFC 6455 has exactly these two kinds of data message, so a
/// `match` on a message can stay exhaustive.
///
/// ```
/// use nova_core::Message;
///
/// let m = Message::text(r#"{"jsonrpc":"2.0","id":1,"result":true}"#);
/// assert!(m.is_text());
/// let v: serde_json::Value = m.json().unwrap();
/// assert_eq!(v["id"], 1);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8, checked by the WebSocket layer).
    Text(Text),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    #[must_use]
    pub fn text(s: impl Into<Text>) -> Self {
        Self::Text(s.into())
    }

    /// A binary message.
    #[must_use]
    pub fn binary(b: impl Into<Bytes>) -> Self {
        Self::Binary(b.into())
    }

    /// A text message holding `value` serialized as JSON.
    ///
    /// # Errors
    /// When `value` cannot be serialized (a map with non-string keys, a failing `Serialize` impl).
    pub fn json_of<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_string(value).map(Self::text)
    }

    /// Whether this is a text message.
    #[must_use]
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// The text, for a text message.
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(t) => Some(t.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The payload bytes, whatever the kind.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(t) => t.as_bytes(),
            Self::Binary(b) => b,
        }
    }

    /// Payload length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// Deserializes the payload as JSON (text or binary).
    ///
    /// # Errors
    /// When the payload is not valid JSON for `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.as_bytes())
    }

    /// The kind of message as a short static label (`"text"` or `"binary"`), for telemetry.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Binary(_) => "binary",
        }
    }

    pub(crate) fn into_ws(self) -> tungstenite::Message {
        match self {
            Self::Text(t) => tungstenite::Message::Text(t.into_inner()),
            Self::Binary(b) => tungstenite::Message::Binary(b),
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads can be large; show at most 256 bytes of them.
        const SHOWN: usize = 256;
        match self {
            Self::Text(t) => {
                let s = t.as_str();
                let end = s
                    .char_indices()
                    .map(|(i, _)| i)
                    .take_while(|&i| i <= SHOWN)
                    .last();
                match end {
                    Some(end) if s.len() > SHOWN => {
                        write!(f, "Text({:?}… {} bytes)", &s[..end], s.len())
                    }
                    _ => write!(f, "Text({s:?})"),
                }
            }
            Self::Binary(b) if b.len() > SHOWN => write!(f, "Binary({} bytes)", b.len()),
            Self::Binary(b) => write!(f, "Binary({b:?})"),
        }
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Self::text(s)
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Self::text(s)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Self::binary(b)
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Self::binary(b)
    }
}

/// A WebSocket close frame: a status code and a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code (1000 normal, 1001 going away, 1008 policy violation, 4000-4999 private).
    pub code: u16,
    /// A human-readable reason (at most 123 bytes on the wire).
    pub reason: String,
}

/// Anything the connection reads: data messages and control frames.
///
/// Not `#[non_exhaustive]`: these are RFC 6455's frames (the protocol's reserved opcodes are
/// errors, not new frames).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A text message.
    Text(Text),
    /// A binary message.
    Binary(Bytes),
    /// A ping (the runtime answers it with a pong by itself).
    Ping(Bytes),
    /// A pong (the runtime uses it for dead-peer detection).
    Pong(Bytes),
    /// The peer closes the connection.
    Close(Option<CloseFrame>),
}

impl Frame {
    /// The data message in this frame, if it is one.
    #[must_use]
    pub fn into_message(self) -> Option<Message> {
        match self {
            Self::Text(t) => Some(Message::Text(t)),
            Self::Binary(b) => Some(Message::Binary(b)),
            _ => None,
        }
    }

    /// A frame carrying `message`.
    #[must_use]
    pub fn from_message(message: Message) -> Self {
        match message {
            Message::Text(t) => Self::Text(t),
            Message::Binary(b) => Self::Binary(b),
        }
    }

    pub(crate) fn from_ws(m: tungstenite::Message) -> Option<Self> {
        Some(match m {
            tungstenite::Message::Text(t) => Self::Text(Text(t)),
            tungstenite::Message::Binary(b) => Self::Binary(b),
            tungstenite::Message::Ping(b) => Self::Ping(b),
            tungstenite::Message::Pong(b) => Self::Pong(b),
            tungstenite::Message::Close(c) => Self::Close(c.map(|c| CloseFrame {
                code: c.code.into(),
                reason: c.reason.as_str().to_owned(),
            })),
            tungstenite::Message::Frame(_) => return None,
        })
    }

    pub(crate) fn into_ws(self) -> tungstenite::Message {
        match self {
            Self::Text(t) => tungstenite::Message::Text(t.0),
            Self::Binary(b) => tungstenite::Message::Binary(b),
            Self::Ping(b) => tungstenite::Message::Ping(b),
            Self::Pong(b) => tungstenite::Message::Pong(b),
            Self::Close(c) => {
                tungstenite::Message::Close(c.map(|c| tungstenite::protocol::CloseFrame {
                    code: c.code.into(),
                    reason: c.reason.into(),
                }))
            }
        }
    }
}
