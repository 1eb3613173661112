// An async handler with `Payload<T>` and `State<T>` extractors and an `anyhow::Result<()>`.
use listener_core::prelude::*;

#[derive(serde::Deserialize)]
pub struct SlackMessage {
    text: String,
}

pub struct Bot {
    prefix: &'static str,
}

/// Roasts every Slack message.
#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
pub async fn roast(msg: Payload<SlackMessage>, bot: State<Bot>) -> anyhow::Result<()> {
    println!("{}{}", bot.prefix, msg.text);
    Ok(())
}

fn main() {
    let handlers = listener_core::registered_handlers();
    assert_eq!(handlers.len(), 1);
    assert_eq!(without_crate(handlers[0].name()), "roast");
    assert!(!handlers[0].is_blocking());

    let descriptor = listener_core::__private::inventory::iter::<listener_core::__private::HandlerDescriptor>
        .into_iter()
        .next()
        .unwrap();
    assert_eq!(descriptor.name, "roast");
    assert!(
        !descriptor.module_path.contains("::"),
        "{}",
        descriptor.module_path
    );
    assert!(
        descriptor.file.ends_with("async_extractors.rs"),
        "{}",
        descriptor.file
    );
    assert_eq!(descriptor.line, 15, "the line of the function's name");
    assert_eq!(
        descriptor.filter,
        listener_core::__private::FilterSpec {
            name: Some("SLACK_RECEIVE_MESSAGE"),
            ..Default::default()
        }
    );
}

/// `crate::path::name` without the crate's name, which the test harness picks.
fn without_crate(name: &str) -> &str {
    name.split_once("::").map_or(name, |(_, rest)| rest)
}
