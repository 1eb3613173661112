// A plain (non-async) fn is registered as a blocking handler, and stays callable.
use listener_core::prelude::*;

#[on_trigger(toolkit = "github", user_id = "default")]
fn sync_handler(ev: std::sync::Arc<TriggerEvent>) {
    let _ = &ev.trigger_slug;
}

#[on_trigger(name = "GITHUB_COMMIT_EVENT")]
fn fallible(_meta: Meta, _event: TriggerEvent) -> Result<(), String> {
    Err("not yet".to_owned())
}

fn main() {
    let handlers = listener_core::registered_handlers();
    assert_eq!(handlers.len(), 2);
    assert!(handlers.iter().all(|handler| handler.is_blocking()));

    let event = TriggerEvent::new("GITHUB_COMMIT_EVENT", Default::default());
    sync_handler(std::sync::Arc::new(event));
}
