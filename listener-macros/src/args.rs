//! Parsing of the attribute's arguments, the part between the parentheses of
//! `#[on_trigger(name = "...", toolkit = "...")]`.
//!
//! The grammar is a comma-separated list of `key = literal` entries, with an optional
//! trailing comma; no entries at all (`#[on_trigger]`, `#[on_trigger()]`) is valid and means
//! "every event". Every key is optional and may be given at most once. The filter keys and
//! the policy keys `timeout`, `retry_delay` and `sequential_by` take a non-empty string
//! literal; `retries` and `concurrency` an integer literal. Constants and expressions are
//! rejected: the macro must read each value, to check it and to put it in a `static`
//! descriptor. What a policy value may be is checked in [`crate::policy`].
//!
//! The parser works on raw token trees instead of `syn::Meta` so that each mistake gets its own
//! message, pointed at the offending token, and so that several mistakes are reported together.

use proc_macro2::{Delimiter, Punct, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::{Lit, LitStr};

use crate::errors::Errors;
use crate::policy::{PolicyArgs, POLICY_KEYS};

/// The keys `#[on_trigger(...)]` accepts, in the order of the fields of
/// `listener_core::FilterSpec` (and of the list in error messages).
pub(crate) const KEYS: [&str; 6] = [
    "name",
    "toolkit",
    "trigger_id",
    "user_id",
    "auth_config_id",
    "connected_account_id",
];

/// Every key: the filter keys ([`KEYS`]), then the policy keys ([`POLICY_KEYS`]).
const ALL_KEYS: [&str; KEYS.len() + POLICY_KEYS.len()] = [
    KEYS[0],
    KEYS[1],
    KEYS[2],
    KEYS[3],
    KEYS[4],
    KEYS[5],
    POLICY_KEYS[0],
    POLICY_KEYS[1],
    POLICY_KEYS[2],
    POLICY_KEYS[3],
    POLICY_KEYS[4],
];

/// Whether `key` takes an integer literal (the others take a string literal).
fn takes_integer(key: &str) -> bool {
    matches!(key, "retries" | "concurrency")
}

/// An example entry for `key`, for messages: `key = "..."` or `key = 2`.
fn example(key: &str) -> String {
    if takes_integer(key) {
        format!("`{key} = 2`")
    } else {
        format!("`{key} = \"...\"`")
    }
}

/// The parsed attribute arguments: for each of the [`KEYS`], the string literal given for
/// it, and the policy keys given.
///
/// The literals keep their spans, so the generated `FilterSpec` points back at the attribute.
#[derive(Default)]
#[cfg_attr(test, derive(Debug))]
pub(crate) struct FilterArgs {
    /// Indexed like [`KEYS`].
    values: [Option<LitStr>; KEYS.len()],
    /// The policy keys.
    pub(crate) policy: PolicyArgs,
}

impl FilterArgs {
    /// The literal given for `key` (one of [`KEYS`]), or `None` when the key was not given.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &str) -> Option<&LitStr> {
        let index = KEYS.iter().position(|known| *known == key)?;
        self.values[index].as_ref()
    }

    /// Every key with the literal given for it, in the order of [`KEYS`].
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&'static str, Option<&LitStr>)> + '_ {
        KEYS.iter()
            .copied()
            .zip(self.values.iter().map(Option::as_ref))
    }
}

