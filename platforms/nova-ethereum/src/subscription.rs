//! The `eth_subscribe` subscription kinds and their notification payloads.
//!
//! | kind | `eth_subscribe` params | each notification's `result` |
//! |---|---|---|
//! | [`SubscriptionKind::NewHeads`] | `["newHeads"]` | a block [`Header`] (and, from the adapter, a [`Reorg`]) |
//! | [`SubscriptionKind::Logs`] | `["logs", {"address": .., "topics": [..]}]` | a [`Log`] (`removed: true` on a reorg) |
//! | [`SubscriptionKind::NewPendingTransactions`] | `["newPendingTransactions"]` (`, true` for whole transactions where supported) | a transaction hash, or a [`Transaction`] |
//! | [`SubscriptionKind::Syncing`] | `["syncing"]` | a [`SyncStatus`] |
//!
//! The subscribe response's `result` is the server's subscription id, which every
//! notification then names in `params.subscription`; `eth_unsubscribe` takes it and answers
//! `true`. Subscriptions belong to a connection: a reconnect ends them all, and the new ones get
//! new ids.
//!
//! A subscription's *channel* — the name the application subscribes to with nova — is the kind's
//! text form ([`SubscriptionKind::channel`]): `newHeads`, `newPendingTransactions`, `syncing`,
//! `logs`; a `logs` subscription's filter goes in the options.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::jsonrpc::Notification;
use crate::reorg::{LogReorg, Reorg, reorg_result};
use crate::types::{Header, Log, LogFilter, SyncStatus, Transaction};

/// A kind of `eth_subscribe` subscription, with its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionKind {
    /// A header for every new block (several at one height on a reorg).
    NewHeads,
    /// Logs matching a filter (address and topics; a block range is ignored).
    Logs(LogFilter),
    /// Transactions entering the pool.
    NewPendingTransactions {
        /// Whole transactions instead of hashes (geth and anvil support it; others may not).
        full: bool,
    },
    /// Sync state changes.
    Syncing,
}

/// The channel names of the subscription kinds.
pub mod channel {
    /// `newHeads`.
    pub const NEW_HEADS: &str = "newHeads";
    /// `logs`.
    pub const LOGS: &str = "logs";
    /// `newPendingTransactions`.
    pub const NEW_PENDING_TRANSACTIONS: &str = "newPendingTransactions";
    /// `syncing`.
    pub const SYNCING: &str = "syncing";
}

/// An unknown subscription channel, or options that do not fit it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SubscriptionKindError(String);

impl SubscriptionKind {
    /// A `logs` subscription with this filter.
    #[must_use]
    pub fn logs(filter: LogFilter) -> Self {
        Self::Logs(filter)
    }

    /// The channel name (the first `eth_subscribe` parameter).
    #[must_use]
    pub fn channel(&self) -> &'static str {
        match self {
            Self::NewHeads => channel::NEW_HEADS,
            Self::Logs(_) => channel::LOGS,
            Self::NewPendingTransactions { .. } => channel::NEW_PENDING_TRANSACTIONS,
            Self::Syncing => channel::SYNCING,
        }
    }

    /// The options nova's `Client::subscribe` takes along with [`channel`](Self::channel):
    /// the filter for `logs`, `{"full": true}` for whole pending transactions, else `null`.
    #[must_use]
    pub fn options(&self) -> Value {
        match self {
            Self::Logs(filter) => {
                serde_json::to_value(filter.without_range()).unwrap_or(Value::Null)
            }
            Self::NewPendingTransactions { full: true } => json!({ "full": true }),
            _ => Value::Null,
        }
    }

    /// Reads a kind back from a channel name and options (the inverse of
    /// [`channel`](Self::channel) and [`options`](Self::options)).
    ///
    /// ```
    /// use nova_ethereum::{LogFilter, SubscriptionKind};
    ///
    /// let kind = SubscriptionKind::logs(LogFilter::new().address("0xab"));
    /// let back = SubscriptionKind::from_channel(kind.channel(), &kind.options()).unwrap();
    /// assert_eq!(back, kind);
    /// ```
    ///
    /// # Errors
    /// For an unknown channel or a `logs` filter that does not parse.
    pub fn from_channel(channel: &str, options: &Value) -> Result<Self, SubscriptionKindError> {
        match channel {
            channel::NEW_HEADS => Ok(Self::NewHeads),
            channel::SYNCING => Ok(Self::Syncing),
            channel::NEW_PENDING_TRANSACTIONS => Ok(Self::NewPendingTransactions {
                full: options
                    .get("full")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }),
            channel::LOGS => {
                let filter = if options.is_null() {
                    LogFilter::new()
                } else {
                    serde_json::from_value::<LogFilter>(options.clone())
                        .map_err(|e| SubscriptionKindError(format!("bad logs filter: {e}")))?
                        .without_range()
                };
                Ok(Self::Logs(filter))
            }
            other => Err(SubscriptionKindError(format!(
                "unknown eth_subscribe channel {other:?}; expected newHeads, logs, \
                 newPendingTransactions or syncing"
            ))),
        }
    }

    /// The `eth_subscribe` parameters.
    ///
    /// ```
    /// use nova_ethereum::{LogFilter, SubscriptionKind};
    /// use serde_json::json;
    ///
    /// assert_eq!(SubscriptionKind::NewHeads.params(), json!(["newHeads"]));
    /// assert_eq!(
    ///     SubscriptionKind::logs(LogFilter::new().address("0xab")).params(),
    ///     json!(["logs", {"address": "0xab"}])
    /// );
    /// ```
    #[must_use]
    pub fn params(&self) -> Value {
        match self {
            Self::Logs(_) => json!([self.channel(), self.options()]),
            Self::NewPendingTransactions { full: true } => json!([self.channel(), true]),
            _ => json!([self.channel()]),
        }
    }
}

