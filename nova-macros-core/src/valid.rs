//! Checking a callback the user wrote against the signature the table says it must have.
//!
//! Types are compared by shape, not by spelling: references and their mutability, the last
//! segment of each path and its type arguments, tuples. So `&Context`, `&Context<'_>` and
//! `&nova::Context<'_>` are all the `&Context<'_>` the trait wants; lifetimes are ignored (the
//! compiler checks them). A mismatch is reported on the user's own tokens, with the expected
//! signature in the message.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{FnArg, GenericArgument, PathArguments, ReturnType, Signature, Type};

/// What is wrong with `user` compared to `expected`, and the user's tokens to point at (a
/// range: `syn::Error::new_spanned` marks all of it on stable too); `None` when it fits.
pub(crate) fn signature_mismatch(
    user: &Signature,
    expected: &Signature,
) -> Option<(TokenStream, String)> {
    if let Some(a) = &user.asyncness {
        if expected.asyncness.is_none() {
            return Some((a.to_token_stream(), "callbacks are not `async`: they decide and return at once, and queue output on `ctx`".into()));
        }
    } else if expected.asyncness.is_some() {
        return Some((
            user.fn_token.to_token_stream(),
            "this callback is `async`".into(),
        ));
    }
    if let Some(c) = &user.constness {
        return Some((c.to_token_stream(), "a callback cannot be `const`".into()));
    }
    if let Some(u) = &user.unsafety {
        return Some((u.to_token_stream(), "a callback cannot be `unsafe`".into()));
    }
    if let Some(abi) = &user.abi {
        return Some((
            abi.to_token_stream(),
            "a callback cannot have an `extern` ABI".into(),
        ));
    }
    if !user.generics.params.is_empty() || user.generics.where_clause.is_some() {
        return Some((
            user.generics.to_token_stream(),
            "a callback has no generic parameters".into(),
        ));
    }
    if let Some(v) = &user.variadic {
        return Some((v.to_token_stream(), "a callback is not variadic".into()));
    }

    let mut user_inputs = user.inputs.iter();
    let mut expected_inputs = expected.inputs.iter();
    match (user_inputs.next(), expected_inputs.next()) {
        (Some(FnArg::Receiver(u)), Some(FnArg::Receiver(e))) => {
            if !same_type(&u.ty, &e.ty) {
                return Some((
                    u.to_token_stream(),
                    format!("the receiver must be `{}`", receiver_text(e)),
                ));
            }
        }
        (Some(FnArg::Typed(u)), Some(FnArg::Receiver(e))) => {
            return Some((
                u.to_token_stream(),
                format!("the first parameter must be `{}`", receiver_text(e)),
            ));
        }
        (None, Some(FnArg::Receiver(e))) => {
            return Some((
                at(user.paren_token.span.join()),
                format!("missing `{}`", receiver_text(e)),
            ));
        }
        // The table's callbacks all take `self`.
        _ => {
            return Some((
                user.ident.to_token_stream(),
                "unexpected callback shape".into(),
            ));
        }
    }
    let user_rest: Vec<_> = user_inputs.collect();
    let expected_rest: Vec<_> = expected_inputs.collect();
    if user_rest.len() != expected_rest.len() {
        let span = user_rest
            .get(expected_rest.len())
            .map_or(at(user.paren_token.span.join()), |a| a.to_token_stream());
        return Some((
            span,
            format!(
                "expected {} parameter{} after `self`, found {}",
                expected_rest.len(),
                plural(expected_rest.len()),
                user_rest.len()
            ),
        ));
    }
    for (u, e) in user_rest.iter().zip(&expected_rest) {
        let (FnArg::Typed(u), FnArg::Typed(e)) = (u, e) else {
            return Some((
                u.to_token_stream(),
                "`self` can only be the first parameter".into(),
            ));
        };
        if !same_type(&u.ty, &e.ty) {
            let name = e.pat.to_token_stream().to_string();
            return Some((
                u.ty.to_token_stream(),
                format!("the parameter `{name}` must be `{}`", type_text(&e.ty)),
            ));
        }
    }
    if !same_return(&user.output, &expected.output) {
        let span = match &user.output {
            ReturnType::Type(_, ty) => ty.to_token_stream(),
            ReturnType::Default => at(user.paren_token.span.join()),
        };
        let wanted = match &expected.output {
            ReturnType::Type(_, ty) => format!("must return `{}`", type_text(ty)),
            ReturnType::Default => "returns nothing".to_owned(),
        };
        return Some((span, format!("this callback {wanted}")));
    }
    None
}

