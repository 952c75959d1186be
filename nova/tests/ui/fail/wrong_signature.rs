use nova::prelude::*;

struct Bot;

#[nova::client(strategy = "always_reconnect", manual(AuthHandler))]
impl Bot {
    fn handle_disconnect(&self, _reason: &DisconnectReason, _ctx: &Context<'_>) -> ReconnectDecision {
        ReconnectDecision::Stop { reason: String::new() }
    }

    fn handle_frame(&mut self, _frame: Frame, _ctx: &mut Context<'_>) -> FrameAction {
        FrameAction::Continue
    }

    fn handle_message(&mut self, _message: Message) -> Result<(), HandlerError> {
        Ok(())
    }

    async fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
        None
    }

    pub fn log_error(&mut self, _error: &Error, _context: &ErrorContext) {}

    fn update_rate_limit(&mut self, _operation: Operation) -> bool {
        true
    }

    fn generate_auth_data(&mut self, _ctx: &mut Context<'_>) -> Result<Option<Message>, HandlerError> {
        Ok(None)
    }

    fn helper(&self) {}
}

impl AuthHandler for Bot {}

fn main() {
    Bot.helper();
}
