use listener_core::prelude::*;

#[on_trigger]
async fn nine(a: Meta, b: Meta, c: Meta, d: Meta, e: Meta, f: Meta, g: Meta, h: Meta, i: Meta) {
    let _ = (a, b, c, d, e, f, g, h, i);
}

fn main() {}
