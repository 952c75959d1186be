//! Callbacks in an `impl` block override the strategy; other items stay inherent; names in
//! the signatures may be spelled any way that names the same types.

use std::time::Duration;

use nova::prelude::*;

struct Bot<T> {
    seen: u64,
    tag: T,
}

#[nova::client(strategy = "fail_fast")]
impl<T: Send + 'static> Bot<T> {
    const LIMIT: u64 = 10;

    /// Reconnect at once instead of failing.
    fn handle_disconnect(&mut self, _reason: &nova::DisconnectReason, _ctx: &Context) -> ReconnectDecision {
        ReconnectDecision::after(Duration::ZERO)
    }

    fn handle_message(&mut self, message: Message, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        self.bump();
        ctx.deliver(message);
        Ok(())
    }

    fn message_type(&self, _message: &Message) -> MessageType {
        MessageType::Unknown
    }

    fn configure(&mut self, _interval: Option<Duration>) -> Option<Duration> {
        Some(Duration::from_secs(5))
    }

    fn log_error(self: &mut Self, _error: &Error, _context: &ErrorContext) {}

    /// An ordinary method, still callable as one.
    pub fn bump(&mut self) -> u64 {
        self.seen = (self.seen + 1).min(Self::LIMIT);
        self.seen
    }
}

fn assert_handler<T: nova::Handler>() {}

fn main() {
    assert_handler::<Bot<String>>();
    let mut bot = Bot { seen: 0, tag: () };
    assert_eq!(bot.bump(), 1);
    assert_eq!(HeartbeatHandler::configure(&mut bot, None), Some(Duration::from_secs(5)));
    let _ = bot.tag;
}
