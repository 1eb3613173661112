use listener_core::prelude::*;

const SLUG: &str = "SLACK_RECEIVE_MESSAGE";

#[on_trigger(name = 5)]
async fn integer(_ev: Meta) {}

#[on_trigger(name = SLUG)]
async fn constant(_ev: Meta) {}

#[on_trigger(toolkit = concat!("git", "hub"))]
async fn expression(_ev: Meta) {}

fn main() {}
