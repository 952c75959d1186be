//! What is emitted when the attribute or the item has errors: the user's item, every error as a
//! `compile_error!` spanned on the user's tokens, and — when the item is a client and the crate
//! path is known — the seven trait impls with their defaults, so that the rest of the crate
//! (`Client::connect(config, Bot)`) still type-checks and the user sees only the real errors.

use proc_macro2::TokenStream;
use quote::quote;

use crate::attr::Args;
use crate::expand::trait_impl;
use crate::item::Client;
use crate::table::Behaviour;

pub(crate) fn fallback(
    original: TokenStream,
    client: Option<&Client>,
    args: &Args,
    errors: &[syn::Error],
) -> TokenStream {
    let item = client.map_or(original, Client::fallback_tokens);
    let defaults: Vec<TokenStream> = match client {
        Some(client) if args.krate_ok => Behaviour::ALL
            .into_iter()
            .filter(|b| !args.is_manual(*b))
            .map(|b| trait_impl(args, client, b, false))
            .collect(),
        _ => Vec::new(),
    };
    let errors = errors.iter().map(syn::Error::to_compile_error);
    quote! {
        #item
        #(#defaults)*
        #(#errors)*
    }
}
