//! Fuzz target `macro_args`: the properties of `props/macro_args.rs`, over the
//! `#[on_trigger]` macro's own modules.
//!
//! `listener-macros` is a proc-macro crate, which cannot be linked into a binary, so its
//! modules are compiled in here by path (they need only `proc-macro2`, `quote`, `syn` and
//! `humantime`, and name each other through `crate::`); only the entry point, a few lines in
//! its lib.rs, stays out.
#![no_main]

#[allow(dead_code)]
#[path = "../../listener-macros/src/args.rs"]
mod args;
#[allow(dead_code)]
#[path = "../../listener-macros/src/emit.rs"]
mod emit;
#[allow(dead_code)]
#[path = "../../listener-macros/src/errors.rs"]
mod errors;
#[allow(dead_code)]
#[path = "../../listener-macros/src/handler.rs"]
mod handler;
#[allow(dead_code)]
#[path = "../../listener-macros/src/policy.rs"]
mod policy;

#[path = "../props/macro_args.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));
