//! `manual(...)` leaves a trait to a hand-written impl; `crate = "..."` reaches nova by another path.

use nova::prelude::*;

mod sdk {
    pub use ::nova as engine;
}

#[nova::client(strategy = "fail_fast", manual(AuthHandler, nova::HeartbeatHandler))]
struct Bot;

impl AuthHandler for Bot {
    fn generate_auth_data(&mut self, _auth: &AuthRequest, _ctx: &mut Context<'_>) -> Result<Option<Message>, HandlerError> {
        Ok(Some(Message::text("auth")))
    }
}

impl HeartbeatHandler for Bot {}

#[nova::client(strategy = "echo", crate = "crate::sdk::engine")]
struct Renamed;

fn assert_handler<T: nova::Handler>() {}

fn main() {
    assert_handler::<Bot>();
    assert_handler::<Renamed>();
}
