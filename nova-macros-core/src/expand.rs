//! Writing the seven trait impls.
//!
//! For each behaviour not listed in `manual(...)`, one `impl Trait for Type` is written. Each
//! callback in it is, in order of precedence:
//!
//! 1. the user's own method from the `impl` block;
//! 2. for a protocol behaviour (message, subscription, auth, heartbeat, rate limit) with a
//!    platform adapter: a forwarder to the adapter's impl, `<Adapter as Trait>::f(&mut self.field, ..)`;
//! 3. for a callback the strategy defines: a forwarder to the strategy's impl in nova,
//!    `<nova::AlwaysReconnect as Trait>::f(&mut AlwaysReconnect, ..)`;
//! 4. nothing: the trait's default method.
//!
//! Every path is absolute (`<crate>::__private::...`, `::core::...`), so nothing in the user's
//! scope changes the meaning of the generated code, and no behaviour is pasted into it: the
//! forwarders only call code that lives in nova or in the adapter.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::FnArg;

use crate::attr::Args;
use crate::item::{Client, Platform};
use crate::table::{Behaviour, Callback};

/// The expansion of a valid client.
pub(crate) fn expand(args: &Args, client: &Client) -> TokenStream {
    let item = client.item_tokens();
    let impls = Behaviour::ALL
        .into_iter()
        .filter(|b| !args.is_manual(*b))
        .map(|b| trait_impl(args, client, b, true));
    quote! {
        #item
        #(#impls)*
    }
}

/// `impl Trait for Type { ... }`; with `with_methods == false` an empty impl (trait defaults),
/// as the fallback writes it.
pub(crate) fn trait_impl(
    args: &Args,
    client: &Client,
    behaviour: Behaviour,
    with_methods: bool,
) -> TokenStream {
    let krate = &args.krate;
    let tr = format_ident!("{}", behaviour.trait_name());
    let (impl_generics, _, where_clause) = client.generics.split_for_impl();
    let self_ty = &client.self_ty;
    let attrs = &client.impl_attrs;
    let methods = Callback::of(behaviour)
        .filter(|_| with_methods)
        .filter_map(|cb| method(args, client, cb));
    quote! {
        #(#attrs)*
        #[automatically_derived]
        impl #impl_generics #krate::__private::#tr for #self_ty #where_clause {
            #(#methods)*
        }
    }
}

fn method(args: &Args, client: &Client, cb: &Callback) -> Option<TokenStream> {
    if let Some(f) = client.override_for(cb.name) {
        return Some(quote!(#f));
    }
    if cb.behaviour.is_protocol() {
        if let Some(platform) = &client.platform {
            return Some(forward(args, cb, Target::Platform(platform)));
        }
    }
    let (strategy, _) = args.strategy?;
    let ty = strategy.ty?;
    strategy
        .callbacks
        .contains(&cb.name)
        .then(|| forward(args, cb, Target::Strategy(ty)))
}

enum Target<'a> {
    Strategy(&'static str),
    Platform(&'a Platform),
}

/// A method with the callback's signature that calls the same callback on the target.
fn forward(args: &Args, cb: &Callback, target: Target<'_>) -> TokenStream {
    let krate = &args.krate;
    let sig = cb.signature(krate);
    let name = &sig.ident;
    let tr = format_ident!("{}", cb.behaviour.trait_name());
    let by_mut = matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if r.mutability.is_some());
    let params = sig.inputs.iter().filter_map(|a| match a {
        FnArg::Typed(t) => Some(&t.pat),
        FnArg::Receiver(_) => None,
    });
    let call = match target {
        Target::Strategy(ty) => {
            let ty = format_ident!("{ty}");
            let path = quote!(#krate::__private::#ty);
            let receiver = if by_mut {
                quote!(&mut #path)
            } else {
                quote!(&#path)
            };
            quote!(<#path as #krate::__private::#tr>::#name(#receiver, #(#params),*))
        }
        Target::Platform(p) => {
            let (pty, member) = (&p.ty, &p.member);
            // Spanned on the user's adapter type: "`X` does not implement `AuthHandler`" points there.
            let function = quote_spanned!(p.span=> <#pty as #krate::__private::#tr>::#name);
            let receiver = if by_mut {
                quote!(&mut self.#member)
            } else {
                quote!(&self.#member)
            };
            quote!(#function(#receiver, #(#params),*))
        }
    };
    let wait = sig.asyncness.map(|_| quote!(.await));
    quote! {
        #[inline]
        #sig {
            #call #wait
        }
    }
}
