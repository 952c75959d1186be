//! `nova-gen`: scaffolds nova platform integrations from templates.

fn main() {
    eprintln!("nova-gen: not yet implemented (see issue 6)");
    std::process::exit(2);
}
