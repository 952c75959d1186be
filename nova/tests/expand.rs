//! Expansion snapshots of `#[nova::client]`: what the macro writes for each strategy and form,
//! pretty-printed (prettyplease) and compared with the reviewed snapshots in `snapshots/`
//! (insta). Regenerate after an intended change with `INSTA_UPDATE=always cargo test -p nova-ws
//! --test expand` and review the diff.

use proc_macro2::TokenStream;
use quote::quote;

/// Expands and pretty-prints; an expansion that is not a valid file fails the test.
fn expand(attr: TokenStream, item: TokenStream) -> String {
    let out = nova_macros_core::client(attr, item);
    match syn::parse2::<syn::File>(out.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(e) => panic!("the expansion does not parse: {e}\n{out}"),
    }
}

macro_rules! snapshot {
    ($name:ident, ($($attr:tt)*), { $($item:tt)* }) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(expand(quote!($($attr)*), quote!($($item)*)));
        }
    };
}

snapshot!(no_strategy, (), {
    pub struct Plain;
});
snapshot!(always_reconnect, (strategy = "always_reconnect"), {
    pub struct Bot {
        seen: u64,
    }
});
snapshot!(fail_fast, (strategy = "fail_fast"), {
    struct Bot;
});
snapshot!(log_and_continue, (strategy = "log_and_continue"), {
    struct Bot;
});
snapshot!(echo, (strategy = "echo"), {
    struct Bot;
});

snapshot!(
    impl_block_overrides_and_keeps_other_methods,
    (strategy = "fail_fast"),
    {
        impl Bot {
            /// Reconnect at once after a server restart.
            fn handle_disconnect(
                &mut self,
                reason: &DisconnectReason,
                ctx: &Context<'_>,
            ) -> ReconnectDecision {
                ReconnectDecision::Reconnect {
                    after: Duration::ZERO,
                }
            }
            fn generate_heartbeat(&mut self, _ctx: &mut Context<'_>) -> Option<Message> {
                Some(Message::text("ping"))
            }
            pub fn helper(&self) -> u64 {
                self.count
            }
            const LIMIT: u32 = 3;
        }
    }
);

snapshot!(
    platform_on_a_marked_field,
    (strategy = "always_reconnect"),
    {
        struct Bot<T: Send + 'static> {
            #[nova(platform)]
            adapter: Deribit,
            extra: T,
        }
    }
);

snapshot!(
    platform_on_an_impl_block,
    (
        strategy = "always_reconnect",
        platform = Deribit,
        platform_field = venue
    ),
    {
        impl Bot {
            fn handle_message(
                &mut self,
                message: Message,
                ctx: &mut Context<'_>,
            ) -> Result<(), HandlerError> {
                ctx.deliver(message);
                Ok(())
            }
        }
    }
);

snapshot!(
    manual_traits_and_renamed_crate,
    (
        strategy = "echo",
        manual(AuthHandler, ErrorHandler),
        crate = "::my_sdk::nova"
    ),
    {
        #[cfg(feature = "bots")]
        struct Bot;
    }
);

snapshot!(
    fallback_keeps_the_item_and_reports_every_error,
    (strategy = "retry", colour = "red", manual(AuthHandler)),
    {
        impl Bot {
            fn handle_frame(&mut self, frame: Frame, ctx: &mut Context<'_>) -> FrameAction {
                FrameAction::Continue
            }
            fn helper(&self) {}
        }
    }
);

snapshot!(fallback_on_something_else, (strategy = "echo"), {
    enum NotAClient {
        A,
    }
});
