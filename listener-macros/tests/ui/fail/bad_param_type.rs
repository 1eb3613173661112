use listener_core::prelude::*;

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn takes_string(_meta: Meta, text: String) {
    let _ = text;
}

fn main() {}
