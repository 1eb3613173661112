//! The bundled sample deliveries (`examples/data/slack_roast_samples.json`): messages in the
//! roast channel and elsewhere, a thread reply, a bot message, an edit, an empty file share,
//! the bot's own reply coming back, and a duplicate delivery.

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

const BUNDLED: &str = include_str!("../data/slack_roast_samples.json");

/// One sample delivery.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    /// What it shows.
    pub note: String,
    /// What the bot should do: `reply`, a skip code (`other_channel`, …), or
    /// `dropped_duplicate` (the listener drops a delivery whose event id it saw).
    pub expect: String,
    /// The V3 envelope, as Composio sends it.
    pub envelope: Value,
}

impl Sample {
    /// The envelope's event id.
    pub fn event_id(&self) -> &str {
        self.envelope["id"].as_str().unwrap_or_default()
    }
}

/// The sample set and the settings it is written for.
#[derive(Debug, Clone, Deserialize)]
pub struct Samples {
    /// The roast channel of the samples.
    pub channel: String,
    /// The Slack user id the samples treat as the bot's own.
    pub bot_user_id: String,
    /// The deliveries, in order.
    pub samples: Vec<Sample>,
}

impl Samples {
    /// The bundled set.
    pub fn bundled() -> anyhow::Result<Samples> {
        serde_json::from_str(BUNDLED).context("the bundled samples are not valid")
    }
}
