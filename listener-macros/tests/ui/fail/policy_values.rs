use listener_core::prelude::*;

const N: u32 = 2;

#[on_trigger(timeout = "soon")]
async fn not_a_duration(_ev: Meta) {}

#[on_trigger(timeout = "0s")]
async fn zero_timeout(_ev: Meta) {}

#[on_trigger(timeout = 30)]
async fn timeout_as_integer(_ev: Meta) {}

#[on_trigger(retries = "2")]
async fn retries_as_string(_ev: Meta) {}

#[on_trigger(retries = 1000)]
async fn too_many_retries(_ev: Meta) {}

#[on_trigger(retries = N)]
async fn retries_from_a_constant(_ev: Meta) {}

#[on_trigger(retries = 2u8)]
async fn suffixed_retries(_ev: Meta) {}

#[on_trigger(retry_delay = "1s")]
async fn delay_without_retries(_ev: Meta) {}

#[on_trigger(concurrency = 0)]
async fn no_concurrency(_ev: Meta) {}

#[on_trigger(sequential_by = "channel")]
async fn not_a_key_path(_ev: Meta) {}

#[on_trigger(sequential_by = "payload..ts")]
async fn empty_segment(_ev: Meta) {}

#[on_trigger(sequential_by = "")]
async fn empty_path(_ev: Meta) {}

#[on_trigger(retrys = 2)]
async fn misspelt_key(_ev: Meta) {}

fn main() {}
