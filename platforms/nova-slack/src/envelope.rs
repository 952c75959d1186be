//! What Slack sends on a Socket Mode connection, typed: `hello`, `disconnect` and envelopes.
//!
//! One pass of serde over the frame reads the fields every message type can carry; the
//! envelope `payload` is borrowed as a [`RawValue`] and kept as received (copied once into the
//! [`Envelope`]), so the application can parse it into its own types, or forward it, without
//! a re-serialization. For `events_api` envelopes the payload's `event_id` is read too (a
//! second, shallow pass over the payload that skips everything else), because it is the key
//! that identifies a retried event.
//!
//! Wire facts (PROTOCOLS.md section 4, Slack's "Using Socket Mode" page and the official SDKs):
//!
//! ```text
//! {"type":"hello","num_connections":2,"debug_info":{"host":"applink-…","build_number":10,"approximate_connection_time":18060},"connection_info":{"app_id":"A111"}}
//! {"type":"disconnect","reason":"refresh_requested","debug_info":{"host":"wss-111.slack.com"}}
//! {"envelope_id":"…","payload":{…,"event_id":"Ev111",…},"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}
//! {"envelope_id":"…","payload":{…,"command":"/hello",…},"type":"slash_commands","accepts_response_payload":true}
//! ```
//!
//! A message of an unknown `type` is [`Inbound::Other`], not an error: Slack may add types.

use std::borrow::Cow;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::ack::{Ack, AckError};

/// One message from Slack, parsed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Inbound {
    /// `hello`: the connection is ready.
    Hello(Hello),
    /// `disconnect`: Slack is about to close this connection (or the app was disabled).
    Disconnect(Disconnect),
    /// An envelope (`events_api`, `slash_commands`, `interactive`, or a type not known yet
    /// that carries an `envelope_id`): it must be acknowledged.
    Envelope(Envelope),
    /// A message of another `type`, without an `envelope_id`.
    Other {
        /// Its `type`.
        kind: String,
    },
}

impl Inbound {
    /// Parses one text frame.
    ///
    /// # Errors
    /// [`ParseError::Json`] when the frame is not a JSON object with a string `type`;
    /// [`ParseError::MissingField`] when an envelope lacks its `payload`.
    ///
    /// ```
    /// use nova_slack::{EnvelopeType, Inbound};
    ///
    /// let frame = r#"{"envelope_id":"e1","payload":{"event_id":"Ev1","event":{"type":"app_mention"}},
    ///                 "type":"events_api","accepts_response_payload":false,"retry_attempt":1,"retry_reason":"timeout"}"#;
    /// let Inbound::Envelope(envelope) = Inbound::parse(frame)? else { panic!("an envelope") };
    /// assert_eq!(envelope.kind, EnvelopeType::EventsApi);
    /// assert_eq!(envelope.event_id.as_deref(), Some("Ev1"));
    /// assert!(envelope.is_retry());
    /// assert_eq!(envelope.ack().to_json(), r#"{"envelope_id":"e1"}"#);
    /// # Ok::<(), nova_slack::ParseError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let wire: Wire<'_> = serde_json::from_str(text)?;
        let kind = wire.kind.as_deref().unwrap_or_default();
        match (kind, wire.envelope_id) {
            ("hello", _) => Ok(Inbound::Hello(Hello {
                num_connections: wire.num_connections,
                debug_info: wire.debug_info.map(DebugInfo::from).unwrap_or_default(),
                app_id: wire.connection_info.and_then(|c| c.app_id),
            })),
            ("disconnect", _) => Ok(Inbound::Disconnect(Disconnect {
                reason: DisconnectReason::from_wire(wire.reason.as_deref().unwrap_or_default()),
                host: wire.debug_info.and_then(|d| d.host).map(Cow::into_owned),
            })),
            (_, Some(envelope_id)) => {
                let payload = wire.payload.ok_or(ParseError::MissingField("payload"))?;
                let kind = EnvelopeType::from_wire(kind);
                let event_id = if kind == EnvelopeType::EventsApi {
                    serde_json::from_str::<EventId>(payload.get())
                        .ok()
                        .and_then(|e| e.event_id)
                } else {
                    None
                };
                Ok(Inbound::Envelope(Envelope {
                    envelope_id: envelope_id.into_owned(),
                    kind,
                    accepts_response_payload: wire.accepts_response_payload,
                    retry_attempt: wire.retry_attempt.unwrap_or(0),
                    retry_reason: wire
                        .retry_reason
                        .filter(|r| !r.is_empty())
                        .map(Cow::into_owned),
                    event_id,
                    payload: payload.to_owned(),
                }))
            }
            (kind, None) => Ok(Inbound::Other {
                kind: kind.to_owned(),
            }),
        }
    }
}

