//! A source fed by the test through a channel.

use listener_core::source::{Source, SourceContext};
use listener_core::{Error, Result, TriggerEvent};

use listener_core::source::SourceError;
use tokio::sync::mpsc;

/// What the test tells the source to do.
#[derive(Debug)]
pub enum Feed {
    /// Deliver this event.
    Event(Box<TriggerEvent>),
    /// End normally.
    Finish,
    /// Fail for good with this message.
    Fail(String),
}

/// A source that delivers what the test feeds it; it reports each delivery's result back.
pub struct ChannelSource {
    name: String,
    rx: mpsc::UnboundedReceiver<Feed>,
    results: mpsc::UnboundedSender<Result<listener_core::dispatch::Dispatched>>,
}

/// The test's end of a [`ChannelSource`].
pub struct Feeder {
    pub tx: mpsc::UnboundedSender<Feed>,
    pub results: mpsc::UnboundedReceiver<Result<listener_core::dispatch::Dispatched>>,
}

impl ChannelSource {
    pub fn new(name: &str) -> (Self, Feeder) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (rtx, results) = mpsc::unbounded_channel();
        (
            ChannelSource {
                name: name.to_owned(),
                rx,
                results: rtx,
            },
            Feeder { tx, results },
        )
    }
}

impl Feeder {
    pub fn send(&self, event: TriggerEvent) {
        self.tx
            .send(Feed::Event(Box::new(event)))
            .expect("source gone");
    }

    /// The result of the next delivery, within the test deadline.
    pub async fn result(&mut self) -> Result<listener_core::dispatch::Dispatched> {
        crate::wait::within("a delivery result", self.results.recv())
            .await
            .expect("source gone")
    }
}

#[listener_core::source::async_trait]
impl Source for ChannelSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn run(mut self: Box<Self>, cx: SourceContext) -> Result<()> {
        loop {
            let feed = tokio::select! {
                _ = cx.cancelled() => return Ok(()),
                feed = self.rx.recv() => feed,
            };
            match feed {
                None | Some(Feed::Finish) => return Ok(()),
                Some(Feed::Fail(message)) => {
                    return Err(Error::Source(SourceError::Failed {
                        source_name: self.name.clone(),
                        message,
                    }))
                }
                Some(Feed::Event(ev)) => {
                    let r = cx.deliver(*ev).await;
                    let stop = matches!(r, Err(Error::ShuttingDown));
                    let _ = self.results.send(r);
                    if stop {
                        return Ok(());
                    }
                }
            }
        }
    }
}
