//! The `#[on_trigger]` attribute macro of `listener-core`.
//!
//! Do not depend on this crate directly: use it through its re-export,
//! `listener_core::on_trigger` (also in `listener_core::prelude`). The generated code names
//! `::listener_core`, so the crate using the macro must depend on `listener-core` under that
//! name.
//!
//! # What the macro does
//!
//! `#[on_trigger(...)]` turns a free function into a *registered trigger handler*. It only
//! **describes** the handler; extracting arguments, filtering events and running the handler
//! is done by the runtime in `listener-core`. The expansion is:
//!
//! 1. the function itself, unchanged (attributes, docs and visibility included), so it can
//!    still be called and unit-tested like any other function;
//! 2. an anonymous `const _: () = { ... };` holding
//!    - a compile-time check, per parameter, that its type is an extractor
//!      (`listener_core::FromEvent`), and one that the declared return type is a valid handler
//!      output (`listener_core::IntoOutcome`: `()` or `Result<(), E>` with `E: Display`). Each
//!      check is spanned at the type it checks, so a type that does not fit is reported right
//!      there, with the explanation from the trait's `#[diagnostic::on_unimplemented]`;
//!    - an `inventory::submit!` of a `listener_core::HandlerDescriptor` with the function's
//!      name, `module_path!()`, `file!()`, the line of the function's name, the
//!      `listener_core::FilterSpec` built from the attribute's keys, and a `build` function
//!      that wraps the handler as an async handler (for an `async fn`, or a `fn` returning
//!      `impl Future`) or as a blocking handler (for a plain `fn`, run on the blocking pool).
//!
//! The listener collects every submitted descriptor at start-up, so handlers need no manual
//! registration, wherever they are defined in the crate graph.
//!
//! # Keys
//!
//! All keys are optional; each may be given at most once. The filter keys take a non-empty
//! string literal. An event is dispatched to the handler when it matches **every** filter
//! key given (the runtime compares case-insensitively);
//! `#[on_trigger]` (or `#[on_trigger()]`) without keys receives every event.
//!
//! | key                    | matches the event's ...                          |
//! |------------------------|--------------------------------------------------|
//! | `name`                 | trigger slug (or V3 lifecycle type), e.g. `"SLACK_RECEIVE_MESSAGE"` |
//! | `toolkit`              | toolkit slug, e.g. `"github"`                    |
//! | `trigger_id`           | trigger instance id                              |
//! | `user_id`              | user id                                          |
//! | `auth_config_id`       | auth config id                                   |
//! | `connected_account_id` | connected account id                             |
//!
//! The policy keys (see `listener_core::policy`) set how the handler's runs are scheduled,
//! checked when the handler compiles:
//!
//! | key             | value | meaning |
//! |-----------------|-------|---------|
//! | `timeout`       | a duration string, humantime syntax: `"30s"`, `"1m 30s"`, `"250ms"` | each attempt's time limit, instead of the listener's |
//! | `retries`       | an integer, at most 100 | run a failed attempt again this many times |
//! | `retry_delay`   | a duration string (needs `retries`) | the delay before the first retry (default 200 ms), doubling, with jitter, capped at 30 s |
//! | `concurrency`   | an integer, at least 1 | at most this many runs of the handler at once |
//! | `sequential_by` | `"payload.<path>"`, or `"user_id"`, `"connected_account_id"`, `"auth_config_id"`, `"trigger_id"`, `"trigger_slug"`, `"toolkit_slug"` | runs of events with the same value there run one at a time, in arrival order |
//!
//! Applying the attribute more than once to a function registers it once per attribute.
//!
//! # Compile errors
//!
//! The macro rejects, with an error at the offending tokens:
//! - an unknown key (the message lists the valid keys), a key given twice, a value that is not
//!   a literal of the key's kind (constants, expressions, a key without value) or that is
//!   empty; a policy value out of its range (a duration that does not parse or is zero,
//!   `retries` over 100, `concurrency = 0`, a `sequential_by` path that is not one),
//!   `retry_delay` without `retries`;
//! - an item that is not a free function, and methods (a `self` parameter);
//! - generic functions (type, lifetime or const parameters, a `where` clause, `impl Trait`
//!   parameters), `unsafe fn`, `extern` functions and variadic functions;
//! - more parameters than the runtime supports (eight);
//! - a signature nesting deeper than 64 levels of brackets and generics, or longer than 192
//!   tokens (doc comments not counted): past that the parser could overflow the compiler's
//!   stack. Only the signature is parsed, never the body.
//!
//! The compiler itself reports parameters that are not extractors and return types that are
//! not handler outputs, at the offending type (and once more at the attribute, where the
//! handler is registered).
//!
//! A macro cannot see whether a function without `self` sits in an `impl` block: on an
//! associated function the attribute fails with rustc's "`const` items in this context need a
//! name", at the attribute. Handlers must be free functions (in any module, or in a function
//! body).
#![warn(clippy::missing_docs_in_private_items)]