/// Why a frame could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON, or not the shape of a Socket Mode message.
    #[error("not a Socket Mode message: {0}")]
    Json(#[from] serde_json::Error),
    /// A field the message type requires is missing.
    #[error("Socket Mode message without `{0}`")]
    MissingField(&'static str),
}

/// `hello`: sent first on every connection; the connection is ready once it arrives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hello {
    /// How many Socket Mode connections the app has open, this one included.
    pub num_connections: Option<u32>,
    /// Slack's debug information.
    pub debug_info: DebugInfo,
    /// `connection_info.app_id`.
    pub app_id: Option<String>,
}

/// `debug_info` of a `hello`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DebugInfo {
    /// The Slack host serving the connection.
    pub host: Option<String>,
    /// Slack's build number.
    pub build_number: Option<u64>,
    /// `approximate_connection_time`: roughly how long Slack will keep the connection before
    /// it asks for a refresh.
    pub approximate_connection_time: Option<Duration>,
}

impl From<WireDebugInfo<'_>> for DebugInfo {
    fn from(wire: WireDebugInfo<'_>) -> Self {
        Self {
            host: wire.host.map(Cow::into_owned),
            build_number: wire.build_number,
            approximate_connection_time: wire.approximate_connection_time.map(Duration::from_secs),
        }
    }
}

/// `disconnect`: what Slack announces before it closes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Disconnect {
    /// Why.
    pub reason: DisconnectReason,
    /// `debug_info.host`.
    pub host: Option<String>,
}

/// The `reason` of a `disconnect`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// `warning`: the connection will be refreshed in about 10 seconds.
    Warning,
    /// `refresh_requested`: the connection is being refreshed; open the next one.
    RefreshRequested,
    /// `link_disabled`: Socket Mode was turned off for the app; do not reconnect.
    LinkDisabled,
    /// `too_many_websockets`: the app has more connections open than Slack allows (seen in
    /// the official Python SDK's tests; not documented by Slack).
    TooManyWebsockets,
    /// Any other reason, as sent.
    Other(String),
}

/// What a client should do about a [`DisconnectReason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectAction {
    /// Open a new connection now, keep this one until the new one is ready, then let this one
    /// drain and close (make before break).
    Handover,
    /// Stop: do not reconnect (report the reason to the application).
    Stop,
    /// Close this connection and do not replace it at once (reconnect through the backoff
    /// policy, if at all).
    Backoff,
}

impl DisconnectReason {
    fn from_wire(reason: &str) -> Self {
        match reason {
            "warning" => DisconnectReason::Warning,
            "refresh_requested" => DisconnectReason::RefreshRequested,
            "link_disabled" => DisconnectReason::LinkDisabled,
            "too_many_websockets" => DisconnectReason::TooManyWebsockets,
            other => DisconnectReason::Other(other.to_owned()),
        }
    }

    /// The reason as on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            DisconnectReason::Warning => "warning",
            DisconnectReason::RefreshRequested => "refresh_requested",
            DisconnectReason::LinkDisabled => "link_disabled",
            DisconnectReason::TooManyWebsockets => "too_many_websockets",
            DisconnectReason::Other(other) => other,
        }
    }

    /// What to do: a handover for `warning`, `refresh_requested` and unknown reasons (the
    /// connection is going away either way), stop for `link_disabled`, back off for
    /// `too_many_websockets` (a replacement would be one too many again).
    #[must_use]
    pub fn action(&self) -> DisconnectAction {
        match self {
            DisconnectReason::Warning
            | DisconnectReason::RefreshRequested
            | DisconnectReason::Other(_) => DisconnectAction::Handover,
            DisconnectReason::LinkDisabled => DisconnectAction::Stop,
            DisconnectReason::TooManyWebsockets => DisconnectAction::Backoff,
        }
    }
}

/// The `type` of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EnvelopeType {
    /// `events_api`: an Events API event.
    EventsApi,
    /// `slash_commands`: a slash command invocation.
    SlashCommands,
    /// `interactive`: shortcuts, block actions, view submissions, options requests.
    Interactive,
    /// A type not known to this crate, as sent.
    Other(String),
}

impl EnvelopeType {
    fn from_wire(kind: &str) -> Self {
        match kind {
            "events_api" => EnvelopeType::EventsApi,
            "slash_commands" => EnvelopeType::SlashCommands,
            "interactive" => EnvelopeType::Interactive,
            other => EnvelopeType::Other(other.to_owned()),
        }
    }

    /// The type as on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            EnvelopeType::EventsApi => "events_api",
            EnvelopeType::SlashCommands => "slash_commands",
            EnvelopeType::Interactive => "interactive",
            EnvelopeType::Other(other) => other,
        }
    }
}

