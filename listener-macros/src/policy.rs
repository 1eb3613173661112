//! The policy keys: `timeout`, `retries`, `retry_delay`, `concurrency`, `sequential_by`.
//!
//! Each value is checked here, when the handler compiles, with the rules the runtime applies
//! to policies given by hand (`listener_core::Handler::timeout` and friends); the checked
//! values become a `listener_core::__private::PolicySpec`.

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use syn::Lit;

/// The policy keys, in the order of the fields of `PolicySpec`.
pub(crate) const POLICY_KEYS: [&str; 5] = [
    "timeout",
    "retries",
    "retry_delay",
    "concurrency",
    "sequential_by",
];

/// The most retries a handler may ask for (`listener_core::policy::MAX_RETRIES`).
const MAX_RETRIES: u32 = 100;

/// The identity fields `sequential_by` may name besides `payload.<path>`
/// (`listener_core::policy::KeyPath`).
const KEY_FIELDS: [&str; 6] = [
    "user_id",
    "connected_account_id",
    "auth_config_id",
    "trigger_id",
    "trigger_slug",
    "toolkit_slug",
];

/// The checked policy keys, each with the span of its value.
#[derive(Default)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct PolicyArgs {
    /// `timeout`, in milliseconds.
    timeout_ms: Option<(u64, Span)>,
    /// `retries`.
    retries: Option<(u32, Span)>,
    /// `retry_delay`, in milliseconds.
    retry_delay_ms: Option<(u64, Span)>,
    /// `concurrency`.
    concurrency: Option<(u64, Span)>,
    /// `sequential_by`, the path as written.
    sequential_by: Option<(String, Span)>,
}

impl PolicyArgs {
    /// Checks and records the value of the policy key `key` (the literal is of the kind the
    /// key takes: the parser made sure).
    pub(crate) fn set(&mut self, key: &str, lit: Lit) -> syn::Result<()> {
        let span = lit.span();
        match (key, &lit) {
            ("timeout", Lit::Str(s)) => {
                self.timeout_ms = Some((duration_ms(key, &s.value(), span)?, span))
            }
            ("retry_delay", Lit::Str(s)) => {
                self.retry_delay_ms = Some((duration_ms(key, &s.value(), span)?, span))
            }
            ("sequential_by", Lit::Str(s)) => {
                let path = s.value();
                check_key_path(&path, span)?;
                self.sequential_by = Some((path, span));
            }
            ("retries", Lit::Int(i)) => {
                let n: u32 = i.base10_parse().ok().filter(|n| *n <= MAX_RETRIES).ok_or_else(|| {
                    syn::Error::new(
                        span,
                        format!("`retries` must be at most {MAX_RETRIES}; a handler that needs more should fail and be redelivered"),
                    )
                })?;
                self.retries = Some((n, span));
            }
            ("concurrency", Lit::Int(i)) => {
                let n: u64 = i
                    .base10_parse()
                    .ok()
                    .filter(|n| *n >= 1 && *n <= u64::from(u32::MAX))
                    .ok_or_else(|| {
                        syn::Error::new(
                        span,
                        "`concurrency` must be at least 1 (the most runs of this handler at once)",
                    )
                    })?;
                self.concurrency = Some((n, span));
            }
            _ => {
                return Err(syn::Error::new(
                    span,
                    format!("unexpected value for `{key}`"),
                ))
            }
        }
        Ok(())
    }

    /// Checks the keys against each other, once all are read.
    pub(crate) fn check_combination(&self) -> syn::Result<()> {
        match (&self.retry_delay_ms, &self.retries) {
            (Some((_, span)), None) => Err(syn::Error::new(
                *span,
                "`retry_delay` has no effect without `retries`: add `retries = N`",
            )),
            _ => Ok(()),
        }
    }

    /// Whether no policy key was given.
    fn is_empty(&self) -> bool {
        self.timeout_ms.is_none()
            && self.retries.is_none()
            && self.retry_delay_ms.is_none()
            && self.concurrency.is_none()
            && self.sequential_by.is_none()
    }