/// Parses the attribute's arguments, reporting every mistake found (combined into one
/// [`syn::Error`]) rather than only the first.
pub(crate) fn parse(tokens: TokenStream) -> syn::Result<FilterArgs> {
    let mut args = FilterArgs::default();
    // Which keys were given so far, with a valid value or not, to detect duplicates.
    let mut seen: [bool; ALL_KEYS.len()] = Default::default();
    let mut errors = Errors::default();

    for (entry, comma) in split_entries(tokens) {
        if entry.is_empty() {
            // Only the very end may be empty (nothing given, or a trailing comma).
            if let Some(comma) = comma {
                errors.push(syn::Error::new(
                    comma.span(),
                    "expected `key = \"value\"` before `,`",
                ));
            }
            continue;
        }
        match parse_entry(&entry) {
            Ok((index, key, value)) => {
                if std::mem::replace(&mut seen[index], true) {
                    errors.push(syn::Error::new(
                        key.span(),
                        format!(
                            "duplicate key `{}`: each key may be given at most once",
                            ALL_KEYS[index]
                        ),
                    ));
                    continue;
                }
                match value {
                    Ok(Lit::Str(lit)) if index < KEYS.len() => args.values[index] = Some(lit),
                    Ok(lit) => errors
                        .take(args.policy.set(ALL_KEYS[index], lit))
                        .unwrap_or(()),
                    Err(error) => errors.push(error),
                }
            }
            Err(error) => errors.push(error),
        }
    }
    errors.take(args.policy.check_combination());
    errors.finish().map(|()| args)
}

/// Splits the arguments at their top-level commas: each entry with the comma that ends it
/// (`None` for the last entry, which may be empty).
fn split_entries(tokens: TokenStream) -> Vec<(Vec<TokenTree>, Option<Punct>)> {
    let mut entries = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        match token {
            TokenTree::Punct(punct) if punct.as_char() == ',' => {
                entries.push((std::mem::take(&mut current), Some(punct)));
            }
            other => current.push(other),
        }
    }
    entries.push((current, None));
    entries
}

/// Parses one non-empty `key = value` entry.
///
/// The outer `Err` is an entry whose key is unusable (unknown, or no `key = ...` shape at all);
/// otherwise the key's index in [`KEYS`] and its token come with the result of reading the value,
/// so that a duplicate key is reported as such even when its value is also wrong.
#[allow(clippy::type_complexity)]
fn parse_entry(entry: &[TokenTree]) -> syn::Result<(usize, TokenTree, syn::Result<Lit>)> {
    let key_token = &entry[0];
    let key = match &unwrap_invisible(key_token) {
        TokenTree::Ident(ident) => ident.to_string(),
        TokenTree::Literal(_) => {
            return Err(syn::Error::new(
                key_token.span(),
                format!(
                    "expected `key = \"value\"`, found a bare literal; to filter on the trigger's \
                     name write `name = {key_token}`"
                ),
            ))
        }
        _ => {
            return Err(syn::Error::new(
                key_token.span(),
                format!("expected `key = \"value\"`; valid keys: {}", list_keys()),
            ))
        }
    };
    let Some(index) = ALL_KEYS.iter().position(|known| *known == key) else {
        return Err(unknown_key(key_token.span(), &key));
    };

    let value = match entry.get(1) {
        None => Err(syn::Error::new(
            key_token.span(),
            format!("key `{key}` needs a value: {}", example(&key)),
        )),
        Some(TokenTree::Punct(eq)) if eq.as_char() == '=' && !is_joint_eq(eq, entry.get(2)) => {
            parse_value(&key, eq.span(), &entry[2..])
        }
        Some(other) => Err(syn::Error::new(
            other.span(),
            format!("expected `=` after `{key}`: {}", example(&key)),
        )),
    };
    Ok((index, key_token.clone(), value))
}

/// Whether `eq` is the first half of `==` (or of `=>`), which is not the `=` of an entry.
fn is_joint_eq(eq: &Punct, next: Option<&TokenTree>) -> bool {
    eq.spacing() == proc_macro2::Spacing::Joint && matches!(next, Some(TokenTree::Punct(_)))
}

