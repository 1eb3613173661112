//! `trigger-hub tail`: connects as a listener and prints every event it receives.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use listener_core::source::composio::ComposioSource;
use listener_core::source::Health;
use listener_core::{Filter, Handler, Listener, ListenerBuilder, TriggerEvent};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::http::{self, HubArgs};

/// Connect as a listener and print every event (pretty, or one JSON line each with --json).
///
/// The source: the hub at --hub (or LISTENER_HUB_URL), through Composio's realtime protocol
/// exactly as a listener would use it. Without either, the environment decides as for any
/// listener (`Listener::from_env`: COMPOSIO_API_KEY with COMPOSIO_BASE_URL / COMPOSIO_PUSHER_*,
/// or LISTENER_WS_URL); when that names no source either, the hub at http://127.0.0.1:8790.
/// "listening" is printed on stderr once connected.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub hub: HubArgs,
    /// Print each event as one JSON line (the serialized `TriggerEvent`).
    #[arg(long)]
    pub json: bool,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// The event filters of `tail` and `listen`.
#[derive(Debug, Clone, clap::Args)]
pub struct FilterArgs {
    /// Only events with this trigger slug or lifecycle type (case-insensitive).
    #[arg(long, value_name = "SLUG")]
    pub name: Option<String>,
    /// Only events of this toolkit (case-insensitive).
    #[arg(long, value_name = "TOOLKIT")]
    pub toolkit: Option<String>,
    /// Only events of this user id.
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
}

impl FilterArgs {
    /// The listener filter these flags describe.
    pub fn filter(&self) -> Filter {
        let mut filter = Filter::new();
        if let Some(name) = &self.name {
            filter = filter.name(name);
        }
        if let Some(toolkit) = &self.toolkit {
            filter = filter.toolkit(toolkit);
        }
        if let Some(user) = &self.user {
            filter = filter.user_id(user);
        }
        filter
    }
}

/// Listens until Ctrl-C, `--count` events, or the source failing for good.
pub async fn run(args: Args) -> Result<()> {
    if args.count == Some(0) {
        return Ok(());
    }
    let builder = source(&args).await?;
    let filter = args.filter.filter();
    // Handlers run concurrently; printing happens here, one event at a time. The bounded
    // queue makes a slow terminal hold the listener back instead of buffering without end.
    let (tx, mut rx) = mpsc::channel::<Arc<TriggerEvent>>(256);
    let handler = Handler::new("tail", filter, move |event: Arc<TriggerEvent>| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event).await;
        }
    });
    let handle = builder
        .without_registered_handlers()
        .handler(handler)
        .build()
        .context("cannot start the listener")?
        .spawn();

    let mut printed = 0u64;
    let mut announced = false;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let stop = crate::stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            Some(event) = rx.recv() => {
                // An event proves the subscription even if no tick has seen it yet.
                announce(&mut announced);
                print_event(&event, args.json)?;
                printed += 1;
                if args.count.is_some_and(|n| printed >= n) {
                    break;
                }
            }
            _ = tick.tick() => {
                if handle.health().iter().any(|s| s.health == Health::Connected) {
                    announce(&mut announced);
                }
                if handle.is_finished() {
                    return match handle.join().await {
                        Ok(_) => Err(anyhow!("the event source ended after {printed} event(s)")),
                        Err(e) => Err(anyhow::Error::new(e).context("the listener stopped")),
                    };
                }
            }
            _ = &mut stop => break,
        }
    }
    handle.shutdown().await.context("the listener stopped")?;
    Ok(())
}

/// Tells, once, on stderr that events are being received.
fn announce(announced: &mut bool) {
    if !*announced {
        eprintln!("{}: listening (Ctrl-C to stop)", crate::PROG);
        *announced = true;
    }
}

