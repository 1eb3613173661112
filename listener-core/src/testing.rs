//! Testing helpers: dispatch events through your handlers without a network.
//!
//! ```
//! use listener_core::prelude::*;
//! use listener_core::testing::Harness;
//!
//! #[derive(serde::Deserialize)]
//! struct Message { text: String }
//!
//! #[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
//! async fn shout(Payload(msg): Payload<Message>) -> anyhow::Result<()> {
//!     anyhow::ensure!(!msg.text.is_empty(), "empty message");
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let harness = Harness::new(Listener::builder().only_registered(["shout"]))?;
//! let report = harness
//!     .dispatch(TriggerEvent::new("SLACK_RECEIVE_MESSAGE", serde_json::json!({"text": ""})))
//!     .await?;
//! assert!(report.ran("shout"));
//! assert!(!report.all_ok());
//! # Ok(()) }
//! ```

use crate::decode;
use crate::dispatch::Dispatcher;
use crate::error::Result;
use crate::event::TriggerEvent;
use crate::listener::ListenerBuilder;
use crate::report::DispatchReport;

/// A dispatcher built like a listener (same handlers, state, limits), fed by hand.
#[derive(Debug, Clone)]
pub struct Harness {
    dispatcher: Dispatcher,
}

impl Harness {
    /// Builds the dispatcher of `builder` (its sources are ignored).
    pub fn new(builder: ListenerBuilder) -> Result<Self> {
        Ok(Harness {
            dispatcher: builder.build()?.dispatcher().clone(),
        })
    }

    /// Dispatches an event and waits for every matching handler.
    pub async fn dispatch(&self, event: TriggerEvent) -> Result<DispatchReport> {
        self.dispatcher.dispatch_and_wait(event).await
    }

    /// Decodes JSON in any envelope (a fixture file's contents, say) and dispatches it.
    pub async fn dispatch_json(&self, json: impl AsRef<[u8]>) -> Result<DispatchReport> {
        self.dispatch(decode::decode(json.as_ref())?).await
    }

    /// The dispatcher (counters, in-flight runs).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }
}
