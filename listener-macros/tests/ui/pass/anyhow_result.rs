// Handler outputs: `Result<(), anyhow::Error>`, `Result<(), E: Display>`, `()`, `impl Trait`.
use listener_core::prelude::*;

#[on_trigger(name = "A")]
async fn with_anyhow(_ev: Meta) -> Result<(), anyhow::Error> {
    anyhow::bail!("boom")
}

#[on_trigger(name = "B")]
async fn with_string_error(_ev: Meta) -> std::result::Result<(), String> {
    Ok(())
}

#[on_trigger(name = "C")]
async fn explicit_unit(_ev: Meta) -> () {}

#[on_trigger(name = "D")]
async fn opaque_error(_ev: Meta) -> Result<(), impl std::fmt::Display + Send + 'static> {
    Err::<(), _>("opaque")
}

// A plain `fn` returning `impl Future` is an async handler.
#[on_trigger(name = "E")]
fn returns_future(_ev: Meta) -> impl std::future::Future<Output = anyhow::Result<()>> + Send {
    async { Ok(()) }
}

fn main() {
    let handlers = listener_core::registered_handlers();
    assert_eq!(handlers.len(), 5);
    assert!(handlers.iter().all(|handler| !handler.is_blocking()));
}
