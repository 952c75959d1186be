//! Quickstart: a Deribit client against the built-in simulator, fully offline.
//!
//! Starts the test kit's Deribit simulator in-process, connects a client that authenticates
//! (`client_signature`), subscribes to a ticker and an order book, and then:
//! - loses a book change on purpose: the client notices the `change_id` gap and subscribes
//!   again for a fresh snapshot;
//! - has the server drop every connection halfway: the client reconnects with backoff,
//!   authenticates again, restores both subscriptions (their acks verified) and carries on on
//!   the same streams.
//!
//! It ends in a few seconds with a summary, and fails (exit code 1) if anything did not recover.
//!
//! ```text
//! cargo run -p nova-examples --example quickstart
//! ```

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nova::{LifecycleEvent, SubscriptionEvent, SubscriptionStream};
use nova_deribit::{Channel, Credentials, DeribitClient, DeribitConfig, Interval};
use nova_testkit::deribit::{DeribitSim, DeribitSimOptions, TEST_CLIENT_ID, TEST_CLIENT_SECRET};

/// What one subscription stream saw.
#[derive(Debug, Default)]
struct Seen {
    messages: u64,
    restored: u64,
    gaps: u64,
    gaps_closed: u64,
}

fn count(seen: &mut Seen, event: SubscriptionEvent) {
    match event {
        SubscriptionEvent::Message(_) => seen.messages += 1,
        SubscriptionEvent::Restored => {
            seen.restored += 1;
            println!("  subscription restored");
        }
        SubscriptionEvent::Gap { gap, action } => {
            seen.gaps += 1;
            println!(
                "  gap in the book: last change_id {:?}, next claims {:?} -> {action}",
                gap.last, gap.claimed_previous
            );
        }
        SubscriptionEvent::GapClosed { value } => {
            seen.gaps_closed += 1;
            println!("  gap closed: fresh snapshot at change_id {value}");
        }
        other => println!("  {other:?}"),
    }
}

async fn drain(stream: &mut SubscriptionStream, seen: &mut Seen, until: Instant) {
    while let Ok(Some(event)) = tokio::time::timeout_at(until.into(), stream.next()).await {
        count(seen, event);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    nova_examples::init_logging("warn");
    let started = Instant::now();

    let sim =
        DeribitSim::start_with(DeribitSimOptions::default().with_tick(Duration::from_millis(20)))
            .await?;
    println!("Deribit simulator on {}", sim.url());

    let config =
        DeribitConfig::default().credentials(Credentials::new(TEST_CLIENT_ID, TEST_CLIENT_SECRET));
    let (deribit, _unclaimed) = DeribitClient::connect(sim.url(), config)?;
    let mut events = deribit.client().events();
    let watcher = tokio::spawn(async move {
        let mut reconnects = 0u32;
        while let Ok(event) = events.recv().await {
            match event {
                LifecycleEvent::Connected {
                    connection_index,
                    duration,
                } => {
                    println!("connected (connection #{connection_index}, {duration:.1?})");
                    reconnects += u32::from(connection_index > 0);
                }
                LifecycleEvent::Disconnected { reason, .. } => println!("disconnected: {reason}"),
                LifecycleEvent::ReconnectScheduled { attempt, delay } => {
                    println!("reconnecting (attempt {attempt}) in {delay:.0?}");
                }
                LifecycleEvent::Stopped { .. } => break,
                _ => {}
            }
        }
        reconnects
    });

    let ticker = deribit.ticker("BTC-PERPETUAL").await?;
    println!(
        "BTC-PERPETUAL last price {}",
        ticker.last_price.unwrap_or_default()
    );
    let mut ticks = deribit
        .subscribe(Channel::ticker("BTC-PERPETUAL", Interval::Ms100))
        .await?;
    let mut book = deribit
        .subscribe(Channel::book("BTC-PERPETUAL", Interval::Ms100))
        .await?;
    println!("subscribed to {} and {}", ticks.channel(), book.channel());

    let (mut ticks_seen, mut book_seen) = (Seen::default(), Seen::default());
    let phase = |ms| Instant::now() + Duration::from_millis(ms);

    let until = phase(1000);
    tokio::join!(
        drain(&mut ticks, &mut ticks_seen, until),
        drain(&mut book, &mut book_seen, until)
    );
    println!("-- the simulator loses a book change --");
    sim.handle().skip_book_change();
    let until = phase(1000);
    tokio::join!(
        drain(&mut ticks, &mut ticks_seen, until),
        drain(&mut book, &mut book_seen, until)
    );
    println!("-- the simulator drops every connection --");
    sim.handle().drop_all().await;
    let until = phase(2000);
    tokio::join!(
        drain(&mut ticks, &mut ticks_seen, until),
        drain(&mut book, &mut book_seen, until)
    );

    deribit.close().await?;
    let reconnects = watcher.await?;
    let counters = sim.handle().counters();

    println!();
    println!("summary");
    println!("  ticker messages          : {}", ticks_seen.messages);
    println!("  book messages            : {}", book_seen.messages);
    println!("  reconnects               : {reconnects}");
    println!("  authentications          : {}", counters.auths);
    println!(
        "  subscriptions restored   : {}",
        ticks_seen.restored + book_seen.restored
    );
    println!(
        "  gaps found / closed      : {} / {}",
        book_seen.gaps, book_seen.gaps_closed
    );
    println!("  elapsed                  : {:.1?}", started.elapsed());

    let ok = reconnects >= 1
        && counters.auths >= 2
        && ticks_seen.restored >= 1
        && book_seen.restored >= 1
        && book_seen.gaps >= 1
        && book_seen.gaps_closed >= book_seen.gaps
        && ticks_seen.messages > 0
        && book_seen.messages > 0;
    if !ok {
        eprintln!("something did not recover");
        std::process::exit(1);
    }
    Ok(())
}
