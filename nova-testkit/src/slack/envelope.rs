//! What the simulator writes on a Socket Mode connection: `hello`, `disconnect` and envelopes.
//!
//! Shapes follow Slack's "Using Socket Mode" page and the official Python SDK's mock server
//! (PROTOCOLS.md section 4). An envelope is
//! `{"envelope_id":..,"payload":..,"type":..,"accepts_response_payload":..}`; `events_api`
//! envelopes also carry `retry_attempt` and `retry_reason` (`""` on the first delivery,
//! `"timeout"` on a redelivery after a missed ack deadline, the simulator's choice: Slack's
//! values for Socket Mode are not documented).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The three envelope types Slack sends over Socket Mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EnvelopeKind {
    /// `events_api`: an Events API event (`payload.event_id` identifies the event).
    EventsApi,
    /// `slash_commands`: a slash command; accepts a response payload.
    SlashCommands,
    /// `interactive`: a shortcut, a block action, a view submission.
    Interactive,
}

impl EnvelopeKind {
    /// The `type` field on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeKind::EventsApi => "events_api",
            EnvelopeKind::SlashCommands => "slash_commands",
            EnvelopeKind::Interactive => "interactive",
        }
    }
}

/// An envelope to push: its type, payload and whether Slack accepts a response payload in the
/// ack. Build one with [`events_api`](Self::events_api), [`slash_command`](Self::slash_command),
/// [`interactive`](Self::interactive) or [`raw`](Self::raw).
///
/// ```
/// use nova_testkit::slack::{EnvelopeKind, EnvelopeSpec};
///
/// let spec = EnvelopeSpec::slash_command("/deploy", "prod");
/// assert_eq!(spec.kind, EnvelopeKind::SlashCommands);
/// assert!(spec.accepts_response_payload);
/// assert_eq!(spec.payload["command"], "/deploy");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EnvelopeSpec {
    /// The envelope type.
    pub kind: EnvelopeKind,
    /// The `payload` object, sent as it is (for `events_api`, with `event_id` filled in when
    /// missing).
    pub payload: Value,
    /// `accepts_response_payload`.
    pub accepts_response_payload: bool,
}

impl EnvelopeSpec {
    /// An `events_api` envelope carrying an `app_mention` with `text`; the simulator assigns
    /// the `event_id` (`Ev` and a number).
    #[must_use]
    pub fn events_api(text: &str) -> Self {
        let now = unix_seconds();
        Self {
            kind: EnvelopeKind::EventsApi,
            payload: json!({
                "token": "verification-token",
                "team_id": "T111",
                "api_app_id": "A0SIM",
                "event": {
                    "type": "app_mention",
                    "text": text,
                    "user": "U222",
                    "ts": format!("{now}.000200"),
                    "team": "T111",
                    "channel": "C111",
                    "event_ts": format!("{now}.000200"),
                },
                "type": "event_callback",
                "event_time": now,
                "authorizations": [{
                    "enterprise_id": null, "team_id": "T111", "user_id": "U222",
                    "is_bot": true, "is_enterprise_install": false,
                }],
                "is_ext_shared_channel": false,
                "event_context": "1-app_mention-T111-C111",
            }),
            accepts_response_payload: false,
        }
    }

    /// An `events_api` envelope with a chosen `event_id`: pushing two of them with the same id
    /// is how Slack's retries of one event look to a client that lost the first envelope id.
    #[must_use]
    pub fn events_api_with_id(event_id: &str, text: &str) -> Self {
        let mut spec = Self::events_api(text);
        if let Some(payload) = spec.payload.as_object_mut() {
            payload.insert("event_id".to_owned(), Value::from(event_id));
        }
        spec
    }

    /// A `slash_commands` envelope for `command` with `text`; accepts a response payload.
    #[must_use]
    pub fn slash_command(command: &str, text: &str) -> Self {
        Self {
            kind: EnvelopeKind::SlashCommands,
            payload: json!({
                "token": "verification-token",
                "team_id": "T111",
                "team_domain": "nova-sim",
                "channel_id": "C111",
                "channel_name": "random",
                "user_id": "U111",
                "user_name": "tester",
                "command": command,
                "text": text,
                "api_app_id": "A0SIM",
                "response_url": "https://hooks.slack.com/commands/T111/111/sim",
                "trigger_id": "111.222.sim",
            }),
            accepts_response_payload: true,
        }
    }

    /// An `interactive` envelope: a global shortcut with `callback_id`.
    #[must_use]
    pub fn interactive(callback_id: &str) -> Self {
        Self {
            kind: EnvelopeKind::Interactive,
            payload: json!({
                "type": "shortcut",
                "token": "verification-token",
                "action_ts": format!("{}.300836", unix_seconds()),
                "team": {"id": "T111", "domain": "nova-sim"},
                "user": {"id": "U111", "username": "tester", "team_id": "T111"},
                "is_enterprise_install": false,
                "enterprise": null,
                "callback_id": callback_id,
                "trigger_id": "111.222.sim",
            }),
            accepts_response_payload: false,
        }
    }

