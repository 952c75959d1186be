//! The gateway envelope `{"op", "d", "s", "t"}` and what a received payload means.
//!
//! [`GatewayEvent::parse`] reads the envelope once, leaving `d` as unparsed text
//! ([`RawValue`]), then decodes `d` by op: Hello's interval, Invalid Session's flag, a
//! dispatch's event by its name (see [`Event`]). An op Discord adds later comes back as
//! [`GatewayEvent::Unknown`] with its `d` kept. A dispatch whose known event fails to decode is
//! an error that still carries its `s` ([`DecodeError::seq`]), so the session can count it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::DecodeError;
use crate::event::Event;
use crate::opcode::OpCode;

/// The envelope as received, borrowing from the frame's text.
#[derive(Debug, Deserialize)]
pub struct RawPayload<'a> {
    /// The opcode.
    pub op: OpCode,
    /// The data, unparsed; `None` when absent or `null`.
    #[serde(borrow, default)]
    pub d: Option<&'a RawValue>,
    /// The sequence number (dispatches only).
    #[serde(default)]
    pub s: Option<u64>,
    /// The event name (dispatches only).
    #[serde(borrow, default)]
    pub t: Option<&'a str>,
}

impl<'a> RawPayload<'a> {
    /// Reads the envelope of `text`.
    ///
    /// # Errors
    /// When `text` is not a JSON object with a numeric `op`.
    pub fn parse(text: &'a str) -> Result<Self, DecodeError> {
        serde_json::from_str(text).map_err(DecodeError::Payload)
    }
}

/// What a received gateway payload means.
#[derive(Debug)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// op 0: an event with its sequence number.
    Dispatch {
        /// `s`; Discord always sends one with a dispatch.
        seq: Option<u64>,
        /// The decoded event.
        event: Event,
    },
    /// op 1 from the server: send a heartbeat now.
    HeartbeatRequest,
    /// op 7: reconnect and resume.
    Reconnect,
    /// op 9: the session is invalid; resume when `resumable`, else identify anew.
    InvalidSession {
        /// `d`.
        resumable: bool,
    },
    /// op 10: the first payload.
    Hello {
        /// `d.heartbeat_interval`.
        heartbeat_interval: Duration,
    },
    /// op 11.
    HeartbeatAck,
    /// Any other op (including client ops echoed by a misbehaving server), kept.
    Unknown {
        /// The op.
        op: OpCode,
        /// Its `d`, unparsed.
        data: Option<Box<RawValue>>,
    },
}

#[derive(Deserialize)]
struct HelloData {
    heartbeat_interval: u64,
}

