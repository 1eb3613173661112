//! Fuzz target `webhook_verify`: the properties of `props/webhook.rs`.
#![no_main]

#[path = "../props/webhook.rs"]
mod props;
#[path = "../props/reader.rs"]
mod reader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));
