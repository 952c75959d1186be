//! The item under the attribute, parsed and checked: a struct (a complete client) or the
//! struct's inherent `impl` block (callbacks that override the defaults).
//!
//! In the `impl` form every method whose name is a callback of one of the seven traits is taken
//! out of the block, checked against the table's signature and later written into that trait's
//! impl; every other item stays in the inherent block. In the struct form the field holding a
//! platform adapter is found here: the one marked `#[nova(platform)]`, the one named by
//! `platform_field = ...`, or the only one of the `platform = Type` type.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::spanned::Spanned;
use syn::{Attribute, ImplItem, Item, ItemImpl, ItemStruct, Member};

use crate::attr::Args;
use crate::table::Callback;
use crate::valid::{same_type, signature_mismatch, type_text};

/// What the attribute was put on, ready to expand.
#[derive(Debug)]
pub(crate) struct Client {
    pub(crate) form: Form,
    /// The type the traits are implemented for (`Bot`, `Bot<T>`).
    pub(crate) self_ty: TokenStream,
    pub(crate) generics: syn::Generics,
    /// The item's `cfg` and lint attributes, repeated on every generated impl.
    pub(crate) impl_attrs: Vec<Attribute>,
    /// Where the protocol behaviours are delegated, when there is a platform adapter.
    pub(crate) platform: Option<Platform>,
}

/// The two forms.
#[derive(Debug)]
pub(crate) enum Form {
    /// The struct, with nova's helper attributes removed.
    Struct(ItemStruct),
    /// The impl block as written, the block without its callbacks, and the callbacks.
    Impl {
        original: Box<ItemImpl>,
        inherent: Box<ItemImpl>,
        overrides: Vec<(&'static Callback, syn::ImplItemFn)>,
    },
}

/// The adapter the protocol behaviours are delegated to: `self.<member>` of type `ty`.
#[derive(Debug)]
pub(crate) struct Platform {
    pub(crate) ty: TokenStream,
    pub(crate) member: Member,
    /// Where the compiler should point if the adapter does not implement a trait.
    pub(crate) span: Span,
}

impl Client {
    /// The user's callback `name`, if the impl block has one.
    pub(crate) fn override_for(&self, name: &str) -> Option<&syn::ImplItemFn> {
        match &self.form {
            Form::Impl { overrides, .. } => overrides
                .iter()
                .find(|(c, _)| c.name == name)
                .map(|(_, f)| f),
            Form::Struct(_) => None,
        }
    }

    /// The user's item as the expansion emits it.
    pub(crate) fn item_tokens(&self) -> TokenStream {
        match &self.form {
            Form::Struct(s) => s.to_token_stream(),
            Form::Impl { inherent, .. } if inherent.items.is_empty() => TokenStream::new(),
            Form::Impl { inherent, .. } => inherent.to_token_stream(),
        }
    }

