//! The connection runtime: one task per connection, and the handle the application holds.
//!
//! `driver.rs` is the place to start reading: it holds the order of events on a connection and
//! a table of the components beside it.

/// A [`Context`](crate::handler::Context) over a driver's state, configuration and outbox (the
/// fields borrowed one by one, so the handler can be called with it).
macro_rules! ctx {
    ($driver:ident) => {
        $crate::handler::Context::new(&$driver.obs.state, &$driver.config, &mut $driver.out)
    };
}

mod auth;
mod client;
mod commands;
mod dispatch;
mod down;
mod driver;
mod errors;
mod events;
mod gaps;
mod handover;
mod inbound;
mod liveness;
mod observe;
mod outbound;
mod queue;
mod requests;
mod session;
mod stale;
mod subs;
mod subscriptions;

pub use client::Client;
pub use events::LifecycleEvent;
pub use inbound::{Lagged, Messages};
pub use subscriptions::{
    Delivery, InMemoryRegistry, SubscriptionEvent, SubscriptionRegistry, SubscriptionStream,
};