/// Reads the value of `key`: exactly one literal without suffix, of the kind the key takes
/// (a non-empty string, or an integer).
fn parse_value(key: &str, eq_span: Span, value: &[TokenTree]) -> syn::Result<Lit> {
    let integer = takes_integer(key);
    let kind = if integer {
        "an integer literal"
    } else {
        "a string literal"
    };
    let Some(first) = value.first() else {
        return Err(syn::Error::new(
            eq_span,
            format!(
                "missing value for `{key}`: expected {kind}, like {}",
                example(key)
            ),
        ));
    };
    let lit = match &unwrap_invisible(first) {
        TokenTree::Literal(literal) => syn::parse2::<Lit>(literal.to_token_stream()).ok(),
        _ => None,
    };
    let lit = match lit {
        Some(lit @ Lit::Str(_)) if !integer => lit,
        Some(lit @ Lit::Int(_)) if integer => lit,
        Some(other) => {
            return Err(syn::Error::new(
                first.span(),
                format!(
                    "the value of `{key}` must be {kind}, found {}",
                    describe_lit(&other)
                ),
            ))
        }
        None => {
            let all: TokenStream = value.iter().cloned().collect();
            return Err(syn::Error::new_spanned(
                all,
                format!(
                    "the value of `{key}` must be {kind}, like {}; \
                     constants, paths and expressions are not supported",
                    example(key)
                ),
            ));
        }
    };
    if let Some(extra) = value.get(1) {
        return Err(syn::Error::new(
            extra.span(),
            format!("expected `,` after the value of `{key}`"),
        ));
    }
    let suffix = match &lit {
        Lit::Str(s) => s.suffix(),
        Lit::Int(i) => i.suffix(),
        _ => "",
    };
    if !suffix.is_empty() {
        let plain = kind.trim_start_matches("a ").trim_start_matches("an ");
        return Err(syn::Error::new(
            first.span(),
            format!("the value of `{key}` must be a plain {plain}, without a suffix"),
        ));
    }
    if let Lit::Str(s) = &lit {
        if s.value().is_empty() {
            let advice = if KEYS.contains(&key) {
                format!("an empty filter could never match; omit the key to accept any `{key}`")
            } else {
                format!("omit the key to leave `{key}` unset")
            };
            return Err(syn::Error::new(
                first.span(),
                format!("the value of `{key}` must not be empty: {advice}"),
            ));
        }
    }
    Ok(lit)
}

/// Looks through the invisible (`Delimiter::None`) groups a `macro_rules!` fragment such as
/// `$value:literal` or `$key:ident` may be wrapped in.
fn unwrap_invisible(token: &TokenTree) -> TokenTree {
    let mut token = token.clone();
    loop {
        let TokenTree::Group(group) = &token else {
            return token;
        };
        if group.delimiter() != Delimiter::None {
            return token;
        }
        let mut inner = group.stream().into_iter();
        match (inner.next(), inner.next()) {
            (Some(single), None) => token = single,
            _ => return token,
        }
    }
}

/// Describes a non-string literal for an error message.
fn describe_lit(lit: &Lit) -> &'static str {
    match lit {
        Lit::Str(_) => "a string literal",
        Lit::ByteStr(_) => "a byte string literal",
        Lit::CStr(_) => "a C string literal",
        Lit::Byte(_) => "a byte literal",
        Lit::Char(_) => "a character literal",
        Lit::Int(_) => "an integer literal",
        Lit::Float(_) => "a float literal",
        Lit::Bool(_) => "a boolean literal",
        _ => "a literal of another kind",
    }
}

/// The error for a key that is not one of [`KEYS`], with a suggestion when one is close.
fn unknown_key(span: Span, key: &str) -> syn::Error {
    let suggestion = suggest(key)
        .map(|known| format!(" (did you mean `{known}`?)"))
        .unwrap_or_default();
    syn::Error::new(
        span,
        format!(
            "unknown key `{key}`{suggestion}; valid keys: {}",
            list_keys()
        ),
    )
}

/// The valid key `key` is most likely a misspelling or an abbreviation of, if any.
fn suggest(key: &str) -> Option<&'static str> {
    let key = key.to_ascii_lowercase();
    let close = ALL_KEYS
        .iter()
        .map(|known| (edit_distance(&key, known), *known))
        .filter(|(distance, known)| *distance <= (known.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known);
    // `user` for `user_id`, `auth_config` for `auth_config_id`, ...
    close.or_else(|| {
        ALL_KEYS
            .iter()
            .copied()
            .find(|known| key.len() >= 4 && known.starts_with(key.as_str()))
    })
}

