use listener_core::prelude::*;

#[on_trigger]
async unsafe fn dangerous(_ev: Meta) {}

#[on_trigger]
extern "C" fn foreign(_ev: Meta) {}

fn main() {}
