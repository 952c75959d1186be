#[nova::client(strategy = "always_retry")]
struct Bot;

#[nova::client(strategy = "FailFast")]
struct Other;

fn assert_handler<T: nova::Handler>() {}

fn main() {
    // The fallback still implements the traits: the only errors are the macro's.
    assert_handler::<Bot>();
    assert_handler::<Other>();
}
