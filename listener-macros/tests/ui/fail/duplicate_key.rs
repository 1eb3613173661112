use listener_core::prelude::*;

#[on_trigger(name = "A", toolkit = "slack", name = "B")]
async fn twice(_ev: Meta) {}

fn main() {}
