//! Validation of the item `#[on_trigger]` is applied to: it must be a safe, non-generic free
//! function (`fn` or `async fn`) of the Rust ABI. What the code generator needs to know about it
//! is collected into a [`HandlerFn`].
//!
//! Whether each parameter is an extractor, and whether the return type is a valid handler
//! output, is not decided here: a macro cannot see traits. The generated code asks the compiler
//! instead (see [`crate::emit`]).

use proc_macro2::{Delimiter, Group, Spacing, Span, TokenStream, TokenTree};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::{FnArg, Ident, Item, ReturnType, Signature, Type, TypeParamBound};

use crate::errors::Errors;

/// The most parameters a handler may have: `listener_core` implements its handler traits for
/// functions of up to this many extractors.
pub(crate) const MAX_PARAMS: usize = 8;

/// How the runtime has to run a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An `async fn` (or a `fn` returning `impl Future`): polled on the async runtime.
    Async,
    /// A plain `fn`: run on the blocking thread pool.
    Blocking,
}

/// A validated handler function.
#[cfg_attr(test, derive(Debug))]
pub(crate) struct HandlerFn {
    /// The function's name, as written (spans point at the definition).
    pub(crate) ident: Ident,
    /// Async or blocking.
    pub(crate) kind: Kind,
    /// The type of every parameter, in order; each must be an extractor.
    pub(crate) params: Vec<Type>,
    /// The declared return type to check as a handler output, if there is one to check:
    /// `None` for no return type (`()`) and for `impl Trait` return types, which cannot be
    /// named outside the function.
    pub(crate) output: Option<Type>,
}

impl HandlerFn {
    /// The handler's name for the descriptor: the function's name without any `r#`.
    pub(crate) fn name(&self) -> String {
        self.ident.unraw().to_string()
    }
}

/// The deepest nesting of a handler's signature the macro parses (delimiters and generic
/// `<…>` together): far beyond any real signature, and shallow enough for `syn`'s recursive
/// parser on the compiler's 8 MiB stack even unoptimized (measured: 127 levels of generics
/// fit, 255 do not). Found by the `macro_args` fuzz target: a parameter type nested 1,600
/// generics deep overflowed the stack, which crashes the compiler.
pub(crate) const MAX_NESTING: usize = 64;

/// The most tokens a handler's signature may have (its body and doc comments not counted).
/// `syn` recurses once per token of a chain such as `&&&…u8` or `fn() -> fn() -> …` without
/// any nesting; unoptimized on an 8 MiB stack, 320 `&` fit and 384 do not (found by the
/// fuzz target too). A real signature, eight parameters with long paths included, has
/// fewer than 150.
pub(crate) const MAX_SIGNATURE_TOKENS: usize = 192;

/// Parses and validates the annotated item, reporting every problem found.
pub(crate) fn parse(item: TokenStream) -> syn::Result<HandlerFn> {
    let item = without_body(item);
    match too_big(item.clone()) {
        Some((span, TooBig::Deep)) => {
            return Err(syn::Error::new(
                span,
                format!(
                    "`#[on_trigger]`: this function's signature nests deeper than \
                     {MAX_NESTING} levels of brackets and generics; name a nested type with \
                     a `type` alias"
                ),
            ))
        }
        Some((span, TooBig::Long)) => {
            return Err(syn::Error::new(
                span,
                format!(
                    "`#[on_trigger]`: this function's signature has more than \
                     {MAX_SIGNATURE_TOKENS} tokens (doc comments not counted), more than the \
                     macro reads; name long types with `type` aliases"
                ),
            ))
        }
        None => {}
    }
    let item: Item = syn::parse2(item).map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("`#[on_trigger]` can only be applied to a free function: {error}"),
        )
    })?;
    match item {
        Item::Fn(function) => validate(function.sig),
        other => Err(not_a_function(&other)),
    }
}

/// The item with a function's body left out (an empty block instead): the macro reads only
/// the signature and emits the function as it was written, and the compiler has parsed the
/// body already; parsing it again would cost time and recurse as deep as the body nests.
/// Anything but `… fn … { body }` is returned as it is.
fn without_body(item: TokenStream) -> TokenStream {
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let is_fn = tokens
        .iter()
        .any(|token| matches!(token, TokenTree::Ident(ident) if ident == "fn"));
    if let Some(TokenTree::Group(body)) = tokens.last_mut() {
        if is_fn && body.delimiter() == Delimiter::Brace {
            let mut empty = Group::new(Delimiter::Brace, TokenStream::new());
            empty.set_span(body.span());
            *body = empty;
        }
    }
    tokens.into_iter().collect()
}

