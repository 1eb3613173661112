use listener_core::prelude::*;

struct Bot;

impl Bot {
    #[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
    async fn method(&self, _ev: Meta) {}
}

fn main() {}
