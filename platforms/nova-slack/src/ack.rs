//! The acknowledgement an app sends for every envelope: `{"envelope_id": ..}`, optionally with
//! a response `payload`.
//!
//! Slack wants the ack within about 3 seconds, or it retries (PROTOCOLS.md 4.4). The response
//! payload is only for envelopes with `accepts_response_payload: true` (slash commands, some
//! interactive payloads); [`Envelope::ack_with`](crate::Envelope::ack_with) checks that. As in
//! the official Python SDK, a plain-text response is sent as `{"text": ..}`. Slack sends
//! nothing back for an ack.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// An ack, ready to be sent as a text frame with [`to_json`](Self::to_json).
///
/// ```
/// use nova_slack::Ack;
///
/// assert_eq!(Ack::new("e1").to_json(), r#"{"envelope_id":"e1"}"#);
/// let reply = Ack::new("e2").with_text("Book of Hours");
/// assert_eq!(reply.to_json(), r#"{"envelope_id":"e2","payload":{"text":"Book of Hours"}}"#);
/// ```
#[derive(Clone, Debug)]
pub struct Ack {
    envelope_id: String,
    payload: Option<Box<RawValue>>,
}

/// Why an ack with a response could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The envelope does not accept a response payload (`accepts_response_payload: false`).
    #[error("a `{kind}` envelope that does not accept a response payload")]
    NotAccepted {
        /// The envelope type.
        kind: String,
    },
    /// The response could not be serialized.
    #[error("response payload: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl Ack {
    /// The plain ack of `envelope_id`.
    #[must_use]
    pub fn new(envelope_id: impl Into<String>) -> Self {
        Self {
            envelope_id: envelope_id.into(),
            payload: None,
        }
    }

    /// With `payload` as the response (serialized now).
    ///
    /// # Errors
    /// When `payload` cannot be serialized.
    pub fn with_payload<T: Serialize + ?Sized>(mut self, payload: &T) -> Result<Self, AckError> {
        self.payload = Some(serde_json::value::to_raw_value(payload)?);
        Ok(self)
    }

    /// With a response payload that is already JSON.
    #[must_use]
    pub fn with_raw_payload(mut self, payload: Box<RawValue>) -> Self {
        self.payload = Some(payload);
        self
    }

    /// With `{"text": text}` as the response (a slash command's reply).
    #[must_use]
    pub fn with_text(mut self, text: &str) -> Self {
        let json = format!("{{\"text\":{}}}", Value::from(text));
        self.payload = RawValue::from_string(json).ok();
        self
    }

    /// The envelope id acknowledged.
    #[must_use]
    pub fn envelope_id(&self) -> &str {
        &self.envelope_id
    }

    /// The response payload, if any.
    #[must_use]
    pub fn payload(&self) -> Option<&RawValue> {
        self.payload.as_deref()
    }

    /// The frame to send.
    #[must_use]
    pub fn to_json(&self) -> String {
        // `Value`'s Display writes a JSON string with every escape needed; it cannot fail.
        let id = Value::from(self.envelope_id.as_str());
        match &self.payload {
            None => format!("{{\"envelope_id\":{id}}}"),
            Some(payload) => format!("{{\"envelope_id\":{id},\"payload\":{}}}", payload.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(ack: &Ack) -> Value {
        serde_json::from_str(&ack.to_json()).unwrap_or_default()
    }

    #[test]
    fn shapes_from_the_docs() {
        let id = "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545";
        assert_eq!(parsed(&Ack::new(id)), json!({ "envelope_id": id }));
        let blocks =
            json!({"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"Book of Hours"}}]});
        let ack = Ack::new(id)
            .with_payload(&blocks)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed(&ack),
            json!({ "envelope_id": id, "payload": blocks })
        );
        assert_eq!(ack.envelope_id(), id);
        assert!(ack.payload().is_some());
    }

    #[test]
    fn escaping() {
        let ack = Ack::new("a\"b\\c\n").with_text("say \"hi\"\u{1}");
        let v = parsed(&ack);
        assert_eq!(v["envelope_id"], "a\"b\\c\n");
        assert_eq!(v["payload"]["text"], "say \"hi\"\u{1}");
    }

    #[test]
    fn raw_payload_kept() {
        let raw = RawValue::from_string(r#"{"response_action":"clear"}"#.to_owned())
            .unwrap_or_else(|e| panic!("{e}"));
        let ack = Ack::new("e").with_raw_payload(raw);
        assert_eq!(
            ack.to_json(),
            r#"{"envelope_id":"e","payload":{"response_action":"clear"}}"#
        );
    }
}