    /// The `::listener_core::__private::PolicySpec` expression: `PolicySpec::NONE` when no
    /// key was given, else the given fields over it.
    pub(crate) fn spec(&self) -> TokenStream {
        let none = quote!(::listener_core::__private::PolicySpec::NONE);
        if self.is_empty() {
            return none;
        }
        let some = |value: Literal| quote!(::core::option::Option::Some(#value));
        let mut fields = Vec::new();
        if let Some((ms, span)) = self.timeout_ms {
            let value = some(spanned(Literal::u64_unsuffixed(ms), span));
            fields.push(quote!(timeout_ms: #value));
        }
        if let Some((n, span)) = self.retries {
            let value = spanned(Literal::u32_unsuffixed(n), span);
            fields.push(quote!(retries: #value));
        }
        if let Some((ms, span)) = self.retry_delay_ms {
            let value = some(spanned(Literal::u64_unsuffixed(ms), span));
            fields.push(quote!(retry_delay_ms: #value));
        }
        if let Some((n, span)) = self.concurrency {
            let value = some(spanned(Literal::u64_unsuffixed(n), span));
            fields.push(quote!(concurrency: #value));
        }
        if let Some((path, span)) = &self.sequential_by {
            let value = some(spanned(Literal::string(path), *span));
            fields.push(quote!(sequential_by: #value));
        }
        quote! {
            ::listener_core::__private::PolicySpec {
                #(#fields,)*
                ..#none
            }
        }
    }
}

/// `literal`, pointing at `span` (the value it was read from).
fn spanned(mut literal: Literal, span: Span) -> Literal {
    literal.set_span(span);
    literal
}

/// A duration in humantime syntax (`"30s"`, `"1m 30s"`, `"250ms"`), in whole milliseconds,
/// at least one.
fn duration_ms(key: &str, text: &str, span: Span) -> syn::Result<u64> {
    let duration = humantime::parse_duration(text).map_err(|e| {
        syn::Error::new(
            span,
            format!("`{text}` is not a duration ({e}); write it like `{key} = \"30s\"`, `\"250ms\"` or `\"1m 30s\"`"),
        )
    })?;
    let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Err(syn::Error::new(
            span,
            format!("`{key}` must be at least 1ms, found `{text}`"),
        ));
    }
    Ok(ms)
}

/// Checks a `sequential_by` path: `payload.<field>[.<field>…]` or an identity field.
fn check_key_path(path: &str, span: Span) -> syn::Result<()> {
    let allowed = || {
        format!(
            "expected `payload.<field>[.<field>…]` or one of {}",
            KEY_FIELDS.join(", ")
        )
    };
    if KEY_FIELDS.contains(&path) {
        return Ok(());
    }
    match path.strip_prefix("payload.") {
        Some(rest) if !rest.split('.').any(str::is_empty) => Ok(()),
        Some(_) => Err(syn::Error::new(
            span,
            format!("`{path}` has an empty segment: {}", allowed()),
        )),
        None => Err(syn::Error::new(
            span,
            format!("`{path}` is not a key path: {}", allowed()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(tokens: TokenStream) -> Lit {
        syn::parse2(tokens).unwrap()
    }

    fn set(key: &str, value: TokenStream) -> Result<PolicyArgs, String> {
        let mut args = PolicyArgs::default();
        args.set(key, lit(value)).map_err(|e| e.to_string())?;
        Ok(args)
    }

    #[test]
    fn durations_are_read_in_humantime_syntax() {
        assert_eq!(
            set("timeout", quote!("30s")).unwrap().timeout_ms.unwrap().0,
            30_000
        );
        assert_eq!(
            set("timeout", quote!("1m 30s"))
                .unwrap()
                .timeout_ms
                .unwrap()
                .0,
            90_000
        );
        assert_eq!(
            set("retry_delay", quote!("250ms"))
                .unwrap()
                .retry_delay_ms
                .unwrap()
                .0,
            250
        );
        let err = set("timeout", quote!("soon")).unwrap_err();
        assert!(err.starts_with("`soon` is not a duration"), "{err}");
        let err = set("timeout", quote!("0s")).unwrap_err();
        assert_eq!(err, "`timeout` must be at least 1ms, found `0s`");
        assert!(set("timeout", quote!("500us")).is_err());
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(set("retries", quote!(2)).unwrap().retries.unwrap().0, 2);
        assert!(set("retries", quote!(101))
            .unwrap_err()
            .contains("at most 100"));
        assert!(set("concurrency", quote!(0))
            .unwrap_err()
            .contains("at least 1"));
        assert_eq!(
            set("concurrency", quote!(4))
                .unwrap()
                .concurrency
                .unwrap()
                .0,
            4
        );
    }

    #[test]
    fn key_paths_are_checked() {
        for ok in [
            "payload.channel",
            "payload.thread.ts",
            "payload.items.0",
            "user_id",
            "connected_account_id",
        ] {
            assert!(set("sequential_by", quote!(#ok)).is_ok(), "{ok}");
        }
        for bad in ["channel", "payload", "payload.", "payload..ts", "meta.user"] {
            let err = set("sequential_by", quote!(#bad)).unwrap_err();
            assert!(err.contains("expected `payload.<field>"), "{bad}: {err}");
        }
    }

    #[test]
    fn retry_delay_needs_retries() {
        let args = set("retry_delay", quote!("1s")).unwrap();
        assert!(args
            .check_combination()
            .unwrap_err()
            .to_string()
            .contains("without `retries`"));
    }

    #[test]
    fn no_policy_is_the_none_constant() {
        let spec = PolicyArgs::default().spec().to_string();
        assert_eq!(
            spec.replace(' ', ""),
            "::listener_core::__private::PolicySpec::NONE"
        );
        let spec = set("retries", quote!(3))
            .unwrap()
            .spec()
            .to_string()
            .replace(' ', "");
        assert!(
            spec.contains("retries:3,..::listener_core::__private::PolicySpec::NONE"),
            "{spec}"
        );
    }
}