/// One token carrying `span`, for spans that are not tokens (a parenthesis pair).
fn at(span: Span) -> TokenStream {
    quote::quote_spanned!(span=> ())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn receiver_text(r: &syn::Receiver) -> String {
    if r.colon_token.is_none() {
        clean(&r.to_token_stream().to_string())
    } else {
        format!("self: {}", type_text(&r.ty))
    }
}

fn same_return(a: &ReturnType, b: &ReturnType) -> bool {
    let unit: Type = syn::parse_quote!(());
    let ty = |r: &ReturnType| match r {
        ReturnType::Default => unit.clone(),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    same_type(&ty(a), &ty(b))
}

/// Whether two types have the same shape (see the module docs).
pub(crate) fn same_type(a: &Type, b: &Type) -> bool {
    match (ungroup(a), ungroup(b)) {
        (Type::Reference(x), Type::Reference(y)) => {
            x.mutability.is_some() == y.mutability.is_some() && same_type(&x.elem, &y.elem)
        }
        (Type::Path(x), Type::Path(y)) => {
            if x.qself.is_some() || y.qself.is_some() {
                return x.to_token_stream().to_string() == y.to_token_stream().to_string();
            }
            match (x.path.segments.last(), y.path.segments.last()) {
                (Some(s), Some(t)) => s.ident == t.ident && same_args(&s.arguments, &t.arguments),
                _ => false,
            }
        }
        (Type::Tuple(x), Type::Tuple(y)) => {
            x.elems.len() == y.elems.len()
                && x.elems.iter().zip(&y.elems).all(|(s, t)| same_type(s, t))
        }
        (Type::Slice(x), Type::Slice(y)) => same_type(&x.elem, &y.elem),
        (x, y) => x.to_token_stream().to_string() == y.to_token_stream().to_string(),
    }
}

fn ungroup(t: &Type) -> &Type {
    match t {
        Type::Group(g) => ungroup(&g.elem),
        Type::Paren(p) => ungroup(&p.elem),
        t => t,
    }
}

fn same_args(a: &PathArguments, b: &PathArguments) -> bool {
    let types = |p: &PathArguments| -> Vec<Type> {
        match p {
            PathArguments::AngleBracketed(ab) => ab
                .args
                .iter()
                .filter_map(|g| match g {
                    GenericArgument::Type(t) => Some(t.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let (x, y) = (types(a), types(b));
    x.len() == y.len() && x.iter().zip(&y).all(|(s, t)| same_type(s, t))
}

/// A type as error messages show it: `&mut Context<'_>`, with the table's `__nova::` removed.
pub(crate) fn type_text(ty: &Type) -> String {
    clean(&ty.to_token_stream().to_string())
}

fn clean(s: &str) -> String {
    let mut s = s
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&");
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        ("( )", "()"),
    ] {
        s = s.replace(from, to);
    }
    s.replace("__nova::", "")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::table::Callback;

    fn check(name: &str, user: &str) -> Option<String> {
        let user: syn::TraitItemFn = syn::parse_str(&format!("{user};")).unwrap();
        let expected = Callback::find(name).unwrap().raw_signature();
        signature_mismatch(&user.sig, &expected).map(|(_, m)| m)
    }

    #[test]
    fn spelling_does_not_matter() {
        for sig in [
            "fn handle_disconnect(&mut self, reason: &DisconnectReason, ctx: &Context<'_>) -> ReconnectDecision",
            "fn handle_disconnect(&mut self, _: &nova::DisconnectReason, ctx: &::nova::Context) -> nova::ReconnectDecision",
            "fn handle_disconnect(self: &mut Self, r: &DisconnectReason, c: &Context<'static>) -> ReconnectDecision",
        ] {
            assert_eq!(check("handle_disconnect", sig), None, "{sig}");
        }
        assert_eq!(
            check(
                "log_error",
                "fn log_error(&mut self, e: &Error, c: &ErrorContext) -> ()"
            ),
            None
        );
        assert_eq!(
            check(
                "unsubscribe",
                "fn unsubscribe(&mut self, s: &Subscription, id: RequestId, c: &mut Context) -> Result<Option<Message>, HandlerError>"
            ),
            None
        );
    }

    #[test]
    fn mismatches_are_described() {
        let cases = [
            (
                "handle_disconnect",
                "fn handle_disconnect(&self, r: &DisconnectReason, c: &Context<'_>) -> ReconnectDecision",
                "the receiver must be `&mut self`",
            ),
            (
                "handle_disconnect",
                "fn handle_disconnect(&mut self, r: DisconnectReason, c: &Context<'_>) -> ReconnectDecision",
                "the parameter `reason` must be `&DisconnectReason`",
            ),
            (
                "handle_disconnect",
                "fn handle_disconnect(&mut self, r: &DisconnectReason) -> ReconnectDecision",
                "expected 2 parameters after `self`, found 1",
            ),
            (
                "handle_disconnect",
                "fn handle_disconnect(&mut self, r: &DisconnectReason, c: &Context<'_>)",
                "this callback must return `ReconnectDecision`",
            ),
            (
                "handle_frame",
                "fn handle_frame(&mut self, f: &Frame, c: &Context<'_>) -> FrameAction",
                "the parameter `ctx` must be `&mut Context<'_>`",
            ),
            (
                "handle_message",
                "async fn handle_message(&mut self, m: Message, c: &mut Context<'_>) -> Result<(), HandlerError>",
                "callbacks are not `async`: they decide and return at once, and queue output on `ctx`",
            ),
            (
                "generate_heartbeat",
                "fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<String>",
                "this callback must return `Option<Message>`",
            ),
            (
                "update_rate_limit",
                "fn update_rate_limit(&mut self, o: Operation) -> bool",
                "this callback returns nothing",
            ),
            (
                "message_type",
                "fn message_type(m: &Message) -> MessageType",
                "the first parameter must be `&self`",
            ),
            (
                "generate_heartbeat",
                "fn generate_heartbeat<T>(&mut self) -> Option<Message>",
                "a callback has no generic parameters",
            ),
        ];
        for (name, sig, want) in cases {
            assert_eq!(check(name, sig).as_deref(), Some(want), "{sig}");
        }
    }
}
