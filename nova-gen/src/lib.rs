//! The library core of `nova-gen`: scaffolds a nova platform integration crate from minijinja
//! templates (the seed's `mix websockex_nova.gen.integration NAME --platform KIND`).
//!
//! [`generate`] does what the command line does: validate the name, pick the template set and
//! the kind of platform, decide where nova comes from ([`Dependencies`]), render every file in
//! memory, and only then write the crate and add it to the nova workspace's `members`.
//! [`Generator`] renders without touching the disk (the snapshot and golden tests use it).
//!
//! ```no_run
//! use nova_gen::{Options, generate};
//!
//! let generated = generate(&Options::new("acme").with_platform("jsonrpc"))?;
//! print!("{}", generated.report());
//! # Ok::<(), nova_gen::GenError>(())
//! ```
//!
//! # Where the crate goes, and where nova comes from
//!
//! The crate is written to `OUT/nova-NAME`; `OUT` defaults to `platforms/` of the nova checkout
//! the current directory is in, or else the current directory. If `OUT` is inside a nova
//! checkout (the nearest Cargo workspace above it has `nova-core`), the crate uses
//! `{ workspace = true }` dependencies and the workspace's lints, and is added to the
//! workspace's `members`. Elsewhere it uses path dependencies on the checkout given with
//! `--nova-path`, or version dependencies, and carries its own lint set.
//!
//! # Template sets
//!
//! The templates live in `templates/integration/` of this package (`nova-gen/templates/` in the
//! nova repository, shipped in the published crate) and are compiled into the binary; `--templates DIR` renders a set of one's own with the same layout: `common/`
//! for every kind, a directory per kind, each `PATH.j2` rendering to `PATH`, files starting
//! with `_` only included by others (`_next_steps.txt.j2` is the message printed at the end).
//! Rendering is strict: an undefined variable is an error. Every template sees:
//!
//! | variable | example | what |
//! |---|---|---|
//! | `name` | `my-venue` | the platform's name, as given; also its settings section |
//! | `crate_name` | `nova-my-venue` | the crate's name |
//! | `crate_ident` | `nova_my_venue` | the crate in Rust paths |
//! | `type_prefix` | `MyVenue` | prefix of the generated types (`MyVenueClient`) |
//! | `title` | `My Venue` | the name for people |
//! | `env_prefix` | `MY_VENUE` | prefix of `MY_VENUE_API_KEY` / `MY_VENUE_API_SECRET` |
//! | `endpoint` | `wss://my-venue.example.com/ws` | a placeholder endpoint |
//! | `platform` | `jsonrpc` | the kind of platform |
//! | `with_tests` | `true` | whether `tests/` is generated |
//! | `deps_mode` | `workspace` | `workspace`, `path` or `version` |
//! | `nova_path` | `../../nova` | the nova checkout, relative to the crate (`path` mode; else empty) |
//! | `nova_version` | `0.1.0` | the nova version for version dependencies |
//! | `rust_version` | `1.85` | nova's minimum Rust version |
//! | `command` | `nova-gen integration my-venue --platform jsonrpc` | the command that generated it |
//!
//! `_next_steps.txt.j2` also sees `crate_dir`, the crate's directory as shown to the user.
//!
//! # How the templates are kept honest
//!
//! - `tests/snapshots.rs`: every rendered file of every kind is an `insta` snapshot, and the
//!   rendered Rust must already be `rustfmt`-clean.
//! - `tests/golden.rs`: `platforms/nova-gen-golden` (the `jsonrpc` kind, generated inside the
//!   workspace) and `platforms/nova-gen-golden-generic` (the `generic` kind) are regenerated and
//!   compared; the workspace builds, lints and tests it like any
//!   crate, so a change in nova-core that breaks the templates breaks CI. Refresh it after a
//!   template change with `NOVA_GEN_BLESS=1 cargo test -p nova-gen --test golden`.
//! - `tests/generated_crates.rs`: each kind is generated outside the workspace and its tests
//!   run with cargo (sharing the workspace's target directory), linted by clippy.
//! - `tests/cli.rs`: the binary's help, output and error exits.

mod error;
mod generate;
mod name;
mod templates;
mod workspace;

pub use error::GenError;
pub use generate::{
    DEFAULT_PLATFORM, Dependencies, Generated, Generator, NOVA_VERSION, Options, RenderRequest,
    WorkspaceJoin, generate, generate_in,
};
pub use name::PlatformName;
pub use templates::RenderedFile;
