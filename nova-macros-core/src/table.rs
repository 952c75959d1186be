//! The tables every part of the macro reads: the seven behaviours and their callbacks (with the
//! signature each callback must have), and the strategies by name.
//!
//! Signatures are written as Rust source with `__nova::` standing for the facade's `__private`
//! module; [`Callback::signature`] turns that into tokens with absolute paths for the expansion,
//! and [`Callback::display`] into the text error messages show. A unit test checks this table
//! against the traits in `nova-core/src/handler/` so that a new or changed callback cannot be
//! forgotten here.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::visit_mut::VisitMut;

/// One of the seven behaviour traits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Behaviour {
    Connection,
    Message,
    Subscription,
    Auth,
    Error,
    Heartbeat,
    RateLimit,
}

impl Behaviour {
    /// Every behaviour, in the order the expansion writes their impls.
    pub(crate) const ALL: [Behaviour; 7] = [
        Behaviour::Connection,
        Behaviour::Message,
        Behaviour::Subscription,
        Behaviour::Auth,
        Behaviour::Error,
        Behaviour::Heartbeat,
        Behaviour::RateLimit,
    ];

    /// The trait's name in `nova`.
    pub(crate) fn trait_name(self) -> &'static str {
        match self {
            Behaviour::Connection => "ConnectionHandler",
            Behaviour::Message => "MessageHandler",
            Behaviour::Subscription => "SubscriptionHandler",
            Behaviour::Auth => "AuthHandler",
            Behaviour::Error => "ErrorHandler",
            Behaviour::Heartbeat => "HeartbeatHandler",
            Behaviour::RateLimit => "RateLimitHandler",
        }
    }

    /// The behaviour whose trait is called `name`.
    pub(crate) fn from_trait_name(name: &str) -> Option<Behaviour> {
        Behaviour::ALL.into_iter().find(|b| b.trait_name() == name)
    }

    /// Protocol behaviours come from a platform adapter; the others (connection, error) are
    /// policy and come from a strategy.
    pub(crate) fn is_protocol(self) -> bool {
        !matches!(self, Behaviour::Connection | Behaviour::Error)
    }

    /// The trait names, for "expected one of" messages.
    pub(crate) fn list() -> String {
        quoted_list(Behaviour::ALL.iter().map(|b| b.trait_name()))
    }
}

/// A callback of a behaviour trait and the signature it must have.
#[derive(Debug)]
pub(crate) struct Callback {
    pub(crate) behaviour: Behaviour,
    pub(crate) name: &'static str,
    /// The signature, with `__nova::` for paths into the facade.
    pub(crate) sig: &'static str,
}