impl GatewayEvent {
    /// Parses one (inflated) gateway message.
    ///
    /// # Errors
    /// [`DecodeError`] when the envelope is malformed, Hello or Invalid Session lack their `d`,
    /// a dispatch has no `t`, or a known dispatch's `d` does not decode.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nova_discord::{Event, GatewayEvent};
    ///
    /// let hello = GatewayEvent::parse(r#"{"op":10,"d":{"heartbeat_interval":45000}}"#)?;
    /// assert!(matches!(hello, GatewayEvent::Hello { heartbeat_interval } if heartbeat_interval == Duration::from_secs(45)));
    ///
    /// let resumed = GatewayEvent::parse(r#"{"op":0,"s":42,"t":"RESUMED","d":{}}"#)?;
    /// assert!(matches!(resumed, GatewayEvent::Dispatch { seq: Some(42), event: Event::Resumed }));
    /// # Ok::<(), nova_discord::DecodeError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, DecodeError> {
        let raw = RawPayload::parse(text)?;
        Self::from_raw(&raw)
    }

    /// Interprets an envelope already read.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn from_raw(raw: &RawPayload<'_>) -> Result<Self, DecodeError> {
        let data_error = |source| DecodeError::Data {
            op: raw.op.code(),
            source,
        };
        Ok(match raw.op {
            OpCode::Dispatch => {
                let name = raw.t.ok_or(DecodeError::MissingName)?;
                let data = raw.d.unwrap_or(RawValue::NULL);
                let event =
                    Event::from_dispatch(name, data).map_err(|source| DecodeError::Dispatch {
                        seq: raw.s,
                        name: name.to_owned(),
                        source,
                    })?;
                Self::Dispatch { seq: raw.s, event }
            }
            OpCode::Heartbeat => Self::HeartbeatRequest,
            OpCode::Reconnect => Self::Reconnect,
            OpCode::InvalidSession => {
                let d = raw.d.ok_or_else(|| data_error(None))?;
                let resumable = serde_json::from_str(d.get()).map_err(|e| data_error(Some(e)))?;
                Self::InvalidSession { resumable }
            }
            OpCode::Hello => {
                let d = raw.d.ok_or_else(|| data_error(None))?;
                let hello: HelloData =
                    serde_json::from_str(d.get()).map_err(|e| data_error(Some(e)))?;
                Self::Hello {
                    heartbeat_interval: Duration::from_millis(hello.heartbeat_interval),
                }
            }
            OpCode::HeartbeatAck => Self::HeartbeatAck,
            op => Self::Unknown {
                op,
                data: raw.d.map(ToOwned::to_owned),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GatewayEvent {
        GatewayEvent::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_receive_op() {
        assert!(matches!(
            parse(r#"{"op":1,"d":null}"#),
            GatewayEvent::HeartbeatRequest
        ));
        assert!(matches!(
            parse(r#"{"op":7,"d":null}"#),
            GatewayEvent::Reconnect
        ));
        assert!(matches!(
            parse(r#"{"op":9,"d":true}"#),
            GatewayEvent::InvalidSession { resumable: true }
        ));
        assert!(matches!(
            parse(r#"{"op":9,"d":false,"s":null,"t":null}"#),
            GatewayEvent::InvalidSession { resumable: false }
        ));
        assert!(matches!(parse(r#"{"op":11}"#), GatewayEvent::HeartbeatAck));
        let hello =
            parse(r#"{"op":10,"s":null,"t":null,"d":{"heartbeat_interval":41250,"_trace":["x"]}}"#);
        assert!(
            matches!(hello, GatewayEvent::Hello { heartbeat_interval } if heartbeat_interval.as_millis() == 41250)
        );
    }

    #[test]
    fn unknown_op_kept() {
        let event = parse(r#"{"op":50,"d":{"x":1}}"#);
        assert!(matches!(
            event,
            GatewayEvent::Unknown { op: OpCode::Unknown(50), data: Some(ref d) } if d.get() == r#"{"x":1}"#
        ));
    }

    #[test]
    fn dispatch_envelope() {
        let text = r#"{"t":"MESSAGE_DELETE","s":7,"op":0,"d":{"id":"1","channel_id":"2"}}"#;
        let raw = RawPayload::parse(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (raw.op, raw.s, raw.t),
            (OpCode::Dispatch, Some(7), Some("MESSAGE_DELETE"))
        );
        assert!(matches!(
            parse(text),
            GatewayEvent::Dispatch {
                seq: Some(7),
                event: Event::MessageDelete(_)
            }
        ));
    }

    #[test]
    fn errors_are_typed() {
        assert!(matches!(
            GatewayEvent::parse("{nope"),
            Err(DecodeError::Payload(_))
        ));
        assert!(matches!(
            GatewayEvent::parse(r#"{"d":1}"#),
            Err(DecodeError::Payload(_))
        ));
        assert!(matches!(
            GatewayEvent::parse(r#"{"op":0,"s":1,"d":{}}"#),
            Err(DecodeError::MissingName)
        ));
        assert!(matches!(
            GatewayEvent::parse(r#"{"op":10,"d":null}"#),
            Err(DecodeError::Data { op: 10, .. })
        ));
        assert!(matches!(
            GatewayEvent::parse(r#"{"op":9,"d":"x"}"#),
            Err(DecodeError::Data { op: 9, .. })
        ));
        let bad = GatewayEvent::parse(r#"{"op":0,"s":12,"t":"READY","d":{"v":10}}"#);
        assert!(matches!(&bad, Err(e) if e.seq() == Some(12)));
    }
}