    /// The user's item as the fallback emits it: the impl block untouched (callbacks stay
    /// inherent methods, so the crate keeps compiling apart from the reported error).
    pub(crate) fn fallback_tokens(&self) -> TokenStream {
        match &self.form {
            Form::Struct(s) => s.to_token_stream(),
            Form::Impl { original, .. } => original.to_token_stream(),
        }
    }
}

/// Parses and checks the item; `None` when it is not something a client can be made of.
pub(crate) fn parse(
    item: TokenStream,
    args: &Args,
    errors: &mut Vec<syn::Error>,
) -> Option<Client> {
    match syn::parse2::<Item>(item) {
        Ok(Item::Struct(s)) => Some(parse_struct(s, args, errors)),
        Ok(Item::Impl(i)) => parse_impl(i, args, errors),
        Ok(other) => {
            errors.push(not_a_client(&other));
            None
        }
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn not_a_client(item: &Item) -> syn::Error {
    let (what, span) = match item {
        Item::Enum(e) => ("an enum", e.enum_token.span()),
        Item::Union(u) => ("a union", u.union_token.span()),
        Item::Fn(f) => ("a function", f.sig.fn_token.span()),
        Item::Trait(t) => ("a trait", t.trait_token.span()),
        Item::Mod(m) => ("a module", m.mod_token.span()),
        Item::Type(t) => ("a type alias", t.type_token.span()),
        Item::Const(c) => ("a constant", c.const_token.span()),
        Item::Static(s) => ("a static", s.static_token.span()),
        Item::Use(u) => ("a `use` declaration", u.use_token.span()),
        other => ("this item", other.span()),
    };
    syn::Error::new(
        span,
        format!(
            "`#[nova::client]` goes on a struct (a complete client) or on the struct's `impl` block \
             (callbacks that override the defaults), not on {what}"
        ),
    )
}

/// `cfg` and lint attributes: the ones that must apply to generated impls too.
fn is_impl_attr(a: &Attribute) -> bool {
    ["cfg", "allow", "expect", "warn", "deny", "forbid"]
        .iter()
        .any(|n| a.path().is_ident(n))
}

fn parse_struct(mut s: ItemStruct, args: &Args, errors: &mut Vec<syn::Error>) -> Client {
    // Take `#[nova(platform)]` off the fields, remembering which fields had it.
    let mut marked: Vec<(Member, syn::Type, Span)> = Vec::new();
    let mut fields: Vec<(Member, syn::Type)> = Vec::new();
    for (index, field) in s.fields.iter_mut().enumerate() {
        let member = match &field.ident {
            Some(ident) => Member::Named(ident.clone()),
            None => Member::Unnamed(syn::Index {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                span: field.ty.span(),
            }),
        };
        let mut kept = Vec::new();
        for attr in std::mem::take(&mut field.attrs) {
            if !attr.path().is_ident("nova") {
                kept.push(attr);
                continue;
            }
            match attr.parse_args::<syn::Ident>() {
                Ok(option) if option == "platform" => {
                    if marked.is_empty() {
                        marked.push((member.clone(), field.ty.clone(), attr.span()));
                    } else {
                        errors.push(syn::Error::new_spanned(&attr, "only one field can hold the platform adapter"));
                    }
                }
                _ => errors.push(syn::Error::new_spanned(
                    &attr,
                    "unknown option in `#[nova(...)]`: the only field option is `#[nova(platform)]`, on the field holding the platform adapter",
                )),
            }
        }
        field.attrs = kept;
        fields.push((member, field.ty.clone()));
    }

    let mut chosen = marked.into_iter().next();
    if let Some(wanted) = &args.platform_field {
        match fields.iter().find(|(m, _)| m == wanted) {
            None => errors.push(syn::Error::new(wanted.span(), format!("`{}` has no field `{}`", s.ident, member_text(wanted)))),
            Some((m, ty)) => match &chosen {
                Some((other, _, _)) if other != m => errors.push(syn::Error::new(
                    wanted.span(),
                    format!(
                        "`platform_field = {}` and `#[nova(platform)]` on `{}` name different fields",
                        member_text(m),
                        member_text(other)
                    ),
                )),
                _ => chosen = Some((m.clone(), ty.clone(), wanted.span())),
            },
        }
    }
    if chosen.is_none() {
        if let Some(pty) = &args.platform {
            let matching: Vec<_> = fields.iter().filter(|(_, ty)| same_type(ty, pty)).collect();
            match matching.as_slice() {
                [(m, ty)] => chosen = Some((m.clone(), ty.clone(), pty.span())),
                [] => errors.push(syn::Error::new_spanned(
                    pty,
                    format!(
                        "no field of `{}` holds the platform adapter `{}`: add one, or mark the field that holds it with `#[nova(platform)]`",
                        s.ident,
                        type_text(pty)
                    ),
                )),
                _ => errors.push(syn::Error::new_spanned(
                    pty,
                    format!("several fields of `{}` have type `{}`: mark the adapter with `#[nova(platform)]`", s.ident, type_text(pty)),
                )),
            }
        }
    }
    let platform = chosen.map(|(member, field_ty, span)| Platform {
        ty: args
            .platform
            .as_ref()
            .map_or_else(|| field_ty.to_token_stream(), ToTokens::to_token_stream),
        member,
        span: args.platform.as_ref().map_or(span, Spanned::span),
    });

    let ident = &s.ident;
    let (_, ty_generics, _) = s.generics.split_for_impl();
    let self_ty = quote!(#ident #ty_generics);
    let generics = s.generics.clone();
    let impl_attrs = s
        .attrs
        .iter()
        .filter(|a| is_impl_attr(a))
        .cloned()
        .collect();
    Client {
        form: Form::Struct(s),
        self_ty,
        generics,
        impl_attrs,
        platform,
    }
}

fn member_text(m: &Member) -> String {
    match m {
        Member::Named(i) => i.to_string(),
        Member::Unnamed(i) => i.index.to_string(),
    }
}

fn parse_impl(original: ItemImpl, args: &Args, errors: &mut Vec<syn::Error>) -> Option<Client> {
    if let Some((_, path, _)) = &original.trait_ {
        errors.push(syn::Error::new_spanned(
            path,
            "`#[nova::client]` goes on the struct's inherent `impl` block (`impl Bot { ... }`), not on a trait impl: \
             it sorts the callbacks written there into the seven behaviour traits itself",
        ));
        return None;
    }
    let platform = match (&args.platform, &args.platform_field) {
        (Some(ty), field) => Some(Platform {
            ty: ty.to_token_stream(),
            member: field
                .clone()
                .unwrap_or_else(|| Member::Named(syn::Ident::new("platform", ty.span()))),
            span: ty.span(),
        }),
        (None, Some(field)) => {
            errors.push(syn::Error::new(
                field.span(),
                "`platform_field` names the field holding the platform adapter: it needs `platform = AdapterType` too",
            ));
            None
        }
        (None, None) => None,
    };

    let mut inherent = Box::new(original.clone());
    let mut overrides: Vec<(&'static Callback, syn::ImplItemFn)> = Vec::new();
    let mut rest = Vec::new();
    for item in std::mem::take(&mut inherent.items) {
        let ImplItem::Fn(f) = item else {
            rest.push(item);
            continue;
        };
        let Some(cb) = Callback::find(&f.sig.ident.to_string()) else {
            rest.push(ImplItem::Fn(f));
            continue;
        };
        let mut ok = true;
        if args.is_manual(cb.behaviour) {
            errors.push(syn::Error::new(
                f.sig.ident.span(),
                format!(
                    "`{}` is a callback of `{tr}`, which is listed in `manual(...)`: write it in your `impl {tr} for ...` instead",
                    cb.name,
                    tr = cb.behaviour.trait_name()
                ),
            ));
            ok = false;
        }
        if !matches!(f.vis, syn::Visibility::Inherited) {
            errors.push(syn::Error::new_spanned(
                &f.vis,
                format!("`{}` becomes a method of `{}`, which has the trait's visibility: remove the `pub`", cb.name, cb.behaviour.trait_name()),
            ));
            ok = false;
        }
        if let Some((tokens, detail)) = signature_mismatch(&f.sig, &cb.raw_signature()) {
            errors.push(syn::Error::new_spanned(
                tokens,
                format!(
                    "wrong signature for the callback `{}`: {detail}; expected `{}`",
                    cb.qualified(),
                    cb.display()
                ),
            ));
            ok = false;
        }
        if overrides.iter().any(|(c, _)| c.name == cb.name) {
            errors.push(syn::Error::new(
                f.sig.ident.span(),
                format!("the callback `{}` is written twice", cb.name),
            ));
            ok = false;
        }
        if ok {
            overrides.push((cb, f));
        }
    }
    inherent.items = rest;
    let self_ty = original.self_ty.to_token_stream();
    let generics = original.generics.clone();
    let impl_attrs = original
        .attrs
        .iter()
        .filter(|a| is_impl_attr(a))
        .cloned()
        .collect();
    Some(Client {
        form: Form::Impl {
            original: Box::new(original),
            inherent,
            overrides,
        },
        self_ty,
        generics,
        impl_attrs,
        platform,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
        let mut errors = Vec::new();
        let args = crate::attr::parse(attr, &mut errors);
        parse(item, &args, &mut errors);
        errors.iter().map(ToString::to_string).collect()
    }

    fn platform_member(attr: TokenStream, item: TokenStream) -> Option<String> {
        let mut errors = Vec::new();
        let args = crate::attr::parse(attr, &mut errors);
        let client = parse(item, &args, &mut errors)?;
        assert!(errors.is_empty(), "{errors:?}");
        client.platform.map(|p| member_text(&p.member))
    }

    #[test]
    fn the_platform_field_is_found_by_mark_by_name_by_type_or_by_convention() {
        let marked = quote!(
            struct Bot {
                a: u8,
                #[nova(platform)]
                venue: Venue,
            }
        );
        assert_eq!(platform_member(quote!(), marked).as_deref(), Some("venue"));
        let named = quote!(
            struct Bot {
                a: Venue,
                b: Venue,
            }
        );
        assert_eq!(
            platform_member(quote!(platform_field = b), named).as_deref(),
            Some("b")
        );
        let typed = quote!(
            struct Bot(u8, crate::venues::Venue);
        );
        assert_eq!(
            platform_member(quote!(platform = Venue), typed).as_deref(),
            Some("1")
        );
        assert_eq!(
            platform_member(quote!(platform = Venue), quote!(impl Bot {})).as_deref(),
            Some("platform")
        );
        assert_eq!(
            platform_member(
                quote!(),
                quote!(
                    struct Bot {
                        venue: Venue,
                    }
                )
            ),
            None
        );
    }

    #[test]
    fn platform_mistakes_are_reported() {
        let cases = [
            (
                quote!(platform = Venue),
                quote!(
                    struct Bot {
                        a: u8,
                    }
                ),
                "no field of `Bot` holds the platform adapter `Venue`",
            ),
            (
                quote!(platform = Venue),
                quote!(
                    struct Bot {
                        a: Venue,
                        b: Venue,
                    }
                ),
                "several fields of `Bot` have type `Venue`",
            ),
            (
                quote!(platform_field = c),
                quote!(
                    struct Bot {
                        a: Venue,
                    }
                ),
                "`Bot` has no field `c`",
            ),
            (
                quote!(),
                quote!(
                    struct Bot {
                        #[nova(platform)]
                        a: Venue,
                        #[nova(platform)]
                        b: Venue,
                    }
                ),
                "only one field can hold the platform adapter",
            ),
            (
                quote!(),
                quote!(
                    struct Bot {
                        #[nova(adapter)]
                        a: Venue,
                    }
                ),
                "unknown option in `#[nova(...)]`",
            ),
            (
                quote!(platform_field = b),
                quote!(
                    struct Bot {
                        #[nova(platform)]
                        a: Venue,
                        b: Venue,
                    }
                ),
                "`platform_field = b` and `#[nova(platform)]` on `a` name different fields",
            ),
            (
                quote!(platform_field = venue),
                quote!(impl Bot {}),
                "`platform_field` names the field holding the platform adapter: it needs `platform = AdapterType` too",
            ),
        ];
        for (attr, item, want) in cases {
            let got = errors(attr, item);
            assert!(
                got.len() == 1 && got[0].starts_with(want),
                "{got:?} should start with {want:?}"
            );
        }
    }

    #[test]
    fn impl_blocks_are_sorted_and_checked() {
        let mut errs = Vec::new();
        let args = crate::attr::parse(quote!(), &mut errs);
        let item = quote!(
            impl<T> Bot<T>
            where
                T: Send,
            {
                fn handle_message(
                    &mut self,
                    m: Message,
                    ctx: &mut Context<'_>,
                ) -> Result<(), HandlerError> {
                    Ok(())
                }
                fn helper(&self) {}
                type Alias = u8;
            }
        );
        let client = parse(item, &args, &mut errs).unwrap();
        assert!(errs.is_empty());
        assert!(client.override_for("handle_message").is_some());
        assert!(client.override_for("helper").is_none());
        let inherent = client.item_tokens().to_string();
        assert!(
            inherent.contains("fn helper")
                && inherent.contains("type Alias")
                && !inherent.contains("handle_message")
        );
        assert_eq!(client.self_ty.to_string(), "Bot < T >");

        let twice = quote!(impl Bot {
            fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> { None }
            fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> { None }
        });
        assert_eq!(
            errors(quote!(), twice),
            ["the callback `generate_heartbeat` is written twice"]
        );
        let got = errors(quote!(), quote!(impl Clone for Bot {}));
        assert!(got[0].contains("not on a trait impl"), "{got:?}");
    }
}