/// Every callback of the seven traits, in trait order.
#[rustfmt::skip]
pub(crate) const CALLBACKS: &[Callback] = {
    use Behaviour::*;
    const fn cb(behaviour: Behaviour, name: &'static str, sig: &'static str) -> Callback {
        Callback { behaviour, name, sig }
    }
    &[
        cb(Connection, "init", "fn init(&mut self, config: &__nova::ClientConfig) -> Result<(), __nova::HandlerError>"),
        cb(Connection, "handle_connect", "fn handle_connect(&mut self, info: &__nova::ConnectInfo, ctx: &mut __nova::Context<'_>) -> Result<(), __nova::HandlerError>"),
        cb(Connection, "handle_disconnect", "fn handle_disconnect(&mut self, reason: &__nova::DisconnectReason, ctx: &__nova::Context<'_>) -> __nova::ReconnectDecision"),
        cb(Connection, "connect_url", "fn connect_url(&mut self, ctx: &__nova::Context<'_>) -> Option<String>"),
        cb(Connection, "handle_frame", "fn handle_frame(&mut self, frame: &__nova::Frame, ctx: &mut __nova::Context<'_>) -> __nova::FrameAction"),
        cb(Message, "message_type", "fn message_type<'m>(&mut self, message: &'m __nova::Message) -> __nova::MessageType<'m>"),
        cb(Message, "handle_message", "fn handle_message(&mut self, message: __nova::Message, ctx: &mut __nova::Context<'_>) -> Result<(), __nova::HandlerError>"),
        cb(Message, "encode_message", "fn encode_message(&mut self, message: __nova::Message) -> Result<__nova::Message, __nova::HandlerError>"),
        cb(Subscription, "subscribe", "fn subscribe(&mut self, subscription: &__nova::Subscription, options: &__nova::serde_json::Value, id: __nova::RequestId, ctx: &mut __nova::Context<'_>) -> Result<__nova::Message, __nova::HandlerError>"),
        cb(Subscription, "unsubscribe", "fn unsubscribe(&mut self, subscription: &__nova::Subscription, id: __nova::RequestId, ctx: &mut __nova::Context<'_>) -> Result<Option<__nova::Message>, __nova::HandlerError>"),
        cb(Subscription, "handle_subscription_response", "fn handle_subscription_response(&mut self, subscription: &__nova::Subscription, response: &__nova::Message, ctx: &mut __nova::Context<'_>) -> Result<Option<String>, __nova::HandlerError>"),
        cb(Subscription, "stale_after", "fn stale_after(&self, subscription: &__nova::Subscription) -> Option<::core::time::Duration>"),
        cb(Subscription, "sequence", "fn sequence(&self, subscription: &__nova::Subscription, message: &__nova::Message) -> Option<__nova::Sequence>"),
        cb(Subscription, "on_gap", "fn on_gap(&mut self, subscription: &__nova::Subscription, gap: &__nova::Gap, ctx: &mut __nova::Context<'_>) -> __nova::GapAction"),
        cb(Subscription, "handle_backfill_response", "fn handle_backfill_response(&mut self, subscription: &__nova::Subscription, response: &__nova::Message, ctx: &mut __nova::Context<'_>) -> Result<Vec<__nova::Message>, __nova::HandlerError>"),
        cb(Auth, "generate_auth_data", "fn generate_auth_data(&mut self, request: &__nova::AuthRequest, ctx: &mut __nova::Context<'_>) -> Result<Option<__nova::Message>, __nova::HandlerError>"),
        cb(Auth, "handle_auth_response", "fn handle_auth_response(&mut self, response: &__nova::Message, ctx: &mut __nova::Context<'_>) -> __nova::AuthOutcome"),
        cb(Auth, "authenticates_on_connect", "fn authenticates_on_connect(&self) -> bool"),
        cb(Auth, "needs_reauthentication", "fn needs_reauthentication(&self, ctx: &__nova::Context<'_>) -> bool"),
        cb(Error, "handle_error", "fn handle_error(&mut self, error: &__nova::Error, context: &__nova::ErrorContext, ctx: &__nova::Context<'_>) -> __nova::ErrorAction"),
        cb(Error, "should_reconnect", "fn should_reconnect(&mut self, error: &__nova::Error, attempt: u32, ctx: &__nova::Context<'_>) -> __nova::ReconnectDecision"),
        cb(Error, "log_error", "fn log_error(&mut self, error: &__nova::Error, context: &__nova::ErrorContext)"),
        cb(Heartbeat, "configure", "fn configure(&mut self, interval: Option<Duration>) -> Option<Duration>"),
        cb(Heartbeat, "handle_heartbeat", "fn handle_heartbeat(&mut self, message: &__nova::Message, ctx: &mut __nova::Context<'_>) -> Result<(), __nova::HandlerError>"),
        cb(Heartbeat, "next_heartbeat", "fn next_heartbeat(&self) -> Option<Instant>"),
        cb(Heartbeat, "heartbeat_due", "fn heartbeat_due(&mut self, now: Instant, ctx: &mut __nova::Context<'_>) -> Result<(), __nova::HandlerError>"),
        cb(Heartbeat, "generate_heartbeat", "fn generate_heartbeat(&mut self, ctx: &mut __nova::Context<'_>) -> Option<__nova::Message>"),
        cb(RateLimit, "check_rate_limit", "fn check_rate_limit(&mut self, operation: __nova::Operation) -> __nova::RateLimitDecision"),
        cb(RateLimit, "update_rate_limit", "fn update_rate_limit(&mut self, operation: __nova::Operation)"),
        cb(RateLimit, "is_rate_limit_response", "fn is_rate_limit_response(&self, response: &__nova::Message) -> bool"),
        cb(RateLimit, "handle_rate_limited", "fn handle_rate_limited(&mut self, response: &__nova::Message) -> __nova::RateLimitAction"),
    ]
};

impl Callback {
    /// The callback called `name`, if there is one.
    pub(crate) fn find(name: &str) -> Option<&'static Callback> {
        CALLBACKS.iter().find(|c| c.name == name)
    }

    /// The callbacks of one behaviour, in trait order.
    pub(crate) fn of(behaviour: Behaviour) -> impl Iterator<Item = &'static Callback> {
        CALLBACKS.iter().filter(move |c| c.behaviour == behaviour)
    }

    /// The signature as the table writes it (paths still relative to `__nova`).
    pub(crate) fn raw_signature(&self) -> syn::Signature {
        match syn::parse_str::<syn::TraitItemFn>(&format!("{};", self.sig)) {
            Ok(f) => f.sig,
            // The table is checked by unit tests; this cannot happen in a released macro.
            Err(e) => panic!(
                "nova-macros-core: bad signature in the callback table for `{}`: {e}",
                self.name
            ),
        }
    }

    /// The signature with absolute paths: `__nova::X` becomes `<krate>::__private::X`, and the
    /// standard library's `Result`, `Option`, `Duration`, `Instant`, `String` and `Vec` become `::core` and
    /// `::std` paths, so that no name in the user's scope can change what the generated code
    /// means.
    pub(crate) fn signature(&self, krate: &syn::Path) -> syn::Signature {
        let mut sig = self.raw_signature();
        Absolutize { krate }.visit_signature_mut(&mut sig);
        sig
    }

    /// The signature as error messages show it: `fn init(&mut self, config: &ClientConfig) -> ...`.
    pub(crate) fn display(&self) -> String {
        self.sig.replace("__nova::", "")
    }

    /// `ConnectionHandler::handle_disconnect`.
    pub(crate) fn qualified(&self) -> String {
        format!("{}::{}", self.behaviour.trait_name(), self.name)
    }
}