/// The valid keys as a message fragment: "`name`, `toolkit`, ...".
fn list_keys() -> String {
    ALL_KEYS
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The edit distance between two short strings (Levenshtein, with the transposition of two
/// adjacent characters counting as one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // distance[i][j]: between the first i characters of a and the first j of b.
    let mut distance = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in distance.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in distance[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (distance[i - 1][j] + 1)
                .min(distance[i][j - 1] + 1)
                .min(distance[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(distance[i - 2][j - 2] + 1);
            }
            distance[i][j] = best;
        }
    }
    distance[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(tokens: TokenStream) -> Vec<String> {
        match parse(tokens) {
            Ok(args) => panic!("expected an error, got {args:?}"),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn value(args: &FilterArgs, key: &str) -> Option<String> {
        args.get(key).map(LitStr::value)
    }

    #[test]
    fn empty_arguments_accept_everything() {
        let args = parse(TokenStream::new()).unwrap();
        assert!(args.entries().all(|(_, value)| value.is_none()));
    }

    #[test]
    fn parses_one_key() {
        let args = parse(quote!(name = "SLACK_RECEIVE_MESSAGE")).unwrap();
        assert_eq!(
            value(&args, "name").as_deref(),
            Some("SLACK_RECEIVE_MESSAGE")
        );
        assert_eq!(value(&args, "toolkit"), None);
    }

    #[test]
    fn parses_all_keys_in_any_order_with_trailing_comma() {
        let args = parse(quote!(
            connected_account_id = "ca_1",
            user_id = "default",
            toolkit = "github",
            auth_config_id = "ac_1",
            trigger_id = "ti_1",
            name = "GITHUB_COMMIT_EVENT",
        ))
        .unwrap();
        let got: Vec<_> = args
            .entries()
            .map(|(key, lit)| (key, lit.map(LitStr::value)))
            .collect();
        assert_eq!(
            got,
            vec![
                ("name", Some("GITHUB_COMMIT_EVENT".to_owned())),
                ("toolkit", Some("github".to_owned())),
                ("trigger_id", Some("ti_1".to_owned())),
                ("user_id", Some("default".to_owned())),
                ("auth_config_id", Some("ac_1".to_owned())),
                ("connected_account_id", Some("ca_1".to_owned())),
            ]
        );
    }

    #[test]
    fn raw_strings_and_escapes_are_values() {
        let args = parse(quote!(name = r"A_B", toolkit = "git\x68ub")).unwrap();
        assert_eq!(value(&args, "name").as_deref(), Some("A_B"));
        assert_eq!(value(&args, "toolkit").as_deref(), Some("github"));
    }

    #[test]
    fn values_from_macro_rules_fragments_are_accepted() {
        // `$value:literal` and `$key:ident` arrive wrapped in invisible groups.
        let key = proc_macro2::Group::new(Delimiter::None, quote!(name));
        let lit = proc_macro2::Group::new(Delimiter::None, quote!("X"));
        let args = parse(quote!(#key = #lit)).unwrap();
        assert_eq!(value(&args, "name").as_deref(), Some("X"));
    }

    #[test]
    fn unknown_key_lists_valid_keys_and_suggests() {
        let errors = messages(quote!(nmae = "x"));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("unknown key `nmae` (did you mean `name`?)"),
            "{errors:?}"
        );
        assert!(errors[0].contains("`connected_account_id`"), "{errors:?}");

        assert_eq!(suggest("Name"), Some("name"));
        assert_eq!(suggest("toolkits"), Some("toolkit"));
        assert_eq!(suggest("user"), Some("user_id"));
        assert_eq!(suggest("trigger"), Some("trigger_id"));
        assert_eq!(suggest("connected_account"), Some("connected_account_id"));
        assert_eq!(suggest("event"), None);
        assert_eq!(suggest("id"), None);

        let errors = messages(quote!(event = "x"));
        assert!(
            errors[0].starts_with("unknown key `event`; valid keys: `name`, "),
            "{errors:?}"
        );
    }

    #[test]
    fn duplicate_key_is_reported_at_the_second_occurrence() {
        let tokens = quote!(name = "A", toolkit = "b", name = "B");
        let second = tokens.clone().into_iter().nth(8).unwrap();
        assert_eq!(second.to_string(), "name");
        let error = parse(tokens).unwrap_err();
        assert_eq!(
            error.to_string(),
            "duplicate key `name`: each key may be given at most once"
        );
        // Same span as the second `name` token (spans compare by their debug form).
        assert_eq!(
            format!("{:?}", error.span()),
            format!("{:?}", second.span())
        );
    }

    #[test]
    fn duplicate_is_reported_even_if_first_value_was_invalid() {
        let errors = messages(quote!(name = 5, name = "B"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("must be a string literal, found an integer literal"));
        assert!(errors[1].starts_with("duplicate key `name`"));
    }

    #[test]
    fn non_string_values_are_rejected() {
        for (tokens, found) in [
            (quote!(name = 5), "found an integer literal"),
            (quote!(name = 'x'), "found a character literal"),
            (quote!(name = b"x"), "found a byte string literal"),
            (
                quote!(name = true),
                "constants, paths and expressions are not supported",
            ),
            (
                quote!(name = SOME_CONST),
                "constants, paths and expressions are not supported",
            ),
            (
                quote!(name = crate::NAME),
                "constants, paths and expressions are not supported",
            ),
            (
                quote!(name = concat!("a", "b")),
                "constants, paths and expressions are not supported",
            ),
            (
                quote!(name = -1),
                "constants, paths and expressions are not supported",
            ),
        ] {
            let errors = messages(tokens.clone());
            assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
            assert!(
                errors[0].starts_with("the value of `name` must be a string literal"),
                "{errors:?}"
            );
            assert!(errors[0].contains(found), "{tokens}: {errors:?}");
        }
    }

    #[test]
    fn missing_values_are_rejected() {
        assert_eq!(
            messages(quote!(name)),
            ["key `name` needs a value: `name = \"...\"`"]
        );
        assert_eq!(
            messages(quote!(toolkit =)),
            ["missing value for `toolkit`: expected a string literal, like `toolkit = \"...\"`"]
        );
        assert_eq!(
            messages(quote!(toolkit =, name = "x")),
            ["missing value for `toolkit`: expected a string literal, like `toolkit = \"...\"`"]
        );
        assert_eq!(
            messages(quote!(name("x"))),
            ["expected `=` after `name`: `name = \"...\"`"]
        );
        assert_eq!(
            messages(quote!(name == "x")),
            ["expected `=` after `name`: `name = \"...\"`"]
        );
    }

    #[test]
    fn empty_values_are_rejected() {
        let errors = messages(quote!(user_id = ""));
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("the value of `user_id` must not be empty"),
            "{errors:?}"
        );
    }

    #[test]
    fn suffixed_strings_are_rejected() {
        let errors = messages(quote!(name = "x"suffix));
        assert!(errors[0].contains("without a suffix"), "{errors:?}");
    }

    #[test]
    fn missing_comma_is_reported() {
        assert_eq!(
            messages(quote!(name = "a" toolkit = "b")),
            ["expected `,` after the value of `name`"]
        );
    }

    #[test]
    fn bare_literal_and_stray_commas_are_reported() {
        let errors = messages(quote!("SLACK_RECEIVE_MESSAGE"));
        assert!(
            errors[0].contains("write `name = \"SLACK_RECEIVE_MESSAGE\"`"),
            "{errors:?}"
        );
        assert_eq!(
            messages(quote!(,)),
            ["expected `key = \"value\"` before `,`"]
        );
        assert_eq!(
            messages(quote!(name = "a",, toolkit = "b")),
            ["expected `key = \"value\"` before `,`"]
        );
        let errors = messages(quote!(::name = "a"));
        assert!(
            errors[0].starts_with("expected `key = \"value\"`; valid keys:"),
            "{errors:?}"
        );
    }

    #[test]
    fn all_errors_are_reported_together() {
        let errors = messages(quote!(nmae = "a", toolkit = 1, user_id = "", toolkit = "x"));
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("name", "name"), 0);
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("toolkits", "toolkit"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
