// Without keys (with or without parentheses, trailing comma allowed) a handler gets every event.
use listener_core::prelude::*;

#[on_trigger]
async fn everything(_ev: Meta) {}

#[on_trigger()]
async fn everything_too(_ev: Meta) {}

#[rustfmt::skip] // keeps the trailing comma under test
#[on_trigger(name = "X",)]
async fn trailing_comma() {}

fn main() {
    let handlers = listener_core::registered_handlers();
    let names: Vec<&str> = handlers
        .iter()
        .map(|handler| without_crate(handler.name()))
        .collect();
    assert_eq!(names, ["everything", "everything_too", "trailing_comma"]);
    let event = TriggerEvent::new("ANYTHING_AT_ALL", Default::default());
    assert!(handlers[0].filter().matches(&event));
    assert!(handlers[1].filter().matches(&event));
    assert!(!handlers[2].filter().matches(&event));
}

/// `crate::path::name` without the crate's name, which the test harness picks.
fn without_crate(name: &str) -> &str {
    name.split_once("::").map_or(name, |(_, rest)| rest)
}
