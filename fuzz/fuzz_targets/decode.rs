//! Fuzz target `decode`: the properties of `props/decode.rs`.
#![no_main]

#[path = "../props/decode.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));
