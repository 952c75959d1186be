//! The adapter inside a user's client made with `#[nova::client]`: the bot overrides one
//! callback and keeps Deribit's auth, heartbeat, subscriptions and gap recovery.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use nova::prelude::*;
use nova::{Client, ClientConfig, SubscriptionEvent};
use nova_deribit::{Channel, Credentials, DeribitAdapter, DeribitConfig, Interval, book_position};
use nova_testkit::deribit::{DeribitSim, DeribitSimOptions, TEST_CLIENT_ID, TEST_CLIENT_SECRET};
use tokio::time::Instant;

struct Bot {
    deribit: DeribitAdapter,
    unclaimed: Arc<AtomicU64>,
}

#[nova::client(strategy = "always_reconnect", platform = DeribitAdapter, platform_field = deribit)]
impl Bot {
    fn handle_message(
        &mut self,
        message: Message,
        ctx: &mut Context<'_>,
    ) -> Result<(), HandlerError> {
        self.unclaimed.fetch_add(1, Ordering::Relaxed);
        ctx.deliver(message);
        Ok(())
    }
}

#[tokio::test]
async fn a_bot_keeps_the_adapters_behaviours() {
    let unit = Duration::from_millis(50);
    let options = DeribitSimOptions::default()
        .with_tick(Duration::from_millis(20))
        .with_heartbeat_unit(unit);
    let sim = DeribitSim::start_with(options).await.unwrap();
    let deribit = DeribitConfig::default()
        .credentials(Credentials::new(TEST_CLIENT_ID, TEST_CLIENT_SECRET))
        .heartbeat_unit(unit);
    let config = ClientConfig::builder(sim.url())
        .rate_limit(deribit.limits.rate_limit())
        .build()
        .unwrap();
    let unclaimed = Arc::new(AtomicU64::new(0));
    let bot = Bot {
        deribit: DeribitAdapter::new(deribit),
        unclaimed: Arc::clone(&unclaimed),
    };
    let (client, _messages) = Client::connect(config, bot);
    let mut book = client
        .subscribe(
            Channel::book("ETH-PERPETUAL", Interval::Ms100),
            serde_json::json!({}),
        )
        .await
        .unwrap();

    let mut last = None;
    let mut gaps = 0;
    let mut skipped = false;
    let end = Instant::now() + Duration::from_secs(3);
    while let Ok(Some(event)) = tokio::time::timeout_at(end, book.next()).await {
        match event {
            SubscriptionEvent::Message(m) => {
                let (id, prev) = book_position(&m).unwrap();
                if let Some(prev) = prev {
                    assert_eq!(Some(prev), last, "continuity");
                }
                last = Some(id);
            }
            SubscriptionEvent::Gap { .. } => gaps += 1,
            _ => {}
        }
        if !skipped && Instant::now() + Duration::from_secs(2) > end {
            sim.skip_book_change();
            skipped = true;
        }
    }
    assert_eq!(gaps, 1);
    let counters = sim.counters();
    assert_eq!(counters.auths, 1, "{counters:?}");
    assert!(counters.test_requests >= 4, "{counters:?}");
    assert_eq!(counters.heartbeat_drops, 0, "{counters:?}");
    assert_eq!(counters.connections, 1, "{counters:?}");
    // The responses to public/hello, public/set_heartbeat and every public/test are not
    // delivered: no pending request claims them, and they are dropped before handle_message.
    assert_eq!(unclaimed.load(Ordering::Relaxed), 0);
}
