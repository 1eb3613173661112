use listener_core::prelude::*;

struct Bot;

impl Bot {
    #[on_trigger]
    async fn associated(_ev: Meta) {}
}

fn main() {}
