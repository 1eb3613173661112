use listener_core::prelude::*;

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn returns_number(_ev: Meta) -> i32 {
    42
}

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
fn returns_ok_value(_ev: Meta) -> Result<u8, String> {
    Ok(1)
}

fn main() {}
