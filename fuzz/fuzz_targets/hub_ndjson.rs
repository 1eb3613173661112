//! Fuzz target `hub_ndjson`: the properties of `props/ndjson.rs`.
#![no_main]

#[path = "../props/ndjson.rs"]
mod props;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));