/// How a signature is too big to parse.
#[derive(Debug, PartialEq, Eq)]
enum TooBig {
    /// Nested deeper than [`MAX_NESTING`].
    Deep,
    /// Longer than [`MAX_SIGNATURE_TOKENS`].
    Long,
}

/// Where `tokens` first nest deeper than [`MAX_NESTING`] (delimited groups and unclosed `<`
/// together) or pass [`MAX_SIGNATURE_TOKENS`] (doc attributes not counted), if they do.
/// Iterative, so that it cannot overflow the stack itself.
fn too_big(tokens: TokenStream) -> Option<(Span, TooBig)> {
    // Each open group: its remaining tokens, its depth, and the `<` open in it.
    let mut stack = vec![(tokens.into_iter(), 0usize, 0usize)];
    let mut count = 0;
    // The previous token: a `-` or `=` joined to the next (`->`, `=>`), or a `#`.
    let (mut arrow, mut hash) = (false, false);
    while let Some((tokens, depth, angles)) = stack.last_mut() {
        let Some(token) = tokens.next() else {
            stack.pop();
            continue;
        };
        count += 1;
        if count > MAX_SIGNATURE_TOKENS {
            return Some((token.span(), TooBig::Long));
        }
        let (was_arrow, was_hash) = (arrow, hash);
        arrow = matches!(&token, TokenTree::Punct(p)
            if matches!(p.as_char(), '-' | '=') && p.spacing() == Spacing::Joint);
        hash = matches!(&token, TokenTree::Punct(p) if p.as_char() == '#');
        match &token {
            // A doc comment: neither it nor its `#` counts.
            TokenTree::Group(group) if was_hash && is_doc(group) => count -= 2,
            TokenTree::Group(group) => {
                let inner = *depth + *angles + 1;
                if inner > MAX_NESTING {
                    return Some((group.span(), TooBig::Deep));
                }
                stack.push((group.stream().into_iter(), inner, 0));
            }
            TokenTree::Punct(p) if p.as_char() == '<' => {
                *angles += 1;
                if *depth + *angles > MAX_NESTING {
                    return Some((p.span(), TooBig::Deep));
                }
            }
            TokenTree::Punct(p) if p.as_char() == '>' && !was_arrow => {
                *angles = angles.saturating_sub(1);
            }
            _ => {}
        }
    }
    None
}

/// Whether an attribute's `[…]` is a doc comment: `doc = "…"`.
fn is_doc(group: &Group) -> bool {
    let tokens: Vec<TokenTree> = group.stream().into_iter().take(4).collect();
    group.delimiter() == Delimiter::Bracket
        && matches!(tokens.as_slice(), [TokenTree::Ident(doc), TokenTree::Punct(eq), TokenTree::Literal(_)]
            if doc == "doc" && eq.as_char() == '=')
}

/// Checks a function's signature and extracts what code generation needs.
fn validate(sig: Signature) -> syn::Result<HandlerFn> {
    let mut errors = Errors::default();

    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new(
            unsafety.span,
            "`#[on_trigger]` handlers cannot be `unsafe fn`: the runtime calls them without \
             upholding any safety contract; make the function safe and use `unsafe` blocks inside",
        ));
    }
    if let Some(abi) = &sig.abi {
        let is_rust = abi.name.as_ref().is_some_and(|name| name.value() == "Rust");
        if !is_rust {
            errors.push(syn::Error::new_spanned(
                abi,
                "`#[on_trigger]` handlers cannot be `extern` functions: the runtime calls them \
                 as Rust functions; remove the ABI",
            ));
        }
    }
    if !sig.generics.params.is_empty() {
        let generics = &sig.generics;
        errors.push(syn::Error::new_spanned(
            quote!(#generics),
            "`#[on_trigger]` handlers cannot have generic parameters (type, lifetime or const): \
             the runtime calls them with concrete extractor types",
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            where_clause,
            "`#[on_trigger]` handlers cannot have a `where` clause: they must not be generic",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic.dots,
            "`#[on_trigger]` handlers cannot be variadic",
        ));
    }

    let mut params = Vec::with_capacity(sig.inputs.len());
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new(
                receiver.self_token.span,
                "`#[on_trigger]` handlers must be free functions, not methods taking `self`; \
                 move the function out of the `impl` block and reach shared data through \
                 an extractor such as `State<T>`",
            )),
            FnArg::Typed(typed) => {
                if let Some(impl_token) = find_impl_keyword(typed.ty.to_token_stream()) {
                    errors.push(syn::Error::new(
                        impl_token,
                        "`#[on_trigger]` handler parameters cannot use `impl Trait`: it makes the \
                         handler generic; name a concrete extractor type",
                    ));
                } else {
                    params.push((*typed.ty).clone());
                }
            }
        }
    }

    if let Some(extra) = sig.inputs.iter().nth(MAX_PARAMS) {
        errors.push(syn::Error::new_spanned(
            extra,
            format!(
                "`#[on_trigger]` handlers take at most {MAX_PARAMS} parameters; group \
                 related state into one `State<T>` (or take the whole event)"
            ),
        ));
    }

    let mut kind = if sig.asyncness.is_some() {
        Kind::Async
    } else {
        Kind::Blocking
    };
    let output = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => {
            if kind == Kind::Blocking && returns_impl_future(ty) {
                kind = Kind::Async;
            }
            // `impl Trait` (anywhere in the type) cannot be named in the generated check.
            if find_impl_keyword(ty.to_token_stream()).is_some() {
                None
            } else {
                Some((**ty).clone())
            }
        }
    };

    errors.finish().map(|()| HandlerFn {
        ident: sig.ident,
        kind,
        params,
        output,
    })
}