/// Rewrites the table's paths into absolute ones.
struct Absolutize<'a> {
    krate: &'a syn::Path,
}

impl VisitMut for Absolutize<'_> {
    fn visit_path_mut(&mut self, path: &mut syn::Path) {
        syn::visit_mut::visit_path_mut(self, path);
        let first = path.segments.first().map(|s| s.ident.to_string());
        let replacement: Option<TokenStream> = match first.as_deref() {
            Some("__nova") => {
                let krate = self.krate;
                let rest = path.segments.iter().skip(1);
                Some(quote!(#krate::__private #(::#rest)*))
            }
            Some("Result") if path.segments.len() == 1 => Some(prefixed("::core::result", path)),
            Some("Option") if path.segments.len() == 1 => Some(prefixed("::core::option", path)),
            Some("Duration") if path.segments.len() == 1 => Some(prefixed("::core::time", path)),
            Some("Instant") if path.segments.len() == 1 => Some(prefixed("::std::time", path)),
            Some("String") if path.segments.len() == 1 => Some(prefixed("::std::string", path)),
            Some("Vec") if path.segments.len() == 1 => Some(prefixed("::std::vec", path)),
            _ => None,
        };
        if let Some(tokens) = replacement {
            if let Ok(p) = syn::parse2(tokens) {
                *path = p;
            }
        }
    }
}

fn prefixed(prefix: &str, path: &syn::Path) -> TokenStream {
    let prefix: TokenStream = prefix.parse().unwrap_or_default();
    let path = path.to_token_stream();
    quote!(#prefix::#path)
}

/// A strategy of `#[nova::client(strategy = "...")]`.
#[derive(Debug)]
pub(crate) struct Strategy {
    /// The name written in the attribute.
    pub(crate) name: &'static str,
    /// The unit struct in `nova` that implements it; `None` for the trait defaults.
    pub(crate) ty: Option<&'static str>,
    /// The callbacks its impls in `nova-core/src/strategy.rs` define (the seed's
    /// `defoverridable` lists); the expansion forwards exactly these to it.
    pub(crate) callbacks: &'static [&'static str],
}

/// Every strategy. The same table parses the name and lists the valid ones in errors.
pub(crate) const STRATEGIES: &[Strategy] = &[
    Strategy {
        name: "default",
        ty: None,
        callbacks: &[],
    },
    Strategy {
        name: "always_reconnect",
        ty: Some("AlwaysReconnect"),
        callbacks: &["handle_disconnect", "should_reconnect"],
    },
    Strategy {
        name: "fail_fast",
        ty: Some("FailFast"),
        callbacks: &["handle_disconnect", "should_reconnect"],
    },
    Strategy {
        name: "log_and_continue",
        ty: Some("LogAndContinue"),
        callbacks: &["handle_disconnect", "should_reconnect", "log_error"],
    },
    Strategy {
        name: "echo",
        ty: Some("Echo"),
        callbacks: &["handle_frame", "handle_message"],
    },
];

impl Strategy {
    /// The strategy called `name`.
    pub(crate) fn find(name: &str) -> Option<&'static Strategy> {
        STRATEGIES.iter().find(|s| s.name == name)
    }

    /// A strategy whose name differs from `name` only in case, `-` or `_`.
    pub(crate) fn similar(name: &str) -> Option<&'static Strategy> {
        let norm = |s: &str| {
            s.chars()
                .filter(|c| *c != '_' && *c != '-')
                .collect::<String>()
                .to_lowercase()
        };
        let wanted = norm(name);
        STRATEGIES.iter().find(|s| norm(s.name) == wanted)
    }

    /// The valid names, for "expected one of" messages.
    pub(crate) fn list() -> String {
        quoted_list(STRATEGIES.iter().map(|s| s.name))
    }
}

