//! Code generation: the registration that follows the (unchanged) handler function.
//!
//! For `#[on_trigger(name = "X")] async fn roast(msg: Payload<M>, bot: State<B>) -> R` the
//! generated item is
//!
//! ```text
//! const _: () = {
//!     #[allow(dead_code)]
//!     fn __on_trigger_checks() {
//!         ::listener_core::__private::assert_extractor::<Payload<M>>();   // at `Payload<M>`
//!         ::listener_core::__private::assert_extractor::<State<B>>();     // at `State<B>`
//!         ::listener_core::__private::assert_output::<R>();               // at `R`
//!     }
//!     ::listener_core::__private::inventory::submit! {
//!         ::listener_core::__private::HandlerDescriptor {
//!             name: "roast",
//!             module_path: ::core::module_path!(),
//!             file: ::core::file!(),
//!             line: ::core::line!(),                                      // at `roast`
//!             filter: ::listener_core::__private::FilterSpec {
//!                 name: ::core::option::Option::Some("X"),
//!                 toolkit: ::core::option::Option::None,
//!                 /* ... every other key ... */
//!             },
//!             policy: ::listener_core::__private::PolicySpec::NONE,                // or the policy keys given
//!             build: || ::listener_core::__private::async_handler::<_, (Payload<M>, State<B>,)>(roast),
//!         }
//!     }
//! };
//! ```
//!
//! The checks are never called; they exist so that the compiler checks each parameter type
//! against `FromEvent` and the return type against `IntoOutcome` separately, with the error
//! reported on the offending type (their calls carry that type's span) rather than on the
//! handler as a whole. Every path is absolute (`::listener_core`, `::core`), so user items
//! named `core`, `Option`, `Some`, ... cannot interfere.
//!
//! `build` names the argument tuple explicitly. The compiler then checks the handler against
//! the one impl of the handler trait for that tuple, so when a parameter is not an extractor
//! (or the return type not an output) its second error, at the attribute, names the offending
//! type too ("`String` cannot be a trigger handler parameter ... required for `fn(Meta,
//! String) {h}` to implement `AsyncHandlerFn<(Meta, String)>`"), instead of only saying that
//! the function is not a handler.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::args::FilterArgs;
use crate::handler::{HandlerFn, Kind};

/// The registration item for `handler` with the filter `args`.
pub(crate) fn registration(args: &FilterArgs, handler: &HandlerFn) -> TokenStream {
    let param_checks = handler.params.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            ::listener_core::__private::assert_extractor::<#ty>();
        }
    });
    let output_check = handler.output.as_ref().map(|ty| {
        quote_spanned! {ty.span()=>
            ::listener_core::__private::assert_output::<#ty>();
        }
    });

    let ident = &handler.ident;
    let params = &handler.params;
    let name = handler.name();
    // `line!()` at the function's name reports the line of the name.
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let filter = filter_spec(args);
    let policy = args.policy.spec();
    let constructor = match handler.kind {
        Kind::Async => Ident::new("async_handler", Span::call_site()),
        Kind::Blocking => Ident::new("blocking_handler", Span::call_site()),
    };

    quote! {
        const _: () = {
            #[allow(dead_code)]
            fn __on_trigger_checks() {
                #(#param_checks)*
                #output_check
            }
            ::listener_core::__private::inventory::submit! {
                ::listener_core::__private::HandlerDescriptor {
                    name: #name,
                    module_path: ::core::module_path!(),
                    file: ::core::file!(),
                    line: #line,
                    filter: #filter,
                    policy: #policy,
                    build: || ::listener_core::__private::#constructor::<_, (#(#params,)*)>(#ident),
                }
            }
        };
    }
}