/// An envelope: something the application must see once and Slack must get an ack for.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Envelope {
    /// `envelope_id`: what the ack names.
    pub envelope_id: String,
    /// `type`.
    pub kind: EnvelopeType,
    /// `accepts_response_payload`: whether the ack may carry a response (slash commands,
    /// some interactive payloads).
    pub accepts_response_payload: bool,
    /// `retry_attempt` (0 on the first delivery; only `events_api` envelopes carry it).
    pub retry_attempt: u32,
    /// `retry_reason`, when not empty.
    pub retry_reason: Option<String>,
    /// `payload.event_id` of an `events_api` envelope: the same for every retry of one event.
    pub event_id: Option<String>,
    /// The `payload`, exactly as received.
    pub payload: Box<RawValue>,
}

impl Envelope {
    /// The payload's JSON text, as received.
    #[must_use]
    pub fn payload_json(&self) -> &str {
        self.payload.get()
    }

    /// Parses the payload into the application's type.
    ///
    /// # Errors
    /// When the payload does not fit `T`.
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.payload.get())
    }

    /// Whether Slack says this is a redelivery (`retry_attempt > 0`).
    #[must_use]
    pub fn is_retry(&self) -> bool {
        self.retry_attempt > 0
    }

    /// The plain ack: `{"envelope_id": ..}`.
    #[must_use]
    pub fn ack(&self) -> Ack {
        Ack::new(self.envelope_id.clone())
    }

    /// An ack carrying `payload` as the response (a slash command's reply, a modal update).
    ///
    /// # Errors
    /// [`AckError::NotAccepted`] when the envelope does not accept a response payload;
    /// [`AckError::Serialize`] when `payload` cannot be serialized.
    pub fn ack_with<T: serde::Serialize + ?Sized>(&self, payload: &T) -> Result<Ack, AckError> {
        if !self.accepts_response_payload {
            return Err(AckError::NotAccepted {
                kind: self.kind.as_str().to_owned(),
            });
        }
        self.ack().with_payload(payload)
    }
}

/// The fields of every Socket Mode message, read in one pass.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    envelope_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    accepts_response_payload: bool,
    #[serde(default)]
    retry_attempt: Option<u32>,
    #[serde(borrow, default)]
    retry_reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(default)]
    num_connections: Option<u32>,
    #[serde(borrow, default)]
    debug_info: Option<WireDebugInfo<'a>>,
    #[serde(default)]
    connection_info: Option<WireConnectionInfo>,
}

#[derive(Deserialize)]
struct WireDebugInfo<'a> {
    #[serde(borrow, default)]
    host: Option<Cow<'a, str>>,
    #[serde(default)]
    build_number: Option<u64>,
    #[serde(default)]
    approximate_connection_time: Option<u64>,
}

#[derive(Deserialize)]
struct WireConnectionInfo {
    #[serde(default)]
    app_id: Option<String>,
}

