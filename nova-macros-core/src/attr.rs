//! Parsing the attribute's arguments: `strategy = "..."`, `platform = Type`,
//! `platform_field = name`, `manual(Trait, ...)`, `crate = "path"`.
//!
//! Parsing never stops at the first problem: every unknown or duplicate key and every bad value
//! is collected, each spanned on the user's tokens, and whatever was valid is kept so that the
//! fallback can still emit sensible code.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Ident, LitStr, Token};

use crate::table::{Behaviour, Strategy, quoted_list};

/// The keys the attribute accepts, with how each is written (for error messages).
const KEYS: &[(&str, &str)] = &[
    ("strategy", "strategy = \"always_reconnect\""),
    ("platform", "platform = MyAdapter"),
    ("platform_field", "platform_field = adapter"),
    ("manual", "manual(AuthHandler, ...)"),
    ("crate", "crate = \"::my_nova\""),
];

/// The parsed arguments.
#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) strategy: Option<(&'static Strategy, Span)>,
    pub(crate) platform: Option<syn::Type>,
    pub(crate) platform_field: Option<syn::Member>,
    pub(crate) manual: Vec<(Behaviour, Span)>,
    pub(crate) krate: syn::Path,
    /// Whether `crate = "..."` was given and understood; when it was given but not understood,
    /// the fallback emits no code that names the crate.
    pub(crate) krate_ok: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            strategy: None,
            platform: None,
            platform_field: None,
            manual: Vec::new(),
            krate: syn::parse_quote!(::nova),
            krate_ok: true,
        }
    }
}

impl Args {
    /// Whether `behaviour` is written by hand.
    pub(crate) fn is_manual(&self, behaviour: Behaviour) -> bool {
        self.manual.iter().any(|(b, _)| *b == behaviour)
    }
}

