//! The attribute goes on the struct or on its `impl` block, not both: each trait would be
//! implemented twice.

#[nova::client]
struct Bot;

#[nova::client(strategy = "fail_fast")]
impl Bot {}

fn main() {}