/// A notification's payload, typed by the subscription's kind.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EthEvent {
    /// A new block header (`newHeads`).
    Head(Box<Header>),
    /// The heads delivered from some height on were replaced (`newHeads`); the new chain's
    /// heads follow.
    Reorg(Box<Reorg>),
    /// A log (`logs`).
    Log(Box<Log>),
    /// A pending transaction's hash (`newPendingTransactions`).
    PendingTransactionHash(String),
    /// A whole pending transaction (`newPendingTransactions` with `full`).
    PendingTransaction(Box<Transaction>),
    /// A sync state change (`syncing`).
    Syncing(SyncStatus),
}

/// A payload that does not have the shape its kind promises.
#[derive(Debug, thiserror::Error)]
#[error("{kind} notification of unexpected shape: {source}")]
pub struct EventDecodeError {
    /// The subscription kind's channel.
    pub kind: &'static str,
    /// The decoding error.
    #[source]
    pub source: serde_json::Error,
}

impl EthEvent {
    /// Decodes a notification's `result` for a subscription of `kind`.
    ///
    /// # Errors
    /// When the payload does not match the kind.
    pub fn decode(kind: &SubscriptionKind, result: &Value) -> Result<Self, EventDecodeError> {
        let err = |source| EventDecodeError {
            kind: kind.channel(),
            source,
        };
        Ok(match kind {
            SubscriptionKind::NewHeads => {
                Self::Head(Box::new(Header::deserialize(result).map_err(err)?))
            }
            SubscriptionKind::Logs(_) => {
                Self::Log(Box::new(Log::deserialize(result).map_err(err)?))
            }
            SubscriptionKind::NewPendingTransactions { .. } => match result {
                Value::String(hash) => Self::PendingTransactionHash(hash.clone()),
                other => Self::PendingTransaction(Box::new(
                    Transaction::deserialize(other).map_err(err)?,
                )),
            },
            SubscriptionKind::Syncing => {
                // geth wraps progress as {"syncing": true, "status": {..}}; keep it whole.
                Self::Syncing(SyncStatus::deserialize(result).map_err(err)?)
            }
        })
    }

    /// Decodes a whole `eth_subscription` notification message for `kind`, or the adapter's
    /// reorg message of a `newHeads` subscription (see [`REORG_METHOD`](crate::REORG_METHOD)).
    ///
    /// # Errors
    /// When the message is not a notification, its payload does not match the kind, or it is a
    /// `logs` reorg message (several events: see [`all_from_message`](Self::all_from_message)).
    pub fn from_message(
        kind: &SubscriptionKind,
        message: &nova_core::Message,
    ) -> Result<Self, EventDecodeError> {
        let mut events = Self::all_from_message(kind, message)?;
        if events.len() == 1 {
            if let Some(event) = events.pop() {
                return Ok(event);
            }
        }
        Err(EventDecodeError {
            kind: kind.channel(),
            source: serde::de::Error::custom(format!(
                "the message holds {} events; use EthEvent::all_from_message",
                events.len()
            )),
        })
    }