/// `a`, `b`, `c`
pub(crate) fn quoted_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn every_signature_parses_and_names_match() {
        for c in CALLBACKS {
            assert_eq!(c.raw_signature().ident, c.name);
        }
        let names: BTreeSet<_> = CALLBACKS.iter().map(|c| c.name).collect();
        assert_eq!(
            names.len(),
            CALLBACKS.len(),
            "callback names must be unique across traits"
        );
    }

    #[test]
    fn signatures_become_absolute() {
        let krate: syn::Path = syn::parse_quote!(::nova);
        let c = Callback::find("handle_backfill_response").unwrap();
        let sig = c.signature(&krate).to_token_stream().to_string();
        assert_eq!(
            sig,
            "fn handle_backfill_response (& mut self , subscription : & :: nova :: __private :: Subscription , response : & :: nova :: __private :: Message , ctx : & mut :: nova :: __private :: Context < '_ >) -> :: core :: result :: Result < :: std :: vec :: Vec < :: nova :: __private :: Message > , :: nova :: __private :: HandlerError >"
        );
        let c = Callback::find("configure").unwrap();
        assert!(
            c.signature(&krate)
                .to_token_stream()
                .to_string()
                .contains(":: core :: time :: Duration")
        );
        assert_eq!(
            c.display(),
            "fn configure(&mut self, interval: Option<Duration>) -> Option<Duration>"
        );
    }

    #[test]
    fn strategy_names_are_unique_and_similar_names_are_found() {
        let names: BTreeSet<_> = STRATEGIES.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), STRATEGIES.len());
        assert_eq!(
            Strategy::similar("AlwaysReconnect").map(|s| s.name),
            Some("always_reconnect")
        );
        assert_eq!(
            Strategy::similar("fail-fast").map(|s| s.name),
            Some("fail_fast")
        );
        assert!(Strategy::similar("retry").is_none());
    }

    /// Each strategy's callbacks must be exactly the methods its impls in nova-core define.
    #[test]
    fn strategy_callbacks_match_nova_core() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nova-core/src/strategy.rs");
        let file = syn::parse_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut defined: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for item in file.items {
            let syn::Item::Impl(i) = item else { continue };
            if i.trait_.is_none() {
                continue;
            }
            let ty = i.self_ty.to_token_stream().to_string();
            for ii in i.items {
                if let syn::ImplItem::Fn(f) = ii {
                    defined
                        .entry(ty.clone())
                        .or_default()
                        .insert(f.sig.ident.to_string());
                }
            }
        }
        for s in STRATEGIES {
            let Some(ty) = s.ty else { continue };
            let want: BTreeSet<String> = s.callbacks.iter().map(|c| (*c).to_owned()).collect();
            assert_eq!(
                defined.get(ty).cloned().unwrap_or_default(),
                want,
                "callbacks of `{ty}`"
            );
            assert!(s.callbacks.iter().all(|c| Callback::find(c).is_some()));
        }
    }

    /// The table must match the traits in nova-core exactly: same callbacks, same signatures.
    /// When this fails, a trait changed: update `CALLBACKS` (and the snapshots).
    #[test]
    fn table_matches_the_traits_in_nova_core() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../nova-core/src/handler");
        let mut found: BTreeMap<String, (String, syn::Signature)> = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let file = syn::parse_file(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for item in file.items {
                let syn::Item::Trait(t) = item else { continue };
                if Behaviour::from_trait_name(&t.ident.to_string()).is_none() {
                    continue;
                }
                for ti in t.items {
                    if let syn::TraitItem::Fn(f) = ti {
                        found.insert(f.sig.ident.to_string(), (t.ident.to_string(), f.sig));
                    }
                }
            }
        }
        let traits: BTreeSet<_> = found.values().map(|(t, _)| t.clone()).collect();
        assert_eq!(
            traits.len(),
            7,
            "expected the seven behaviour traits in {}",
            dir.display()
        );
        let in_table: BTreeSet<_> = CALLBACKS.iter().map(|c| c.name.to_owned()).collect();
        let in_core: BTreeSet<_> = found.keys().cloned().collect();
        assert_eq!(in_table, in_core, "callbacks in the table vs. in nova-core");
        for c in CALLBACKS {
            let (tr, sig) = &found[c.name];
            assert_eq!(tr, c.behaviour.trait_name(), "trait of `{}`", c.name);
            let mismatch = crate::valid::signature_mismatch(sig, &c.raw_signature());
            assert!(
                mismatch.is_none(),
                "`{}` differs from nova-core: {mismatch:?}",
                c.name
            );
            let names = |s: &syn::Signature| {
                s.inputs
                    .iter()
                    .filter_map(|a| match a {
                        syn::FnArg::Typed(t) => Some(t.pat.to_token_stream().to_string()),
                        syn::FnArg::Receiver(_) => None,
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                names(sig),
                names(&c.raw_signature()),
                "parameter names of `{}`",
                c.name
            );
        }
    }
}
