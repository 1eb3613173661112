//! Fuzz target `pusher_frames`: the properties of `props/pusher.rs`.
#![no_main]

#[path = "../props/pusher.rs"]
mod props;
#[path = "../props/reader.rs"]
mod reader;

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check(data));