    /// Decodes a message of a subscription of `kind` into its events: one for a notification,
    /// and for the adapter's reorg messages (see [`REORG_METHOD`](crate::REORG_METHOD)) a
    /// [`EthEvent::Reorg`] on `newHeads`, or on `logs` every removed log (flagged) and then
    /// every replacing one.
    ///
    /// # Errors
    /// When the message is not a notification, or its payload does not match the kind.
    pub fn all_from_message(
        kind: &SubscriptionKind,
        message: &nova_core::Message,
    ) -> Result<Vec<Self>, EventDecodeError> {
        let err = |source| EventDecodeError {
            kind: kind.channel(),
            source,
        };
        match kind {
            SubscriptionKind::NewHeads => {
                if let Some(reorg) = reorg_result::<Reorg>(message) {
                    return Ok(vec![Self::Reorg(Box::new(reorg.map_err(err)?))]);
                }
            }
            SubscriptionKind::Logs(_) => {
                if let Some(reorg) = reorg_result::<LogReorg>(message) {
                    return Ok(Self::from_log_reorg(reorg.map_err(err)?));
                }
            }
            _ => {}
        }
        #[derive(Deserialize)]
        struct Wrapper {
            params: Notification,
        }
        let wrapper: Wrapper = message.json().map_err(err)?;
        Ok(vec![Self::decode(kind, &wrapper.params.result)?])
    }

    /// The events of a [`LogReorg`], in order: the removed logs (flagged), then the new ones.
    #[must_use]
    pub fn from_log_reorg(reorg: LogReorg) -> Vec<Self> {
        reorg
            .removed
            .into_iter()
            .map(|mut log| {
                log.removed = true;
                log
            })
            .chain(reorg.logs)
            .map(|log| Self::Log(Box::new(log)))
            .collect()
    }
}

/// `Serialize` for events, so an application can print them as JSON lines.
impl Serialize for EthEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Head(h) => h.serialize(serializer),
            Self::Reorg(r) => r.serialize(serializer),
            Self::Log(l) => l.serialize(serializer),
            Self::PendingTransactionHash(h) => h.serialize(serializer),
            Self::PendingTransaction(t) => t.serialize(serializer),
            Self::Syncing(s) => s.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_channel_and_options() {
        for kind in [
            SubscriptionKind::NewHeads,
            SubscriptionKind::Syncing,
            SubscriptionKind::NewPendingTransactions { full: false },
            SubscriptionKind::NewPendingTransactions { full: true },
            SubscriptionKind::logs(LogFilter::new()),
            SubscriptionKind::logs(LogFilter::new().addresses(["0xa", "0xb"]).topic(1, "0xc")),
        ] {
            assert_eq!(
                SubscriptionKind::from_channel(kind.channel(), &kind.options()).ok(),
                Some(kind.clone())
            );
        }
        assert!(SubscriptionKind::from_channel("newBlocks", &Value::Null).is_err());
        assert!(SubscriptionKind::from_channel("logs", &json!({"address": 5})).is_err());
        assert_eq!(
            SubscriptionKind::logs(LogFilter::new().blocks(1, 2)).params(),
            json!(["logs", {}])
        );
    }

    #[test]
    fn notifications_decode_by_kind() {
        let pending = nova_core::Message::text(
            r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xc3b33aa549fb9a60e95d21862596617c","result":"0xd6fdc5cc41a9959e922f30cb772a9aef46f4daea279307bc5f7024edc4ccd7fa"}}"#,
        );
        let kind = SubscriptionKind::NewPendingTransactions { full: false };
        assert!(matches!(
            EthEvent::from_message(&kind, &pending),
            Ok(EthEvent::PendingTransactionHash(h)) if h.starts_with("0xd6fd")
        ));
        assert!(EthEvent::from_message(&SubscriptionKind::NewHeads, &pending).is_err());
        assert!(matches!(
            EthEvent::decode(&SubscriptionKind::Syncing, &json!(false)),
            Ok(EthEvent::Syncing(SyncStatus::Flag(false)))
        ));
        assert!(matches!(
            EthEvent::decode(
                &SubscriptionKind::Syncing,
                &json!({"syncing": true, "status": {"currentBlock": 5}})
            ),
            Ok(EthEvent::Syncing(SyncStatus::Progress(_)))
        ));
    }
}
