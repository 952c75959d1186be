#[nova::client(strategy = "echo", retries = 3, strategy = "fail_fast", manual(Auth))]
struct Bot;

#[nova::client(strategy = fail_fast, crate = "not a path")]
struct Other;

fn main() {}
