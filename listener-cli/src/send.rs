//! `trigger-hub send`: publishes one event through the hub's ingest API.

use std::io::Read;

use anyhow::{anyhow, Context, Result};
use clap::builder::NonEmptyStringValueParser;
use listener_hub::BareEvent;
use serde_json::Value;

use crate::http::{self, HubArgs};

/// Publish one trigger event to the hub.
///
/// The payload is wrapped into a fresh V3 trigger message and sent to every listener and
/// webhook subscription of the hub.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trigger slug, e.g. SLACK_RECEIVE_MESSAGE.
    #[arg(value_name = "SLUG", value_parser = NonEmptyStringValueParser::new())]
    pub slug: String,
    /// JSON file with the trigger payload; `-` reads standard input. Default: `{}`.
    #[arg(long, short, value_name = "FILE|-")]
    pub payload: Option<String>,
    /// User id of the event (the hub's default: `default`).
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Trigger instance id (default: a fresh `ti_…`).
    #[arg(long, value_name = "ID")]
    pub trigger_id: Option<String>,
    /// Connected account id (default: a fresh `ca_…`).
    #[arg(long, value_name = "ID")]
    pub connected_account_id: Option<String>,
    /// Auth config id (default: a fresh `ac_…`).
    #[arg(long, value_name = "ID")]
    pub auth_config_id: Option<String>,
    /// Print the hub's receipt as one JSON line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Reads the payload, posts the event, prints the receipt.
pub async fn run(args: Args) -> Result<()> {
    let base = args.hub.base()?;
    let payload = read_payload(args.payload.as_deref())?;
    let event = BareEvent {
        trigger_slug: args.slug,
        payload,
        user_id: args.user,
        trigger_id: args.trigger_id,
        connected_account_id: args.connected_account_id,
        auth_config_id: args.auth_config_id,
    };
    let body = serde_json::to_vec(&event).context("cannot encode the event")?;
    let client = http::client()?;
    let receipt = publish(&client, &base, args.hub.api_key(), body).await?;
    if args.json {
        println!("{receipt}");
    } else {
        println!("{}", describe(&receipt));
    }
    Ok(())
}

/// Posts one ingest body (an envelope or a bare event) and returns the hub's receipt.
pub async fn publish(
    client: &reqwest::Client,
    base: &str,
    api_key: &str,
    body: Vec<u8>,
) -> Result<Value> {
    let response = client
        .post(format!("{base}/hub/events"))
        .header("content-type", "application/json")
        .header("x-api-key", api_key)
        .body(body)
        .send()
        .await
        .map_err(|e| http::unreachable(base, &e))?;
    http::json_or_error(base, response).await
}

/// `published evt_… (composio.trigger.message) to 1 listener(s), 0 webhook(s)`.
pub fn describe(receipt: &Value) -> String {
    let s = |k: &str| receipt[k].as_str().unwrap_or("?").to_owned();
    let n = |k: &str| receipt[k].as_u64().unwrap_or(0);
    format!(
        "published {} ({}) to {} listener(s), {} webhook subscription(s)",
        s("id"),
        s("event_type"),
        n("subscribers"),
        n("webhooks")
    )
}

/// The payload: `{}` by default, else the JSON in FILE or on stdin (`-`).
fn read_payload(source: Option<&str>) -> Result<Value> {
    let (text, name) = match source {
        None => return Ok(Value::Object(Default::default())),
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the payload from standard input")?;
            (text, "standard input".to_owned())
        }
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the payload file {path}"))?,
            path.to_owned(),
        ),
    };
    serde_json::from_str(&text).map_err(|e| anyhow!("the payload in {name} is not JSON: {e}"))
}
