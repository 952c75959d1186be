//! Procedural macros of nova: thin entry points over `nova-macros-core`, where the parsing,
//! validation and expansion live and are unit-tested.
//!
//! Use them through the `nova` crate (`#[nova::client]`); its documentation describes them.
//!
//! ```
//! // A complete client: the `fail_fast` strategy's connection and error policy, the traits'
//! // defaults for the rest.
//! #[nova::client(strategy = "fail_fast")]
//! struct Watchdog;
//!
//! fn assert_handler<T: nova::Handler>() {}
//! assert_handler::<Watchdog>();
//! ```

use proc_macro::TokenStream;

/// Makes a type a complete nova client from a strategy, a platform adapter and the callbacks
/// you write. See the `nova` crate's documentation for the syntax and examples.
#[proc_macro_attribute]
pub fn client(attr: TokenStream, item: TokenStream) -> TokenStream {
    nova_macros_core::client(attr.into(), item.into()).into()
}
