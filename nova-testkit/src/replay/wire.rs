//! Converting between tungstenite messages and [`RecordedFrame`]s.

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::format::{CloseInfo, RecordedFrame};

/// The frame a message is; `None` for a raw frame (never seen when reading).
pub(crate) fn from_message(message: Message) -> Option<RecordedFrame> {
    Some(match message {
        Message::Text(t) => RecordedFrame::Text(t.as_str().to_owned()),
        Message::Binary(b) => RecordedFrame::Binary(b.to_vec()),
        Message::Ping(b) => RecordedFrame::Ping(b.to_vec()),
        Message::Pong(b) => RecordedFrame::Pong(b.to_vec()),
        Message::Close(c) => RecordedFrame::Close(c.map(|c| CloseInfo {
            code: u16::from(c.code),
            reason: c.reason.as_str().to_owned(),
        })),
        Message::Frame(_) => return None,
    })
}

/// The message to send for a frame; `None` for [`RecordedFrame::Drop`].
pub(crate) fn to_message(frame: &RecordedFrame) -> Option<Message> {
    Some(match frame {
        RecordedFrame::Text(t) => Message::text(t.clone()),
        RecordedFrame::Binary(b) => Message::binary(b.clone()),
        RecordedFrame::Ping(b) => Message::Ping(b.clone().into()),
        RecordedFrame::Pong(b) => Message::Pong(b.clone().into()),
        RecordedFrame::Close(None) => Message::Close(None),
        RecordedFrame::Close(Some(c)) => Message::Close(Some(CloseFrame {
            code: c.code.into(),
            reason: c.reason.clone().into(),
        })),
        RecordedFrame::Drop => return None,
    })
}