/// The span of the first `impl` keyword in `tokens` (nested groups included), if any.
fn find_impl_keyword(tokens: TokenStream) -> Option<Span> {
    tokens.into_iter().find_map(|token| match token {
        TokenTree::Ident(ident) if ident == "impl" => Some(ident.span()),
        TokenTree::Group(group) => find_impl_keyword(group.stream()),
        _ => None,
    })
}

/// Whether `ty` is `impl Future<...>` (or `impl Future + Send + ...`, any path ending in
/// `Future`): such a plain `fn` is an async handler written without `async`.
fn returns_impl_future(ty: &Type) -> bool {
    let Type::ImplTrait(impl_trait) = ty else {
        return false;
    };
    impl_trait.bounds.iter().any(|bound| match bound {
        TypeParamBound::Trait(bound) => bound
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Future"),
        _ => false,
    })
}

/// The error for an item that is not a function, spanned at its keyword and name.
fn not_a_function(item: &Item) -> syn::Error {
    let (what, head): (&str, TokenStream) = match item {
        Item::Struct(item) => ("a struct", spanned_pair(&item.struct_token, &item.ident)),
        Item::Enum(item) => ("an enum", spanned_pair(&item.enum_token, &item.ident)),
        Item::Union(item) => ("a union", spanned_pair(&item.union_token, &item.ident)),
        Item::Trait(item) => ("a trait", spanned_pair(&item.trait_token, &item.ident)),
        Item::TraitAlias(item) => (
            "a trait alias",
            spanned_pair(&item.trait_token, &item.ident),
        ),
        Item::Impl(item) => ("an `impl` block", item.impl_token.to_token_stream()),
        Item::Mod(item) => ("a module", spanned_pair(&item.mod_token, &item.ident)),
        Item::Const(item) => ("a constant", spanned_pair(&item.const_token, &item.ident)),
        Item::Static(item) => ("a static", spanned_pair(&item.static_token, &item.ident)),
        Item::Type(item) => ("a type alias", spanned_pair(&item.type_token, &item.ident)),
        Item::Use(item) => ("a `use` declaration", item.use_token.to_token_stream()),
        Item::ExternCrate(item) => ("an `extern crate`", item.extern_token.to_token_stream()),
        Item::ForeignMod(item) => ("an `extern` block", item.abi.to_token_stream()),
        Item::Macro(item) => ("a macro invocation", item.mac.path.to_token_stream()),
        // Among others, a function without a body (`fn f();`).
        other => ("this item", other.to_token_stream()),
    };
    syn::Error::new_spanned(
        head,
        format!(
            "`#[on_trigger]` can only be applied to a free function (`fn` or `async fn` with a \
             body), not to {what}"
        ),
    )
}

