use listener_core::prelude::*;

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
struct Handler;

#[on_trigger]
impl Handler {
    async fn handle(_ev: Meta) {}
}

fn main() {}
