use listener_core::prelude::*;

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE", user_id = "")]
async fn empty(_ev: Meta) {}

fn main() {}
