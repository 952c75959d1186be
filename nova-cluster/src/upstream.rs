//! The upstream side of a shared subscription: how the owner of a channel subscribes to the
//! platform, and how it tells a snapshot from a change.
//!
//! [`Upstream`] is implemented by [`ClientUpstream`]: a real nova [`Client`] (any platform
//! adapter) plus the platform's sequence classification. With the `deribit` feature,
//! [`ClientUpstream::deribit`] classifies with the Deribit adapter's own
//! [`SubscriptionHandler::sequence`](nova_core::SubscriptionHandler::sequence) (books:
//! `snapshot` / `change_id` chains).
//!
//! This module is the one place that reads nova-core's [`SubscriptionEvent`]s; everything else
//! in the crate sees [`UpstreamEvent`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use nova_core::{Client, Message, Sequence, SubscriptionEvent, SubscriptionStream};

use crate::error::ClusterError;

/// A boxed future of an upstream operation.
pub type UpstreamFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClusterError>> + Send + 'a>>;

/// What the owner's upstream subscription yields, as the cluster sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamEvent {
    /// A message of the channel.
    Message(Message),
    /// Messages were dropped by the client's overflow policy.
    Lagged(u64),
    /// The subscription was restored after a reconnect.
    Restored,
    /// A gap was detected; `action` is how the client closes it.
    Gap {
        /// `resubscribe`, `backfill`, `report`.
        action: String,
    },
    /// The gap was closed at `value`.
    GapClosed {
        /// The value.
        value: u64,
    },
    /// The gap could not be closed.
    GapNotClosed {
        /// Why.
        reason: String,
    },
    /// Anything else the client reported (a failed restore, ...).
    Other(String),
}

impl UpstreamEvent {
    /// nova-core's subscription event, as the cluster sees it.
    #[must_use]
    pub fn from_subscription_event(event: SubscriptionEvent) -> Self {
        match event {
            SubscriptionEvent::Message(m) => Self::Message(m.into_message()),
            SubscriptionEvent::Lagged(n) => Self::Lagged(n),
            SubscriptionEvent::Restored => Self::Restored,
            SubscriptionEvent::Gap { action, .. } => Self::Gap {
                action: action.to_owned(),
            },
            SubscriptionEvent::GapClosed { value } => Self::GapClosed { value },
            SubscriptionEvent::GapNotClosed { reason } => Self::GapNotClosed { reason },
            other => Self::Other(format!("{other:?}")),
        }
    }
}

/// One upstream subscription held by the owner of a channel.
pub struct UpstreamSubscription {
    stream: SubscriptionStream,
}

impl std::fmt::Debug for UpstreamSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSubscription")
            .field("channel", &self.stream.channel())
            .finish()
    }
}

impl UpstreamSubscription {
    /// Wraps a nova subscription stream.
    #[must_use]
    pub fn new(stream: SubscriptionStream) -> Self {
        Self { stream }
    }

    /// The next event; `None` when the client has stopped.
    pub async fn next(&mut self) -> Option<UpstreamEvent> {
        self.stream
            .recv()
            .await
            .map(UpstreamEvent::from_subscription_event)
    }

    /// The next event if one is ready now.
    pub fn try_next(&mut self) -> Option<Option<UpstreamEvent>> {
        use futures_util::FutureExt;
        self.next().now_or_never()
    }

    /// Unsubscribes upstream and waits until it is done.
    ///
    /// # Errors
    /// When the client has stopped (the subscription is gone anyway).
    pub async fn unsubscribe(self) -> Result<(), ClusterError> {
        Ok(self.stream.unsubscribe().await?)
    }
}

/// How the owner of a channel subscribes upstream.
pub trait Upstream: Send + Sync + 'static {
    /// Subscribes to `channel` with `options`; returns once the subscription is verified.
    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
        options: &'a serde_json::Value,
    ) -> UpstreamFuture<'a, UpstreamSubscription>;

    /// The sequence position of a message of `channel`, if the platform gives it one (a
    /// snapshot, or a change following a previous value).
    fn sequence(&self, channel: &str, message: &Message) -> Option<Sequence>;
}

type Classifier = dyn Fn(&str, &Message) -> Option<Sequence> + Send + Sync;

/// A nova [`Client`] as the upstream of shared subscriptions.
///
/// ```no_run
/// use nova_cluster::ClientUpstream;
/// use nova_deribit::{DeribitAdapter, DeribitClient, DeribitConfig};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = DeribitConfig::default();
/// let client_config = DeribitClient::config_builder("ws://127.0.0.1:9000/ws/api/v2", &config).build()?;
/// let (client, _unclaimed) = nova_core::Client::connect(client_config, DeribitAdapter::new(config));
/// let upstream = ClientUpstream::deribit(client);
/// # let _ = upstream; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientUpstream {
    client: Client,
    classify: Arc<Classifier>,
}

impl std::fmt::Debug for ClientUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientUpstream")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ClientUpstream {
    /// A client whose channels have no sequence (no snapshots).
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self::with_sequence(client, |_, _| None)
    }

    /// A client with the platform's classification of messages.
    #[must_use]
    pub fn with_sequence(
        client: Client,
        classify: impl Fn(&str, &Message) -> Option<Sequence> + Send + Sync + 'static,
    ) -> Self {
        Self {
            client,
            classify: Arc::new(classify),
        }
    }

    /// A client driven by the Deribit adapter: books are classified by the adapter's own
    /// `sequence` (a `snapshot` starts, each change follows the previous `change_id`).
    #[cfg(feature = "deribit")]
    #[must_use]
    pub fn deribit(client: Client) -> Self {
        use nova_core::{Subscription, SubscriptionHandler};
        let adapter = nova_deribit::DeribitAdapter::new(nova_deribit::DeribitConfig::default());
        Self::with_sequence(client, move |channel, message| {
            adapter.sequence(&Subscription::new("cluster", channel), message)
        })
    }

    /// The client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl Upstream for ClientUpstream {
    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
        options: &'a serde_json::Value,
    ) -> UpstreamFuture<'a, UpstreamSubscription> {
        Box::pin(async move {
            let stream = self.client.subscribe(channel, options.clone()).await?;
            Ok(UpstreamSubscription::new(stream))
        })
    }

    fn sequence(&self, channel: &str, message: &Message) -> Option<Sequence> {
        (self.classify)(channel, message)
    }
}