/// The `::listener_core::__private::FilterSpec { ... }` expression for `args`, one field per key.
fn filter_spec(args: &FilterArgs) -> TokenStream {
    let fields = args.entries().map(|(key, value)| {
        let field = Ident::new(key, Span::call_site());
        match value {
            Some(lit) => quote!(#field: ::core::option::Option::Some(#lit)),
            None => quote!(#field: ::core::option::Option::None),
        }
    });
    quote! {
        ::listener_core::__private::FilterSpec {
            #(#fields,)*
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        let args = crate::args::parse(args).unwrap();
        let handler = crate::handler::parse(item).unwrap();
        registration(&args, &handler).to_string()
    }

    /// Token streams print with spaces between tokens; compare without whitespace.
    fn squash(code: &str) -> String {
        code.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn async_handler_registration() {
        let code = expand(
            quote!(name = "SLACK_RECEIVE_MESSAGE"),
            quote! {
                async fn roast(msg: Payload<SlackMessage>, bot: State<Bot>) -> anyhow::Result<()> {
                    Ok(())
                }
            },
        );
        let expected = quote! {
            const _: () = {
                #[allow(dead_code)]
                fn __on_trigger_checks() {
                    ::listener_core::__private::assert_extractor::<Payload<SlackMessage> >();
                    ::listener_core::__private::assert_extractor::<State<Bot> >();
                    ::listener_core::__private::assert_output::<anyhow::Result<()> >();
                }
                ::listener_core::__private::inventory::submit! {
                    ::listener_core::__private::HandlerDescriptor {
                        name: "roast",
                        module_path: ::core::module_path!(),
                        file: ::core::file!(),
                        line: ::core::line!(),
                        filter: ::listener_core::__private::FilterSpec {
                            name: ::core::option::Option::Some("SLACK_RECEIVE_MESSAGE"),
                            toolkit: ::core::option::Option::None,
                            trigger_id: ::core::option::Option::None,
                            user_id: ::core::option::Option::None,
                            auth_config_id: ::core::option::Option::None,
                            connected_account_id: ::core::option::Option::None,
                        },
                        policy: ::listener_core::__private::PolicySpec::NONE,
                        build: || ::listener_core::__private::async_handler::<_, (Payload<SlackMessage>, State<Bot>,)>(roast),
                    }
                }
            };
        };
        assert_eq!(squash(&code), squash(&expected.to_string()));
    }

    #[test]
    fn blocking_handler_registration() {
        let code = squash(&expand(
            quote!(toolkit = "github", user_id = "default"),
            quote!(
                fn sync_handler(ev: std::sync::Arc<TriggerEvent>) {}
            ),
        ));
        assert!(code.contains("build:||::listener_core::__private::blocking_handler::<_,(std::sync::Arc<TriggerEvent>,)>(sync_handler)"));
        assert!(code.contains("toolkit:::core::option::Option::Some(\"github\")"));
        assert!(code.contains("user_id:::core::option::Option::Some(\"default\")"));
        assert!(code.contains("name:::core::option::Option::None"));
        assert!(!code.contains("assert_output"));
    }

    #[test]
    fn raw_identifiers_keep_their_ident_but_not_their_prefix_in_the_name() {
        let code = squash(&expand(
            TokenStream::new(),
            quote!(
                async fn r#match(ev: Meta) {}
            ),
        ));
        assert!(code.contains("name:\"match\""), "{code}");
        assert!(
            code.contains("async_handler::<_,(Meta,)>(r#match)"),
            "{code}"
        );
    }

    #[test]
    fn every_key_becomes_a_field() {
        let code = squash(&expand(
            quote!(
                name = "n",
                toolkit = "t",
                trigger_id = "ti",
                user_id = "u",
                auth_config_id = "ac",
                connected_account_id = "ca"
            ),
            quote!(
                async fn h() {}
            ),
        ));
        for (key, value) in [
            ("name", "n"),
            ("toolkit", "t"),
            ("trigger_id", "ti"),
            ("user_id", "u"),
            ("auth_config_id", "ac"),
            ("connected_account_id", "ca"),
        ] {
            assert!(
                code.contains(&format!("{key}:::core::option::Option::Some(\"{value}\")")),
                "{key}: {code}"
            );
        }
        assert!(!code.contains("Option::None"));
    }

    #[test]
    fn policy_keys_become_a_policy_spec_over_none() {
        let code = squash(&expand(
            quote!(
                name = "n",
                timeout = "1m 30s",
                retries = 2,
                retry_delay = "250ms",
                concurrency = 4,
                sequential_by = "payload.channel"
            ),
            quote!(
                async fn h() {}
            ),
        ));
        let expected = squash(
            &quote! {
                policy: ::listener_core::__private::PolicySpec {
                    timeout_ms: ::core::option::Option::Some(90000),
                    retries: 2,
                    retry_delay_ms: ::core::option::Option::Some(250),
                    concurrency: ::core::option::Option::Some(4),
                    sequential_by: ::core::option::Option::Some("payload.channel"),
                    ..::listener_core::__private::PolicySpec::NONE
                },
            }
            .to_string(),
        );
        assert!(code.contains(&expected), "{code}");
    }
}
