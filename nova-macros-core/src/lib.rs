//! Parsing and expansion of `#[nova::client]`, kept in a plain crate so it can be unit-tested
//! (the proc-macro crate `nova-macros` is one line that calls [`client`]).
//!
//! The work is done in three steps, each in its own module:
//!
//! 1. **parse** the attribute's arguments (`attr`) and the item (`item`), from the tables in
//!    `table` (the seven behaviours with their callbacks' signatures, and the strategies);
//! 2. **validate** the callbacks written in an `impl` block against those signatures (`valid`),
//!    collecting every error instead of stopping at the first;
//! 3. **expand** into the seven trait impls (`expand`) — or, when there was any error, emit the
//!    **fallback** (`fallback`): the user's item unchanged, default trait impls, and one
//!    `compile_error!` per problem, spanned on the user's tokens.
//!
//! See the `nova` crate for what the attribute means to users.
//!
//! ```
//! use quote::quote;
//!
//! // What `#[nova::client(strategy = "fail_fast")] struct Bot;` expands to: the seven impls.
//! let out = nova_macros_core::client(quote!(strategy = "fail_fast"), quote!(struct Bot;));
//! assert!(out.to_string().contains("impl :: nova :: __private :: ErrorHandler for Bot"));
//!
//! // A mistake: the item back unchanged, and one `compile_error!` spanned on the user's tokens.
//! let out = nova_macros_core::client(quote!(strategy = "fast"), quote!(struct Bot;));
//! let text = out.to_string();
//! assert!(text.contains("compile_error !") && text.contains("unknown strategy"));
//! assert!(text.contains("struct Bot ;"));
//! ```

mod attr;
mod expand;
mod fallback;
mod item;
mod table;
mod valid;

use proc_macro2::TokenStream;

/// Expands `#[nova::client(attr)] item`.
///
/// Never fails: errors come back as `compile_error!` invocations next to the user's item.
///
/// ```
/// let out = nova_macros_core::client(
///     quote::quote!(strategy = "fail_fast"),
///     quote::quote!(struct Bot;),
/// );
/// let text = out.to_string();
/// assert!(text.contains("impl :: nova :: __private :: ConnectionHandler for Bot"));
/// assert!(text.contains("FailFast"));
/// ```
#[must_use]
pub fn client(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let args = attr::parse(attr, &mut errors);
    let parsed = item::parse(item.clone(), &args, &mut errors);
    match parsed {
        Some(client) if errors.is_empty() => expand::expand(&args, &client),
        parsed => fallback::fallback(item, parsed.as_ref(), &args, &errors),
    }
}
