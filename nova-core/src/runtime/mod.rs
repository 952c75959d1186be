//! The connection runtime: one task per connection, and the handle the application holds.

mod client;
mod driver;
mod events;
mod inbound;
mod subscriptions;

pub use client::Client;
pub use events::LifecycleEvent;
pub use inbound::{Lagged, Messages};
pub use subscriptions::{
    InMemoryRegistry, SubscriptionEvent, SubscriptionRegistry, SubscriptionStream,
};