mod args;
mod emit;
mod errors;
mod handler;
mod policy;

use proc_macro::TokenStream;

/// Registers a function as a trigger handler.
///
/// ```
/// use listener_core::prelude::*;
///
/// #[derive(serde::Deserialize)]
/// struct SlackMessage {
///     text: String,
/// }
///
/// // Only Slack messages; extractors as parameters; errors are reported by the runtime.
/// #[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
/// async fn on_message(msg: Payload<SlackMessage>) -> anyhow::Result<()> {
///     println!("{}", msg.text);
///     Ok(())
/// }
///
/// // A plain `fn` runs on the blocking thread pool.
/// #[on_trigger(toolkit = "github", user_id = "default")]
/// fn on_github(ev: std::sync::Arc<TriggerEvent>) {}
///
/// // No keys: every event.
/// #[on_trigger]
/// async fn everything(meta: Meta) {}
/// ```
///
/// Filter keys (all optional, string literals, each at most once): `name`, `toolkit`,
/// `trigger_id`, `user_id`, `auth_config_id`, `connected_account_id`. Policy keys:
/// `timeout = "30s"`, `retries = 2`, `retry_delay = "500ms"`, `concurrency = 4`,
/// `sequential_by = "payload.channel"`. The function must be a safe,
/// non-generic free `fn` or `async fn`; every parameter must implement
/// `listener_core::FromEvent` and the return type `listener_core::IntoOutcome`.
///
/// See the [crate documentation](crate) for what the macro emits.
#[proc_macro_attribute]
pub fn on_trigger(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into()).into()
}

/// The macro over `proc_macro2` token streams, so that it can be tested without a compiler.
///
/// The function is always emitted unchanged, even when there are errors: the errors are then
/// emitted instead of the registration, and the rest of the crate keeps compiling against the
/// function (no follow-up "cannot find function" errors).
fn expand(
    args: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    let mut errors = errors::Errors::default();
    let args = errors.take(args::parse(args));
    let handler = errors.take(handler::parse(item.clone()));
    let registration = match (args, handler, errors.finish()) {
        (Some(args), Some(handler), Ok(())) => emit::registration(&args, &handler),
        (_, _, Err(error)) => error.to_compile_error(),
        (_, _, Ok(())) => unreachable!("a missing value has its error"),
    };
    let mut output = item;
    output.extend(registration);
    output
}

/// The `macro_args` fuzz target's property, over this crate's modules.
#[cfg(test)]
#[path = "../../fuzz/props/macro_args.rs"]
mod fuzz_props;

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    /// The fuzz target's committed finds (`tests/fuzz-regressions/macro_args/`) and seeds
    /// (`fuzz/seeds/macro_args/`) still hold its property, without cargo-fuzz.
    #[test]
    fn fuzz_inputs_hold() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for dir in ["tests/fuzz-regressions/macro_args", "fuzz/seeds/macro_args"] {
            if let Ok(entries) = std::fs::read_dir(root.join(dir)) {
                files.extend(entries.map(|e| e.unwrap().path()));
            }
        }
        files.sort();
        assert!(!files.is_empty());
        for file in &files {
            let data = std::fs::read(file).unwrap();
            if std::panic::catch_unwind(|| fuzz_props::check(&data)).is_err() {
                panic!("{} violates the property", file.display());
            }
        }
    }

    #[test]
    fn function_is_kept_and_registration_follows() {
        let item = quote! {
            /// Docs stay.
            #[inline]
            pub(crate) async fn roast(msg: Payload<M>) {}
        };
        let output = expand(quote!(name = "X"), item.clone()).to_string();
        assert!(output.starts_with(&item.to_string()), "{output}");
        assert!(output.contains("inventory :: submit !"), "{output}");
        assert!(!output.contains("compile_error"), "{output}");
    }

    #[test]
    fn errors_of_arguments_and_function_are_combined_and_function_is_kept() {
        let item = quote!(
            unsafe fn h() {}
        );
        let output = expand(quote!(nmae = "X", name = 5), item.clone()).to_string();
        assert!(output.starts_with(&item.to_string()), "{output}");
        assert_eq!(output.matches("compile_error").count(), 3, "{output}");
        assert!(!output.contains("inventory"), "{output}");
    }
}
