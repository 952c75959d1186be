//! A platform adapter supplies the protocol behaviours: found by `#[nova(platform)]`, by type,
//! by `platform_field`, or as `self.platform` in the `impl` form.

use nova::prelude::*;

#[nova::client]
#[derive(Default)]
struct Venue;

#[nova::client(strategy = "always_reconnect")]
struct Marked {
    #[nova(platform)]
    venue: Venue,
    count: u32,
}

#[nova::client(strategy = "always_reconnect", platform = Venue)]
struct ByType(u32, Venue);

struct Conventional {
    platform: Venue,
}

#[nova::client(platform = Venue)]
impl Conventional {
    fn handle_message(&mut self, message: Message, ctx: &mut Context<'_>) -> Result<(), HandlerError> {
        ctx.deliver(message);
        Ok(())
    }
}

struct Named {
    adapter: Venue,
}

#[nova::client(strategy = "log_and_continue", platform = Venue, platform_field = adapter)]
impl Named {}

fn assert_handler<T: nova::Handler>() {}

fn main() {
    assert_handler::<Marked>();
    assert_handler::<ByType>();
    assert_handler::<Conventional>();
    assert_handler::<Named>();
    let _ = (Marked { venue: Venue, count: 0 }.count, ByType(0, Venue).0);
    let _ = (Conventional { platform: Venue }.platform, Named { adapter: Venue }.adapter);
}
