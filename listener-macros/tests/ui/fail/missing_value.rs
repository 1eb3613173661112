use listener_core::prelude::*;

#[on_trigger(name)]
async fn bare_key(_ev: Meta) {}

#[on_trigger(name =)]
async fn nothing_after_eq(_ev: Meta) {}

#[on_trigger("SLACK_RECEIVE_MESSAGE")]
async fn bare_value(_ev: Meta) {}

fn main() {}
