//! A listener built with `default-features = false, features = ["realtime"]`: Composio's
//! realtime channel and nothing else. `scripts/check-features.sh` checks that its dependency
//! tree holds no HTTP server and no hub.

use listener_core::prelude::*;

#[derive(Debug, serde::Deserialize)]
struct SlackMessage {
    text: String,
}

#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn print_message(Payload(msg): Payload<SlackMessage>) {
    println!("{}", msg.text);
}

#[tokio::main]
async fn main() -> Result<(), listener_core::Error> {
    let listener = Listener::builder()
        .source(ComposioSource::from_env()?)
        .build()?;
    listener.wait_forever().await?;
    Ok(())
}