/// Only the `event_id` of an `events_api` payload.
#[derive(Deserialize)]
struct EventId {
    #[serde(default)]
    event_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Inbound {
        Inbound::parse(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn hello_from_the_python_sdk_mock() {
        let text = r#"{"type":"hello","num_connections":2,"debug_info":{"host":"applink-111-xxx","build_number":10,"approximate_connection_time":18060},"connection_info":{"app_id":"A111"}}"#;
        let Inbound::Hello(hello) = parse(text) else {
            panic!("hello")
        };
        assert_eq!(hello.num_connections, Some(2));
        assert_eq!(hello.app_id.as_deref(), Some("A111"));
        assert_eq!(hello.debug_info.host.as_deref(), Some("applink-111-xxx"));
        assert_eq!(
            hello.debug_info.approximate_connection_time,
            Some(Duration::from_secs(18060))
        );
        // A bare hello is still a hello.
        assert!(matches!(parse(r#"{"type":"hello"}"#), Inbound::Hello(_)));
    }

    #[test]
    fn disconnect_reasons_and_actions() {
        for (reason, expected, action) in [
            (
                "warning",
                DisconnectReason::Warning,
                DisconnectAction::Handover,
            ),
            (
                "refresh_requested",
                DisconnectReason::RefreshRequested,
                DisconnectAction::Handover,
            ),
            (
                "link_disabled",
                DisconnectReason::LinkDisabled,
                DisconnectAction::Stop,
            ),
            (
                "too_many_websockets",
                DisconnectReason::TooManyWebsockets,
                DisconnectAction::Backoff,
            ),
            (
                "new_one",
                DisconnectReason::Other("new_one".into()),
                DisconnectAction::Handover,
            ),
        ] {
            let text = format!(
                r#"{{"type":"disconnect","reason":"{reason}","debug_info":{{"host":"wss-111.slack.com"}}}}"#
            );
            let Inbound::Disconnect(d) = parse(&text) else {
                panic!("disconnect")
            };
            assert_eq!(d.reason, expected);
            assert_eq!(d.reason.as_str(), reason);
            assert_eq!(d.reason.action(), action);
            assert_eq!(d.host.as_deref(), Some("wss-111.slack.com"));
        }
    }

    #[test]
    fn events_api_envelope_from_the_python_sdk_mock() {
        let text = r#"{"envelope_id":"cda4159a-72a5-4744-aba3-4d66eb52682b","payload":{"token":"verification-token","team_id":"T111","api_app_id":"A111","event":{"client_msg_id":"f0582a78-72db-4feb-b2f3-1e47d66365c8","type":"app_mention","text":"<@U111>","user":"U222","ts":"1610241741.000200","team":"T111","channel":"C111","event_ts":"1610241741.000200"},"type":"event_callback","event_id":"Ev111","event_time":1610241741,"authorizations":[{"enterprise_id":null,"team_id":"T111","user_id":"U222","is_bot":true,"is_enterprise_install":false}],"is_ext_shared_channel":false,"event_context":"1-app_mention-T111-C111"},"type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}"#;
        let Inbound::Envelope(e) = parse(text) else {
            panic!("envelope")
        };
        assert_eq!(e.envelope_id, "cda4159a-72a5-4744-aba3-4d66eb52682b");
        assert_eq!(e.kind, EnvelopeType::EventsApi);
        assert_eq!(e.event_id.as_deref(), Some("Ev111"));
        assert_eq!((e.retry_attempt, e.retry_reason.as_deref()), (0, None));
        assert!(!e.is_retry() && !e.accepts_response_payload);
        // The payload is kept byte for byte.
        assert!(text.contains(e.payload_json()));
        assert!(
            e.payload_json()
                .starts_with(r#"{"token":"verification-token""#)
        );
        let value: serde_json::Value = e.payload_as().unwrap_or_default();
        assert_eq!(value["event"]["type"], "app_mention");
    }

    #[test]
    fn slash_command_and_interactive_envelopes() {
        let slash = r#"{"envelope_id":"1d3c79ab-0ffb-41f3-a080-d19e85f53649","payload":{"token":"verification-token","team_id":"T111","team_domain":"xxx","channel_id":"C111","channel_name":"random","user_id":"U111","user_name":"testxyz","command":"/hello-socket-mode","text":"","api_app_id":"A111","response_url":"https://hooks.slack.com/commands/T111/111/xxx","trigger_id":"111.222.xxx"},"type":"slash_commands","accepts_response_payload":true}"#;
        let Inbound::Envelope(e) = parse(slash) else {
            panic!("envelope")
        };
        assert_eq!(e.kind, EnvelopeType::SlashCommands);
        assert!(e.accepts_response_payload);
        assert_eq!((e.event_id, e.retry_attempt), (None, 0));

        let interactive = r#"{"envelope_id":"57d6a792-4d35-4d0b-b6aa-3361493e1caf","payload":{"type":"shortcut","token":"verification-token","action_ts":"1610198080.300836","team":{"id":"T111","domain":"testxyz"},"user":{"id":"U111","username":"testxyz","team_id":"T111"},"is_enterprise_install":false,"enterprise":null,"callback_id":"do-something","trigger_id":"111.222.xxx"},"type":"interactive","accepts_response_payload":false}"#;
        let Inbound::Envelope(e) = parse(interactive) else {
            panic!("envelope")
        };
        assert_eq!(e.kind, EnvelopeType::Interactive);
        assert!(matches!(e.ack_with("x"), Err(AckError::NotAccepted { .. })));
    }

    #[test]
    fn unknown_types_and_bad_input() {
        assert!(
            matches!(parse(r#"{"type":"something_new"}"#), Inbound::Other { kind } if kind == "something_new")
        );
        let Inbound::Envelope(e) =
            parse(r#"{"type":"future_kind","envelope_id":"e","payload":{}}"#)
        else {
            panic!("envelope")
        };
        assert_eq!(e.kind, EnvelopeType::Other("future_kind".into()));
        assert!(matches!(
            Inbound::parse(r#"{"type":"events_api","envelope_id":"e"}"#),
            Err(ParseError::MissingField("payload"))
        ));
        for bad in ["", "not json", "[1,2]", r#"{"type":5}"#, "\u{0}"] {
            assert!(Inbound::parse(bad).is_err(), "{bad:?}");
        }
        // Escapes in borrowed strings are fine.
        let Inbound::Envelope(e) =
            parse(r#"{"type":"events_api","envelope_id":"a\"b","payload":{"event_id":"E\u0031"}}"#)
        else {
            panic!("envelope")
        };
        assert_eq!(
            (e.envelope_id.as_str(), e.event_id.as_deref()),
            ("a\"b", Some("E1"))
        );
    }
}
