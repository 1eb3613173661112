//! Recording handlers: each run sends what it saw on a channel the test reads.

use std::sync::Arc;

use listener_core::{Filter, Handler, TriggerEvent};
use tokio::sync::mpsc;

/// One handler run: which handler, which event.
#[derive(Debug, Clone)]
pub struct Seen {
    pub handler: String,
    pub event: Arc<TriggerEvent>,
}

/// A channel of [`Seen`] runs.
pub struct Recorder {
    tx: mpsc::UnboundedSender<Seen>,
    pub rx: mpsc::UnboundedReceiver<Seen>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Recorder { tx, rx }
    }

    /// A handler named `name` with `filter` that records each run.
    pub fn handler(&self, name: &str, filter: Filter) -> Handler {
        let tx = self.tx.clone();
        let label = name.to_owned();
        Handler::new(name, filter, move |ev: Arc<TriggerEvent>| {
            let tx = tx.clone();
            let label = label.clone();
            async move {
                let _ = tx.send(Seen {
                    handler: label,
                    event: ev,
                });
            }
        })
    }

    /// Everything recorded so far, without waiting.
    pub fn drain(&mut self) -> Vec<Seen> {
        let mut out = Vec::new();
        while let Ok(s) = self.rx.try_recv() {
            out.push(s);
        }
        out
    }

    /// The next run, within the test deadline.
    pub async fn next(&mut self) -> Seen {
        crate::wait::within("a handler run", self.rx.recv())
            .await
            .expect("recorder channel closed")
    }
}