/// The listener's source: a hub given by URL, else the environment, else the default hub.
async fn source(args: &Args) -> Result<ListenerBuilder> {
    if args.hub.url.is_none() {
        let configured = ["COMPOSIO_API_KEY", "LISTENER_WS_URL"]
            .iter()
            .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()));
        if configured {
            return Listener::from_env().context("cannot configure the listener");
        }
    }
    let base = args.hub.base()?;
    let key = args.hub.api_key();
    check_hub(&base, key).await?;
    Ok(Listener::builder().source(hub_source(&base, key)?))
}

/// A `ComposioSource` for the hub at `base`, as `RunningHub::composio_source` builds one:
/// API at `base`, websocket on the same host and port, TLS only for https.
pub fn hub_source(base: &str, api_key: &str) -> Result<ComposioSource> {
    let url = http::parse_url(base)?;
    let host = url
        .host_str()
        .context("the hub URL has no host")?
        .to_owned();
    let port = url
        .port_or_known_default()
        .context("the hub URL has no port")?;
    let source = ComposioSource::new(api_key)
        .base_url(base)
        .map_err(|e| anyhow!("{e}"))?
        .pusher_host(host)
        .pusher_port(port)
        .pusher_tls(url.scheme() == "https");
    Ok(source)
}

/// Fails fast, with one clear line, when the hub is not there or refuses the key (the
/// listener itself would keep retrying).
pub async fn check_hub(base: &str, api_key: &str) -> Result<()> {
    let client = http::client()?;
    let response = client
        .get(format!("{base}/api/v3/internal/sdk/realtime/credentials"))
        .header("x-api-key", api_key)
        .send()
        .await
        .map_err(|e| http::unreachable(base, &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.bytes().await.unwrap_or_default();
    if matches!(status.as_u16(), 401 | 403) {
        bail!(
            "the hub at {base} refused the API key ({}); pass the hub's key with --api-key",
            http::error_message(&body)
        );
    }
    bail!(
        "the hub at {base} answered {status}: {}",
        http::error_message(&body)
    )
}

/// Prints one event on standard output: pretty, or one JSON line.
pub fn print_event(event: &TriggerEvent, json: bool) -> Result<()> {
    use std::io::Write;
    let text = if json {
        serde_json::to_string(event).context("cannot encode the event")?
    } else {
        pretty(event)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`tail | head`) ends the command quietly.
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        bail!("standard output closed");
    }
    Ok(())
}

/// Slug and ids on one line, the details and the indented payload below.
fn pretty(ev: &TriggerEvent) -> String {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let mut out = format!(
        "{}  {}  {}\n",
        or_dash(&ev.trigger_slug),
        or_dash(&ev.event_id),
        ev.timestamp.as_deref().unwrap_or("-")
    );
    out.push_str(&format!(
        "  toolkit {}  user {}  trigger {}  account {}  envelope {}\n",
        or_dash(&ev.toolkit_slug),
        or_dash(&ev.user_id),
        or_dash(&ev.id),
        or_dash(&ev.metadata.connected_account.id),
        ev.envelope
    ));
    let payload = match &ev.payload {
        Value::Null => "null".to_owned(),
        v => serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()),
    };
    for line in payload.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_shows_slug_ids_and_payload() {
        let ev = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", serde_json::json!({"text": "hi"}))
            .with_event_id("evt_1")
            .with_user_id("u1");
        let text = pretty(&ev);
        assert!(text.starts_with("SLACK_RECEIVE_MESSAGE  evt_1"), "{text}");
        assert!(text.contains("toolkit SLACK"), "{text}");
        assert!(text.contains("user u1"), "{text}");
        assert!(text.contains("\"text\": \"hi\""), "{text}");
    }

    #[test]
    fn hub_sources_follow_the_url() {
        assert!(hub_source("http://127.0.0.1:9", "k").is_ok());
        assert!(hub_source("https://hub.example:8443", "k").is_ok());
        assert!(hub_source("ws://nope", "k").is_err());
    }
}
