#[nova::client(strategy = "echo")]
enum Bot {
    A,
}

#[nova::client]
fn run() {}

#[nova::client]
impl Clone for Other {
    fn clone(&self) -> Self {
        Other
    }
}

struct Other;

fn main() {
    let _ = Bot::A;
    run();
}