    /// Any payload under any of the three types.
    #[must_use]
    pub fn raw(kind: EnvelopeKind, payload: Value, accepts_response_payload: bool) -> Self {
        Self {
            kind,
            payload,
            accepts_response_payload,
        }
    }

    /// The `event_id` of an `events_api` payload.
    pub(super) fn event_id(&self) -> Option<String> {
        (self.kind == EnvelopeKind::EventsApi)
            .then(|| self.payload.get("event_id").and_then(Value::as_str))
            .flatten()
            .map(str::to_owned)
    }
}

/// The generated envelope number `n` of a tick cycle over `kinds`.
pub(super) fn generated(kinds: &[EnvelopeKind], n: u64) -> EnvelopeSpec {
    let kind = if kinds.is_empty() {
        EnvelopeKind::EventsApi
    } else {
        let index = usize::try_from(n % kinds.len() as u64).unwrap_or(0);
        kinds.get(index).copied().unwrap_or(EnvelopeKind::EventsApi)
    };
    match kind {
        EnvelopeKind::EventsApi => EnvelopeSpec::events_api(&format!("<@U111> tick {n}")),
        EnvelopeKind::SlashCommands => EnvelopeSpec::slash_command("/nova", &format!("tick {n}")),
        EnvelopeKind::Interactive => EnvelopeSpec::interactive(&format!("tick-{n}")),
    }
}

/// One delivery of an envelope, as written on the wire.
pub(super) fn envelope_text(envelope_id: &str, spec: &EnvelopeSpec, retry_attempt: u32) -> String {
    let mut envelope = json!({
        "envelope_id": envelope_id,
        "payload": spec.payload,
        "type": spec.kind.as_str(),
        "accepts_response_payload": spec.accepts_response_payload,
    });
    if spec.kind == EnvelopeKind::EventsApi {
        if let Some(object) = envelope.as_object_mut() {
            object.insert("retry_attempt".to_owned(), Value::from(retry_attempt));
            let reason = if retry_attempt == 0 { "" } else { "timeout" };
            object.insert("retry_reason".to_owned(), Value::from(reason));
        }
    }
    envelope.to_string()
}

/// The `hello` a connection gets first.
pub(super) fn hello_text(
    connection: u64,
    num_connections: usize,
    approximate_connection_time: u64,
    app_id: &str,
) -> String {
    json!({
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {
            "host": host(connection),
            "build_number": 1,
            "approximate_connection_time": approximate_connection_time,
        },
        "connection_info": {"app_id": app_id},
    })
    .to_string()
}

/// A `disconnect` message with `reason`.
pub(super) fn disconnect_text(connection: u64, reason: &str) -> String {
    json!({
        "type": "disconnect",
        "reason": reason,
        "debug_info": {"host": host(connection)},
    })
    .to_string()
}

fn host(connection: u64) -> String {
    format!("applink-sim-{connection}")
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_api_carries_retry_fields_others_do_not() {
        let mut spec = EnvelopeSpec::events_api("hi");
        spec.payload["event_id"] = Value::from("Ev1");
        let text = envelope_text("e-1", &spec, 2);
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["type"], "events_api");
        assert_eq!(v["retry_attempt"], 2);
        assert_eq!(v["retry_reason"], "timeout");
        assert_eq!(v["payload"]["event_id"], "Ev1");
        assert_eq!(spec.event_id().as_deref(), Some("Ev1"));

        let slash = envelope_text("e-2", &EnvelopeSpec::slash_command("/x", ""), 0);
        let v: Value = serde_json::from_str(&slash).unwrap_or_default();
        assert_eq!(v["accepts_response_payload"], true);
        assert!(v.get("retry_attempt").is_none());
    }

    #[test]
    fn generated_cycles_kinds() {
        let kinds = [EnvelopeKind::EventsApi, EnvelopeKind::Interactive];
        assert_eq!(generated(&kinds, 0).kind, EnvelopeKind::EventsApi);
        assert_eq!(generated(&kinds, 1).kind, EnvelopeKind::Interactive);
        assert_eq!(generated(&[], 5).kind, EnvelopeKind::EventsApi);
    }

    #[test]
    fn hello_and_disconnect_shapes() {
        let v: Value = serde_json::from_str(&hello_text(3, 2, 3600, "A1")).unwrap_or_default();
        assert_eq!(v["num_connections"], 2);
        assert_eq!(v["debug_info"]["approximate_connection_time"], 3600);
        assert_eq!(v["connection_info"]["app_id"], "A1");
        let v: Value = serde_json::from_str(&disconnect_text(3, "warning")).unwrap_or_default();
        assert_eq!(v["reason"], "warning");
    }
}
