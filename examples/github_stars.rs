//! GitHub stars: a handler for `GITHUB_STAR_ADDED_EVENT`, with the trigger's configuration
//! checked against the trigger type's config schema before the trigger is enabled.
//!
//! Run it:
//!
//! ```sh
//! cargo run --example github_stars                                  # offline demo, exits
//! GITHUB_OWNER=octocat GITHUB_REPO=hello-world cargo run --example github_stars
//! COMPOSIO_API_KEY=… [COMPOSIO_USER_ID=default] cargo run --example github_stars   # live
//! ```
//!
//! Without `COMPOSIO_API_KEY` the schema is the bundled one
//! (`tests/fixtures/github_star_config_schema.json`: `owner` and `repo` required); the
//! example checks the configuration built from `GITHUB_OWNER` / `GITHUB_REPO` (default
//! `composiohq` / `composio`) against it, shows what a config missing `repo` is told, then
//! sends two sample star events through a local hub to the handler and exits.
//!
//! With `COMPOSIO_API_KEY` it fetches the schema from Composio
//! (`GET /api/v3.1/triggers_types/GITHUB_STAR_ADDED_EVENT`), checks the configuration,
//! enables the trigger for the user (`POST /api/v3.1/trigger_instances/…/upsert`) and
//! listens on Composio's realtime channel until Ctrl-C.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use listener_core::composio_api::{ComposioClient, ConfigSchema, UpsertTrigger};
use listener_core::prelude::*;
use listener_hub::Hub;
use serde_json::{json, Value};
use tokio::sync::Notify;

const TRIGGER: &str = "GITHUB_STAR_ADDED_EVENT";
const BUNDLED_SCHEMA: &str = include_str!("../tests/fixtures/github_star_config_schema.json");

/// The star payload; every field optional so an unexpected shape never fails the handler.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct StarAdded {
    action: Option<String>,
    repository_name: Option<String>,
    repository_url: Option<String>,
    starred_by: Option<String>,
    starred_at: Option<String>,
}

#[derive(Default)]
struct Stars {
    count: AtomicUsize,
    changed: Notify,
}

#[on_trigger(name = "GITHUB_STAR_ADDED_EVENT")]
async fn star_added(Payload(star): Payload<StarAdded>, meta: Meta, stars: State<Stars>) {
    let n = stars.count.fetch_add(1, Ordering::SeqCst) + 1;
    println!(
        "star #{n}: {} starred {} ({}) at {} [{}; trigger {}]",
        star.starred_by.as_deref().unwrap_or("someone"),
        star.repository_name.as_deref().unwrap_or("a repository"),
        star.repository_url.as_deref().unwrap_or("-"),
        star.starred_at.as_deref().unwrap_or("?"),
        star.action.as_deref().unwrap_or("created"),
        meta.id()
    );
    stars.changed.notify_one();
}

/// Checks `config` against `schema`, printing every problem.
fn check(schema: &ConfigSchema, config: &Value) -> bool {
    match schema.validate(config) {
        Ok(()) => {
            println!(
                "config {config} is valid (required: {})",
                schema.required().join(", ")
            );
            true
        }
        Err(problems) => {
            println!("config {config} is refused:");
            for p in problems {
                println!("  - {p}");
            }
            false
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,listener_core=warn".into()),
        )
        .init();
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let config = json!({
        "owner": var("GITHUB_OWNER").unwrap_or_else(|| "composiohq".into()),
        "repo": var("GITHUB_REPO").unwrap_or_else(|| "composio".into()),
    });
    let stars = Arc::new(Stars::default());

    if var("COMPOSIO_API_KEY").is_some() {
        let client = ComposioClient::from_env()?;
        let trigger_type = client.get_trigger_type(TRIGGER).await?;
        println!(
            "{} ({}): {}",
            trigger_type.slug, trigger_type.toolkit.slug, trigger_type.description
        );
        if !check(&trigger_type.config_schema(), &config) {
            bail!("fix GITHUB_OWNER / GITHUB_REPO");
        }
        let user = var("COMPOSIO_USER_ID").unwrap_or_else(|| "default".into());
        let trigger = client
            .upsert_trigger(TRIGGER, &UpsertTrigger::for_user(&user).config(config))
            .await?;
        println!(
            "trigger {} enabled for {user}; listening (Ctrl-C to stop)",
            trigger.trigger_id
        );
        let stopped = Listener::from_env()?
            .shared_state(stars)
            .build()?
            .wait_forever()
            .await?;
        println!("stopped: {:?}", stopped.reason);
        return Ok(());
    }

    let schema = ConfigSchema::new(serde_json::from_str(BUNDLED_SCHEMA).context("bundled schema")?);
    if !check(&schema, &config) {
        bail!("fix GITHUB_OWNER / GITHUB_REPO");
    }
    check(&schema, &json!({"owner": config["owner"]}));

    let hub = Hub::builder().start().await?;
    let handle = Listener::builder()
        .source(hub.composio_source())
        .shared_state(Arc::clone(&stars))
        .build()?
        .spawn();
    tokio::time::timeout(Duration::from_secs(10), async {
        while hub.subscribers() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .context("the listener did not subscribe to the local hub")?;
    let repo = format!(
        "{}/{}",
        config["owner"].as_str().unwrap_or_default(),
        config["repo"].as_str().unwrap_or_default()
    );
    for (who, at) in [
        ("octocat", "2026-11-20T09:00:00Z"),
        ("hubot", "2026-11-20T09:05:00Z"),
    ] {
        hub.publish_payload(
            TRIGGER,
            json!({"action": "created", "repository_name": repo, "repository_url": format!("https://github.com/{repo}"),
                   "starred_by": who, "starred_at": at}),
        )?;
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        while stars.count.load(Ordering::SeqCst) < 2 {
            stars.changed.notified().await;
        }
    })
    .await
    .context("the star events were not handled")?;
    let stopped = handle.shutdown().await?;
    hub.shutdown().await;
    println!(
        "done: {} events, {} handler runs",
        stopped.stats.events, stopped.stats.runs
    );
    Ok(())
}
