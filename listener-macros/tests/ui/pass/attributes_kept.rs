// The function itself is emitted unchanged: docs, attributes, visibility, raw names; and it
// may live in a nested module or a function body.
#![deny(missing_docs, unused)]
//! Crate docs.

use listener_core::prelude::*;

/// A public module.
pub mod nested {
    use listener_core::prelude::*;

    /// Documented, public and inlined.
    #[inline]
    #[on_trigger(name = "NESTED")]
    pub fn r#match(ev: TriggerEvent) -> Result<(), String> {
        Err(ev.trigger_slug)
    }
}

#[on_trigger(name = "STACKED_A")]
#[on_trigger(name = "STACKED_B")]
async fn stacked(_ev: Meta) {}

fn main() {
    let event = TriggerEvent::new("NESTED", Default::default());
    assert_eq!(nested::r#match(event), Err("NESTED".to_owned()));

    #[on_trigger(name = "LOCAL")]
    async fn local(_ev: Meta) {}

    let handlers = listener_core::registered_handlers();
    let names: Vec<&str> = handlers
        .iter()
        .map(|handler| without_crate(handler.name()))
        .collect();
    assert_eq!(names, ["local", "nested::match", "stacked", "stacked"]);
}

/// `crate::path::name` without the crate's name, which the test harness picks.
fn without_crate(name: &str) -> &str {
    name.split_once("::").map_or(name, |(_, rest)| rest)
}
