//! The adapter must implement the protocol behaviours; the error points at `platform = ...`.

struct NotAnAdapter;

struct Bot {
    platform: NotAnAdapter,
}

#[nova::client(platform = NotAnAdapter, manual(MessageHandler, SubscriptionHandler, HeartbeatHandler, RateLimitHandler))]
impl Bot {}

impl nova::MessageHandler for Bot {}
impl nova::SubscriptionHandler for Bot {}
impl nova::HeartbeatHandler for Bot {}
impl nova::RateLimitHandler for Bot {}

#[nova::client(platform = Missing)]
struct NoSuchField {
    other: u8,
}

fn main() {
    let _ = Bot { platform: NotAnAdapter };
}
