//! `trigger-hub forward`: subscribes a local webhook server to the hub's events (like
//! `stripe listen --forward-to`) and prints every delivery attempt until stopped; the
//! subscription is deleted on the way out.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::http::{self, HubArgs};

/// Forward the hub's events to a local webhook server and print each delivery.
///
/// Creates a webhook subscription on the hub pointing at --to, prints its signing secret
/// (for `COMPOSIO_WEBHOOK_SECRET`), then prints every delivery attempt (status, outcome,
/// event id) until Ctrl-C or --count deliveries, and deletes the subscription.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Your webhook endpoint, e.g. http://127.0.0.1:3000/webhooks/composio.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// Event types to forward (comma-separated; default composio.trigger.message).
    #[arg(long, value_name = "TYPE,…", value_delimiter = ',')]
    pub events: Vec<String>,
    /// Print each delivery attempt as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Exit after this many finished deliveries (delivered, failed or dropped; retries
    /// in between are printed but not counted).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// How often the delivery log is read.
const POLL: Duration = Duration::from_millis(200);

/// Creates the subscription, prints deliveries, deletes the subscription.
pub async fn run(args: Args) -> Result<()> {
    let base = args.hub.base()?;
    http::parse_url(&args.to).context("--to")?;
    let client = http::client()?;
    let mut body = json!({ "webhook_url": args.to });
    if !args.events.is_empty() {
        body["enabled_events"] = json!(args.events);
    }
    let response = client
        .post(format!("{base}/api/v3.1/webhook_subscriptions"))
        .header("x-api-key", args.hub.api_key())
        .json(&body)
        .send()
        .await
        .map_err(|e| http::unreachable(&base, &e))?;
    let sub = http::json_or_error(&base, response)
        .await
        .context("cannot create the webhook subscription")?;
    let id = sub["id"]
        .as_str()
        .context("the hub's subscription has no id")?
        .to_owned();
    println!(
        "forwarding {} to {} (subscription {id})",
        events_of(&sub),
        args.to
    );
    println!(
        "export COMPOSIO_WEBHOOK_SECRET={}",
        sub["secret"].as_str().unwrap_or_default()
    );
    let outcome = watch(&client, &base, &id, &args).await;
    // Always try to clean up, even when watching failed.
    let deleted = client
        .delete(format!("{base}/api/v3.1/webhook_subscriptions/{id}"))
        .header("x-api-key", args.hub.api_key())
        .send()
        .await;
    match deleted {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => eprintln!(
            "{}: could not delete subscription {id}: the hub answered {}",
            crate::PROG,
            r.status()
        ),
        Err(e) => eprintln!(
            "{}: could not delete subscription {id}: {}",
            crate::PROG,
            http::unreachable(&base, &e)
        ),
    }
    outcome
}

fn events_of(sub: &Value) -> String {
    match sub["enabled_events"].as_array() {
        Some(events) => events
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        None => "events".to_owned(),
    }
}

/// Polls the delivery log and prints this subscription's new attempts.
async fn watch(client: &reqwest::Client, base: &str, id: &str, args: &Args) -> Result<()> {
    // The log is bounded and drops its oldest entries, so new entries are those not seen in
    // the previous read.
    let mut seen: HashSet<String> = HashSet::new();
    let mut finished = 0u64;
    let mut tick = tokio::time::interval(POLL);
    let stop = crate::stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tick.tick() => {}
        }
        let response = client
            .get(format!("{base}/hub/deliveries"))
            .header("x-api-key", args.hub.api_key())
            .send()
            .await
            .map_err(|e| http::unreachable(base, &e))?;
        let log = http::json_or_error(base, response).await?;
        let items = log["items"].as_array().cloned().unwrap_or_default();
        let mut current = HashSet::with_capacity(items.len());
        for item in items
            .iter()
            .filter(|i| i["subscription_id"].as_str() == Some(id))
        {
            let key = format!(
                "{}#{}#{}#{}",
                item["webhook_id"].as_str().unwrap_or_default(),
                item["event_id"].as_str().unwrap_or_default(),
                item["attempt"],
                item["at"].as_str().unwrap_or_default()
            );
            if !seen.contains(&key) {
                if args.json {
                    println!("{item}");
                } else {
                    println!("{}", describe(item));
                }
                if item["outcome"].as_str() != Some("retrying") {
                    finished += 1;
                }
            }
            current.insert(key);
        }
        seen = current;
        if args.count.is_some_and(|n| finished >= n) {
            return Ok(());
        }
    }
}

/// `[200] delivered  POST URL  evt_… (msg_…, attempt 1)`.
fn describe(item: &Value) -> String {
    let s = |k: &str| item[k].as_str().unwrap_or("-").to_owned();
    let status = match item["status"].as_u64() {
        Some(code) => format!("[{code}]"),
        None => "[---]".to_owned(),
    };
    let mut line = format!(
        "{status} {:<9} POST {}  {} ({}, attempt {})",
        s("outcome"),
        s("webhook_url"),
        s("event_id"),
        s("webhook_id"),
        item["attempt"]
    );
    if let Some(error) = item["error"].as_str() {
        line.push_str(&format!(": {}", crate::one_line(error)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_read_as_one_line() {
        let ok = json!({"subscription_id": "ws_1", "webhook_url": "http://x/h", "webhook_id": "msg_1",
            "event_id": "evt_1", "attempt": 1, "status": 200, "error": null, "outcome": "delivered", "at": "t"});
        assert_eq!(
            describe(&ok),
            "[200] delivered POST http://x/h  evt_1 (msg_1, attempt 1)"
        );
        let failed = json!({"webhook_url": "http://x/h", "webhook_id": "msg_1", "event_id": "evt_1",
            "attempt": 2, "status": null, "error": "connection\nrefused", "outcome": "retrying"});
        assert!(describe(&failed).starts_with("[---] retrying  POST"));
        assert!(describe(&failed).ends_with(": connection refused"));
    }
}