/// Parses the attribute's arguments, collecting every error into `errors`.
pub(crate) fn parse(attr: TokenStream, errors: &mut Vec<syn::Error>) -> Args {
    let mut args = Args::default();
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        let mut seen: Vec<String> = Vec::new();
        while !input.is_empty() {
            let key = Ident::parse_any(input)?;
            let name = key.to_string();
            if seen.contains(&name) {
                errors.push(syn::Error::new(
                    key.span(),
                    format!("duplicate key `{name}`"),
                ));
                skip_value(input)?;
            } else {
                seen.push(name.clone());
                match name.as_str() {
                    "strategy" => parse_strategy(input, &key, &mut args, errors)?,
                    "platform" => {
                        if let Some(ty) = value(input, &key, errors, |i| i.parse::<syn::Type>())? {
                            args.platform = Some(ty);
                        }
                    }
                    "platform_field" => {
                        if let Some(m) = value(input, &key, errors, |i| i.parse::<syn::Member>())? {
                            args.platform_field = Some(m);
                        }
                    }
                    "manual" => parse_manual(input, &key, &mut args, errors)?,
                    "crate" => parse_crate(input, &key, &mut args, errors)?,
                    _ => {
                        let expected = quoted_list(KEYS.iter().map(|(k, _)| *k));
                        errors.push(syn::Error::new(
                            key.span(),
                            format!("unknown key `{name}`, expected one of {expected}"),
                        ));
                        skip_value(input)?;
                    }
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(attr) {
        errors.push(e);
    }
    args
}

/// Skips a key's value: everything up to the next top-level comma.
fn skip_value(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// Parses `= value` with `f`; a missing `=` or a value `f` rejects is recorded and skipped.
fn value<T>(
    input: ParseStream<'_>,
    key: &Ident,
    errors: &mut Vec<syn::Error>,
    f: impl FnOnce(ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<Option<T>> {
    let usage = KEYS.iter().find(|(k, _)| *key == k).map_or("", |(_, u)| u);
    if !input.peek(Token![=]) {
        errors.push(syn::Error::new(key.span(), format!("expected `{usage}`")));
        skip_value(input)?;
        return Ok(None);
    }
    input.parse::<Token![=]>()?;
    // Parse the value on its own so that an error inside it does not lose the rest.
    let mut tokens = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        tokens.extend([input.parse::<TokenTree>()?]);
    }
    if tokens.is_empty() {
        errors.push(syn::Error::new(
            key.span(),
            format!("expected a value: `{usage}`"),
        ));
        return Ok(None);
    }
    match f.parse2(tokens.clone()) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            errors.push(syn::Error::new_spanned(
                tokens,
                format!("expected `{usage}`: {e}"),
            ));
            Ok(None)
        }
    }
}

fn parse_strategy(
    input: ParseStream<'_>,
    key: &Ident,
    args: &mut Args,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<()> {
    let Some(lit) = value(input, key, errors, |i| i.parse::<LitStr>())? else {
        return Ok(());
    };
    let name = lit.value();
    match Strategy::find(&name) {
        Some(s) => args.strategy = Some((s, lit.span())),
        None => {
            let hint = Strategy::similar(&name)
                .map(|s| format!("; did you mean `{}`?", s.name))
                .unwrap_or_default();
            errors.push(syn::Error::new(
                lit.span(),
                format!(
                    "unknown strategy `{name}`, expected one of {}{hint}",
                    Strategy::list()
                ),
            ));
        }
    }
    Ok(())
}

fn parse_manual(
    input: ParseStream<'_>,
    key: &Ident,
    args: &mut Args,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<()> {
    if !input.peek(syn::token::Paren) {
        errors.push(syn::Error::new(
            key.span(),
            format!(
                "expected `manual(...)` with the traits you implement by hand, from {}",
                Behaviour::list()
            ),
        ));
        return skip_value(input);
    }
    let content;
    syn::parenthesized!(content in input);
    let names = content.parse_terminated(syn::Path::parse_mod_style, Token![,])?;
    for path in names {
        let span = path.span();
        let last = path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default();
        match Behaviour::from_trait_name(&last) {
            Some(b) if args.is_manual(b) => {
                errors.push(syn::Error::new_spanned(
                    &path,
                    format!("`{last}` is listed twice in `manual(...)`"),
                ));
            }
            Some(b) => args.manual.push((b, span)),
            None => errors.push(syn::Error::new_spanned(
                &path,
                format!(
                    "unknown behaviour trait `{last}` in `manual(...)`, expected one of {}",
                    Behaviour::list()
                ),
            )),
        }
    }
    Ok(())
}

fn parse_crate(
    input: ParseStream<'_>,
    key: &Ident,
    args: &mut Args,
    errors: &mut Vec<syn::Error>,
) -> syn::Result<()> {
    args.krate_ok = false;
    let Some(lit) = value(input, key, errors, |i| i.parse::<LitStr>())? else {
        return Ok(());
    };
    match lit.parse_with(syn::Path::parse_mod_style) {
        Ok(mut path) => {
            // Paths in the expansion keep the literal's span, so they resolve where it was written.
            for seg in &mut path.segments {
                seg.ident.set_span(lit.span());
            }
            args.krate = path;
            args.krate_ok = true;
        }
        Err(_) => errors.push(syn::Error::new(
            lit.span(),
            format!(
                "`crate` must be a path to the nova crate, like `\"::nova\"`, not `{:?}`",
                lit.value()
            ),
        )),
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse_ok(tokens: TokenStream) -> Args {
        let mut errors = Vec::new();
        let args = parse(tokens, &mut errors);
        assert!(
            errors.is_empty(),
            "{:?}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        args
    }

    fn parse_err(tokens: TokenStream) -> Vec<String> {
        let mut errors = Vec::new();
        parse(tokens, &mut errors);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_key() {
        let a = parse_ok(quote!(
            strategy = "fail_fast", platform = my::Adapter<u8>, platform_field = adapter,
            manual(AuthHandler, nova::HeartbeatHandler), crate = "::renamed::nova",
        ));
        assert_eq!(a.strategy.map(|(s, _)| s.name), Some("fail_fast"));
        assert!(a.platform.is_some());
        assert!(matches!(a.platform_field, Some(syn::Member::Named(ref i)) if i == "adapter"));
        assert!(a.is_manual(Behaviour::Auth) && a.is_manual(Behaviour::Heartbeat));
        assert!(!a.is_manual(Behaviour::Message));
        let krate = &a.krate;
        assert_eq!(
            quote!(#krate).to_string().replace(' ', ""),
            "::renamed::nova"
        );
        assert_eq!(parse_ok(quote!()).krate, syn::parse_quote!(::nova));
        assert!(matches!(
            parse_ok(quote!(platform_field = 0)).platform_field,
            Some(syn::Member::Unnamed(_))
        ));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = parse_err(quote!(
            strategy = "always",
            retries = 3,
            strategy = "echo",
            manual(Auth, AuthHandler, AuthHandler),
            crate = "not a path",
            platform
        ));
        assert_eq!(
            errors,
            [
                "unknown strategy `always`, expected one of `default`, `always_reconnect`, `fail_fast`, `log_and_continue`, `echo`",
                "unknown key `retries`, expected one of `strategy`, `platform`, `platform_field`, `manual`, `crate`",
                "duplicate key `strategy`",
                "unknown behaviour trait `Auth` in `manual(...)`, expected one of `ConnectionHandler`, `MessageHandler`, `SubscriptionHandler`, `AuthHandler`, `ErrorHandler`, `HeartbeatHandler`, `RateLimitHandler`",
                "`AuthHandler` is listed twice in `manual(...)`",
                "`crate` must be a path to the nova crate, like `\"::nova\"`, not `\"not a path\"`",
                "expected `platform = MyAdapter`",
            ]
        );
    }

    #[test]
    fn near_misses_get_a_hint_and_wrong_shapes_say_how_to_write_the_key() {
        assert_eq!(
            parse_err(quote!(strategy = "AlwaysReconnect")),
            [
                "unknown strategy `AlwaysReconnect`, expected one of `default`, `always_reconnect`, `fail_fast`, `log_and_continue`, `echo`; did you mean `always_reconnect`?"
            ]
        );
        let e = parse_err(quote!(strategy = always_reconnect));
        assert!(
            e[0].starts_with("expected `strategy = \"always_reconnect\"`"),
            "{e:?}"
        );
        assert_eq!(parse_err(quote!(manual = AuthHandler)).len(), 1);
        assert_eq!(parse_err(quote!(strategy = "echo" "x")).len(), 1);
    }
}
