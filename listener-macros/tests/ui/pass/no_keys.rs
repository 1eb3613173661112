// Without keys (with or without parentheses, trailing comma allowed) a handler gets every event.
use listener_core::prelude::*;

#[on_trigger]
async fn everything(_ev: Meta) {}

#[on_trigger()]
async fn everything_too(_ev: Meta) {}

#[on_trigger(name = "X",)]
async fn trailing_comma() {}

fn main() {
    let handlers = listener_core::registered_handlers();
    let names: Vec<&str> = handlers.iter().map(|handler| handler.name()).collect();
    assert_eq!(
        names,
        ["no_keys::everything", "no_keys::everything_too", "no_keys::trailing_comma"]
    );
    let event = TriggerEvent::new("ANYTHING_AT_ALL", Default::default());
    assert!(handlers[0].filter().matches(&event));
    assert!(handlers[1].filter().matches(&event));
    assert!(!handlers[2].filter().matches(&event));
}
