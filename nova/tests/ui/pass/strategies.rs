//! Every strategy on a struct makes a complete client.

#[nova::client]
struct Plain;

#[nova::client(strategy = "default")]
struct Default;

#[nova::client(strategy = "always_reconnect")]
pub struct Reconnecting {
    pub name: String,
}

#[nova::client(strategy = "fail_fast")]
struct Failing(u8);

#[nova::client(strategy = "log_and_continue")]
struct Logging<T: Send + 'static> {
    inner: T,
}

#[nova::client(strategy = "echo")]
struct Echoing;

fn assert_handler<T: nova::Handler>() {}

fn main() {
    assert_handler::<Plain>();
    assert_handler::<Default>();
    assert_handler::<Reconnecting>();
    assert_handler::<Failing>();
    assert_handler::<Logging<Vec<u8>>>();
    assert_handler::<Echoing>();
    let _ = (Reconnecting { name: String::new() }.name, Failing(1).0, Logging { inner: 1u8 }.inner);
}
