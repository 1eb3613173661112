use listener_core::prelude::*;

#[on_trigger(nmae = "SLACK_RECEIVE_MESSAGE")]
async fn misspelled(_ev: Meta) {}

#[on_trigger(event = "SLACK_RECEIVE_MESSAGE")]
async fn unknown(_ev: Meta) {}

fn main() {}