/// `first second` as one token stream, for an error spanning both.
fn spanned_pair(first: &impl ToTokens, second: &impl ToTokens) -> TokenStream {
    quote!(#first #second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(item: TokenStream) -> Vec<String> {
        match parse(item) {
            Ok(handler) => panic!("expected an error, got {handler:?}"),
            Err(error) => error.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn types(handler: &HandlerFn) -> Vec<String> {
        handler
            .params
            .iter()
            .map(|ty| ty.to_token_stream().to_string())
            .collect()
    }

    /// On a thread with the compiler's stack (8 MiB), in this unoptimized build: a signature
    /// at the nesting bound parses, one past it is refused before `syn` recurses into it.
    #[test]
    fn deep_nesting_is_refused_and_the_body_is_not_parsed() {
        std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(deep_nesting)
            .unwrap()
            .join()
            .unwrap();
    }

    fn deep_nesting() {
        use std::str::FromStr;
        let nested = |n: usize| format!("{}u8{}", "Vec<".repeat(n), ">".repeat(n));
        // 1,600 overflowed the parser's stack before (found by fuzzing).
        for n in [MAX_NESTING, 1_600, 20_000] {
            let item = TokenStream::from_str(&format!("fn h(a: {}) {{}}", nested(n))).unwrap();
            let errors = messages(item);
            assert!(
                errors[0].contains("nests deeper than 64 levels"),
                "{errors:?}"
            );
        }
        // At the bound (the parameter list is one level): parsed. `->` closes nothing.
        let parens = |n: usize| format!("{}u8{}", "(".repeat(n), ")".repeat(n));
        let item = format!("fn h(a: {}) -> Vec<u8> {{}}", parens(MAX_NESTING - 1));
        parse(TokenStream::from_str(&item).unwrap()).unwrap();
        let item = format!("fn h(a: {}) -> Result<(), E> {{}}", nested(40));
        parse(TokenStream::from_str(&item).unwrap()).unwrap();
        // Twice the bound still fits the stack: the margin.
        let deep = format!("fn h(a: {}) {{}}", nested(2 * MAX_NESTING - 1));
        let deep: Item = syn::parse2(TokenStream::from_str(&deep).unwrap()).unwrap();
        assert!(matches!(deep, Item::Fn(_)));
        // Parentheses count as well.
        let parens = format!("fn h({}a{}: u8) {{}}", "(".repeat(200), ")".repeat(200));
        assert!(messages(TokenStream::from_str(&parens).unwrap())[0].contains("nests deeper"));
        // A chain without nesting is bounded by the signature's length (the fuzz target
        // overflowed the stack with thousands of `&`); doc comments are not counted.
        let refs = format!("fn h(a: {}u8) {{}}", "&".repeat(4_000));
        let errors = messages(TokenStream::from_str(&refs).unwrap());
        assert!(errors[0].contains("more than 192 tokens"), "{errors:?}");
        let docs = format!("{}fn h(a: u8) {{}}", "/// Docs.\n".repeat(500));
        parse(TokenStream::from_str(&docs).unwrap()).unwrap();
        let long = format!("fn h(a: {}u8) {{}}", "&".repeat(MAX_SIGNATURE_TOKENS - 10));
        parse(TokenStream::from_str(&long).unwrap()).unwrap();
        // The body is the compiler's: however deep it nests, only the signature is read.
        let body = format!("fn h() {{ {}1{} }}", "(".repeat(2_000), ")".repeat(2_000));
        let handler = parse(TokenStream::from_str(&body).unwrap()).unwrap();
        assert_eq!(handler.name(), "h");
    }

    #[test]
    fn async_fn_with_extractors() {
        let handler = parse(quote! {
            /// Docs.
            pub async fn roast(msg: Payload<SlackMessage>, bot: State<Bot>) -> anyhow::Result<()> {
                Ok(())
            }
        })
        .unwrap();
        assert_eq!(handler.name(), "roast");
        assert_eq!(handler.kind, Kind::Async);
        assert_eq!(
            types(&handler),
            ["Payload < SlackMessage >", "State < Bot >"]
        );
        assert_eq!(
            handler.output.unwrap().to_token_stream().to_string(),
            "anyhow :: Result < () >"
        );
    }

    #[test]
    fn plain_fn_is_blocking() {
        let handler = parse(quote! {
            fn sync_handler(ev: std::sync::Arc<TriggerEvent>) {}
        })
        .unwrap();
        assert_eq!(handler.kind, Kind::Blocking);
        assert_eq!(types(&handler), ["std :: sync :: Arc < TriggerEvent >"]);
        assert!(handler.output.is_none());
    }

    #[test]
    fn patterns_and_raw_names() {
        let handler = parse(quote! {
            async fn r#type(Payload(msg): Payload<Msg>, _: Meta, mut state: State<S>) {}
        })
        .unwrap();
        assert_eq!(handler.name(), "type");
        assert_eq!(handler.ident.to_string(), "r#type");
        assert_eq!(handler.params.len(), 3);
    }

    #[test]
    fn impl_trait_return_is_not_checked() {
        let handler = parse(quote! {
            async fn h() -> Result<(), impl std::fmt::Display> { Ok::<(), String>(()) }
        })
        .unwrap();
        assert!(handler.output.is_none());
    }

    #[test]
    fn fn_returning_impl_future_is_async() {
        let handler = parse(quote! {
            fn h(ev: Meta) -> impl std::future::Future<Output = ()> + Send { async {} }
        })
        .unwrap();
        assert_eq!(handler.kind, Kind::Async);
        assert!(handler.output.is_none());
        let handler =
            parse(quote! { fn h() -> impl Iterator<Item = u8> { None.into_iter() } }).unwrap();
        assert_eq!(handler.kind, Kind::Blocking);
    }

    #[test]
    fn const_fn_and_extern_rust_are_fine() {
        parse(quote! { const fn h() {} }).unwrap();
        parse(quote! { extern "Rust" fn h() {} }).unwrap();
    }

    #[test]
    fn self_receivers_are_rejected() {
        for item in [
            quote! { async fn h(&self) {} },
            quote! { fn h(self, ev: Meta) {} },
            quote! { fn h(self: Box<Self>) {} },
            quote! { fn h(&mut self) {} },
        ] {
            let errors = messages(item);
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0].contains("not methods taking `self`"),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn generics_are_rejected() {
        for item in [
            quote! { async fn h<T: FromEvent>(ev: T) {} },
            quote! { fn h<'a>(ev: Meta) {} },
            quote! { fn h<const N: usize>() {} },
        ] {
            let errors = messages(item);
            assert_eq!(errors.len(), 1);
            assert!(
                errors[0].contains("cannot have generic parameters"),
                "{errors:?}"
            );
        }
        let errors = messages(quote! { fn h() where String: Clone {} });
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("cannot have a `where` clause"),
            "{errors:?}"
        );
        let errors = messages(quote! { fn h(ev: impl FromEvent) {} });
        assert!(errors[0].contains("cannot use `impl Trait`"), "{errors:?}");
        let errors = messages(quote! { fn h(ev: Payload<impl Trait>) {} });
        assert!(errors[0].contains("cannot use `impl Trait`"), "{errors:?}");
    }

    #[test]
    fn unsafe_extern_and_variadic_are_rejected() {
        let errors = messages(quote! { unsafe fn h() {} });
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("cannot be `unsafe fn`"), "{errors:?}");
        let errors = messages(quote! { extern "C" fn h() {} });
        assert!(
            errors[0].contains("cannot be `extern` functions"),
            "{errors:?}"
        );
        let errors = messages(quote! { extern fn h() {} });
        assert!(
            errors[0].contains("cannot be `extern` functions"),
            "{errors:?}"
        );
        let errors = messages(quote! { unsafe extern "C" fn h(a: u8, ...) {} });
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[2].contains("cannot be variadic"), "{errors:?}");
    }

    #[test]
    fn too_many_parameters_are_rejected() {
        let ok = parse(quote! { fn h(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H) {} }).unwrap();
        assert_eq!(ok.params.len(), MAX_PARAMS);
        let errors = messages(
            quote! { fn h(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I, j: J) {} },
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("at most 8 parameters"), "{errors:?}");
    }

    #[test]
    fn several_problems_are_reported_together() {
        let errors = messages(quote! { unsafe fn h<T>(&self, x: impl Sized) where T: Copy {} });
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn non_functions_are_rejected() {
        for (item, what) in [
            (quote! { struct Foo; }, "not to a struct"),
            (quote! { pub enum E { A } }, "not to an enum"),
            (
                quote! { impl Foo { fn h(&self) {} } },
                "not to an `impl` block",
            ),
            (quote! { mod m {} }, "not to a module"),
            (quote! { const C: u8 = 1; }, "not to a constant"),
            (quote! { static S: u8 = 1; }, "not to a static"),
            (quote! { type T = u8; }, "not to a type alias"),
            (quote! { use std::fmt; }, "not to a `use` declaration"),
            (quote! { trait T {} }, "not to a trait"),
            (quote! { fn no_body(ev: Meta); }, "not to this item"),
        ] {
            let errors = messages(item.clone());
            assert_eq!(errors.len(), 1, "{item}");
            assert!(
                errors[0].starts_with("`#[on_trigger]` can only be applied to a free function")
                    && errors[0].ends_with(what),
                "{item}: {errors:?}"
            );
        }
    }
}
