//! The `#[on_trigger]` attribute: its argument parser (with the policy checks) and, when the
//! arguments are fine, the rest of the expansion. A panic in a proc macro is a compiler
//! crash for the user, so every input must end in an expansion or in compile errors.
//!
//! Input: UTF-8 text; the first line is what goes between the attribute's parentheses, the
//! rest is the item the attribute is on.
//!
//! The macro's modules (`args`, `policy`, `errors`, `handler`, `emit`) are compiled into
//! the crate that includes this file (the fuzz target by path, or `listener-macros`' own
//! tests), which is why they are named through `crate::`.
//!
//! Properties:
//! - nothing panics: not the lexer's output in the parser, not the policy checks, not the
//!   expansion;
//! - accepted arguments hold only non-empty values;
//! - a refusal's compile errors, and an accepted attribute's registration, are valid Rust
//!   items (what the compiler is handed parses).

use std::str::FromStr;

use proc_macro2::TokenStream;

/// Checks every property on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (args, item) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(args) = TokenStream::from_str(args) else {
        return;
    };
    let parsed = crate::args::parse(args);
    match &parsed {
        Ok(args) => {
            for (key, value) in args.entries() {
                if let Some(value) = value {
                    assert!(!value.value().is_empty(), "`{key}` accepted empty");
                }
            }
        }
        Err(error) => assert_items(error.to_compile_error(), "the compile errors"),
    }
    let Ok(item) = TokenStream::from_str(item) else {
        return;
    };
    match (&parsed, crate::handler::parse(item)) {
        (Ok(args), Ok(handler)) => assert_items(
            crate::emit::registration(args, &handler),
            "the registration",
        ),
        (_, Err(error)) => assert_items(error.to_compile_error(), "the item's compile errors"),
        (Err(_), Ok(_)) => {}
    }
}

/// Panics unless `tokens` parse as a file of items.
fn assert_items(tokens: TokenStream, what: &str) {
    if let Err(e) = syn::parse2::<syn::File>(tokens.clone()) {
        panic!("{what} do not parse as items ({e}): {tokens}");
    }
}
