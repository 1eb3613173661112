//! `trigger-hub listen`: listens on Composio's realtime channel (or a hub's), optionally
//! through a temporary trigger it creates and disables on the way out; prints, records and
//! forwards each event.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use listener_core::composio_api::{ActiveTriggersQuery, ComposioClient, UpsertTrigger};
use listener_core::source::composio::ComposioSource;
use listener_core::source::Health;
use listener_core::webhook::{signed_headers, WebhookSecret};
use listener_core::{Handler, Listener, TriggerEvent, V3_TRIGGER_MESSAGE};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, watch};

use crate::http::{self, ApiKeyArg};
use crate::tail::{self, FilterArgs};

/// Listen to trigger events of Composio (or a hub), optionally through a temporary trigger.
///
/// Against Composio with COMPOSIO_API_KEY (COMPOSIO_BASE_URL and COMPOSIO_PUSHER_* as for
/// any listener), or against the hub at --hub. With --trigger SLUG, the trigger is upserted
/// for --user-id (or --connected-account) with --config, and disabled again on exit,
/// Ctrl-C included (unless it was already active before: then it is left as it was). Each
/// event is printed (pretty, or a JSON line with --json), appended to --record FILE.jsonl
/// (a line `trigger-hub replay` publishes again), and with --forward-to signed like a
/// Composio webhook delivery and POSTed to that URL, its status and latency printed on
/// stderr. Stops after --max-events, after --timeout, on Ctrl-C / SIGTERM, or when the
/// source fails for good; the exit status is non-zero only for errors.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Listen on the hub at this URL instead of Composio.
    #[arg(long = "hub", value_name = "URL")]
    pub hub: Option<String>,
    #[command(flatten)]
    pub key: ApiKeyArg,
    /// Print each event as one JSON line (the serialized `TriggerEvent`).
    #[arg(long)]
    pub json: bool,
    /// Upsert a trigger of this type for the time of the listen, then disable it.
    #[arg(long, value_name = "SLUG")]
    pub trigger: Option<String>,
    /// The trigger's configuration, a JSON object (default `{}`).
    #[arg(long, value_name = "JSON", requires = "trigger")]
    pub config: Option<String>,
    /// The connected account the trigger watches (instead of --user-id's).
    #[arg(long, value_name = "ID", requires = "trigger")]
    pub connected_account: Option<String>,
    /// The user whose connected account the trigger watches.
    #[arg(
        long,
        value_name = "ID",
        requires = "trigger",
        default_value = "default"
    )]
    pub user_id: String,
    /// Stop after this many events.
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Stop after this long, e.g. `30s` or `5m`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Append each event to this JSON Lines file (for `trigger-hub replay`).
    #[arg(long, value_name = "FILE.jsonl")]
    pub record: Option<PathBuf>,
    /// Sign each event like a Composio webhook delivery and POST it to this URL.
    #[arg(long, value_name = "URL")]
    pub forward_to: Option<String>,
    /// The signing secret for --forward-to (what the webhook server checks).
    #[arg(
        long,
        value_name = "SECRET",
        env = "COMPOSIO_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the timeout must be longer than zero".into()),
        Err(e) => Err(format!(
            "`{s}` is not a duration ({e}): write it like 30s or 5m"
        )),
    }
}

/// Where events come from, and the client that manages triggers there.
struct Service {
    source: ComposioSource,
    client: ComposioClient,
    /// For messages: "Composio" or "the hub at …".
    name: String,
}

async fn service(args: &Args) -> Result<Service> {
    match &args.hub {
        Some(url) => {
            let base = http::base_url(url)?;
            let key = &args.key.api_key;
            tail::check_hub(&base, key).await?;
            let client = ComposioClient::builder(key.as_str())
                .base_url(base.as_str())
                .build()
                .map_err(|e| anyhow!("{e}"))?;
            Ok(Service {
                source: tail::hub_source(&base, key)?,
                client,
                name: format!("the hub at {base}"),
            })
        }
        None => {
            let source = ComposioSource::from_env().map_err(|e| {
                anyhow!("{e}: set COMPOSIO_API_KEY to listen to Composio, or give --hub URL")
            })?;
            let client = ComposioClient::from_env().map_err(|e| anyhow!("{e}"))?;
            Ok(Service {
                source,
                client,
                name: "Composio".into(),
            })
        }
    }
}

/// A trigger this command upserted, and whether it must be disabled on the way out.
struct Temporary {
    id: String,
    /// It was active before this command: leave it so.
    existed: bool,
}

/// Upserts the trigger of --trigger, noting whether it was already active.
async fn upsert(args: &Args, slug: &str, client: &ComposioClient) -> Result<Temporary> {
    let config = match &args.config {
        None => Value::Object(Map::new()),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => bail!("--config must be a JSON object, like '{{\"channel\": \"C123\"}}'"),
            Err(e) => bail!("--config is not JSON: {e}"),
        },
    };
    let mut request = match &args.connected_account {
        Some(id) => UpsertTrigger::for_connected_account(id),
        None => UpsertTrigger::for_user(&args.user_id),
    };
    request.trigger_config = config;
    let before: HashSet<String> = {
        let mut query = ActiveTriggersQuery::default();
        query.trigger_names.push(slug.to_owned());
        match &args.connected_account {
            Some(id) => query.connected_account_ids.push(id.clone()),
            None => query.user_ids.push(args.user_id.clone()),
        }
        client
            .list_active_triggers(&query)
            .await
            .map(|page| {
                page.items
                    .into_iter()
                    .filter(|t| t.is_enabled())
                    .map(|t| t.id)
                    .collect()
            })
            .unwrap_or_default()
    };
    let upserted = client
        .upsert_trigger(slug, &request)
        .await
        .with_context(|| format!("cannot create the trigger {slug}"))?;
    let existed = before.contains(&upserted.trigger_id);
    eprintln!(
        "{}: trigger {} {} ({slug})",
        crate::PROG,
        upserted.trigger_id,
        if existed {
            "already active: left active on exit"
        } else {
            "created: disabled on exit"
        }
    );
    Ok(Temporary {
        id: upserted.trigger_id,
        existed,
    })
}

/// Why the listen ended.
enum End {
    MaxEvents,
    Timeout,
    Signal,
}

/// Listens, then disables the temporary trigger whatever happened.
pub async fn run(args: Args) -> Result<()> {
    if args.secret.is_some() && args.forward_to.is_none() {
        bail!("--secret is only used with --forward-to");
    }
    let forward = match &args.forward_to {
        None => None,
        Some(url) => {
            let Some(secret) = args.secret.as_deref().filter(|s| !s.is_empty()) else {
                bail!("--forward-to needs the signing secret: --secret or COMPOSIO_WEBHOOK_SECRET");
            };
            http::parse_url(url).context("--forward-to")?;
            Some(Forwarder {
                url: url.clone(),
                secret: WebhookSecret::composio(secret),
                client: http::client()?,
            })
        }
    };
    let mut record = match &args.record {
        None => None,
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open {} for --record", path.display()))?,
        ),
    };
    // Ctrl-C / SIGTERM from here on ends the listen and still disables the trigger, even
    // while it is being created.
    let (stopped, stop) = watch::channel(false);
    tokio::spawn(async move {
        crate::stop_signal().await;
        let _ = stopped.send(true);
    });
    let service = service(&args).await?;
    let temporary = match &args.trigger {
        Some(slug) => Some(upsert(&args, slug, &service.client).await?),
        None => None,
    };
    let outcome = listen(
        &args,
        service.source,
        forward.as_ref(),
        record.as_mut(),
        stop,
    )
    .await;
    if let Some(t) = temporary.filter(|t| !t.existed) {
        match service.client.disable_trigger(&t.id).await {
            Ok(_) => eprintln!("{}: trigger {} disabled", crate::PROG, t.id),
            Err(e) => {
                let e = anyhow!(
                    "cannot disable the trigger {} on {}: {e}",
                    t.id,
                    service.name
                );
                return Err(match outcome {
                    Ok(_) => e,
                    Err(first) => first.context(e.to_string()),
                });
            }
        }
    }
    match outcome? {
        End::MaxEvents | End::Signal => Ok(()),
        End::Timeout => {
            eprintln!("{}: --timeout reached", crate::PROG);
            Ok(())
        }
    }
}

async fn listen(
    args: &Args,
    source: ComposioSource,
    forward: Option<&Forwarder>,
    mut record: Option<&mut std::fs::File>,
    mut stop: watch::Receiver<bool>,
) -> Result<End> {
    if *stop.borrow() {
        return Ok(End::Signal);
    }
    if args.max_events == Some(0) {
        return Ok(End::MaxEvents);
    }
    // Printing, recording and forwarding happen here, one event at a time; the bounded
    // queue holds the listener back instead of buffering without end.
    let (tx, mut rx) = mpsc::channel::<Arc<TriggerEvent>>(256);
    let handler = Handler::new(
        "listen",
        args.filter.filter(),
        move |event: Arc<TriggerEvent>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event).await;
            }
        },
    );
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(source)
        .handler(handler)
        .build()
        .context("cannot start the listener")?
        .spawn();
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let timeout = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timeout);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut announced = false;
    let mut seen = 0u64;
    let end = loop {
        tokio::select! {
            Some(event) = rx.recv() => {
                announce(&mut announced);
                tail::print_event(&event, args.json)?;
                if let Some(file) = record.as_deref_mut() {
                    let line = serde_json::to_string(&*event).context("cannot encode the event")?;
                    writeln!(file, "{line}").context("cannot write to --record")?;
                }
                if let Some(forward) = forward {
                    forward.send(&event).await;
                }
                seen += 1;
                if args.max_events.is_some_and(|n| seen >= n) {
                    break End::MaxEvents;
                }
            }
            _ = tick.tick() => {
                if handle.health().iter().any(|s| s.health == Health::Connected) {
                    announce(&mut announced);
                }
                if handle.is_finished() {
                    return match handle.join().await {
                        Ok(_) => Err(anyhow!("the event source ended after {seen} event(s)")),
                        Err(e) => Err(anyhow::Error::new(e).context("the listener stopped")),
                    };
                }
            }
            _ = &mut timeout => break End::Timeout,
            _ = stop.wait_for(|stopped| *stopped) => break End::Signal,
        }
    };
    handle.shutdown().await.context("the listener stopped")?;
    Ok(end)
}

fn announce(announced: &mut bool) {
    if !*announced {
        eprintln!("{}: listening (Ctrl-C to stop)", crate::PROG);
        *announced = true;
    }
}

/// Signs events like Composio's webhook deliveries and POSTs them to a local server.
struct Forwarder {
    url: String,
    secret: WebhookSecret,
    client: reqwest::Client,
}

impl Forwarder {
    /// POSTs one event; prints the status and latency (or why it failed) on stderr. A
    /// failed forward does not stop the listen.
    async fn send(&self, event: &TriggerEvent) {
        let id = if event.event_id.is_empty() {
            crate::sign::fresh_id()
        } else {
            event.event_id.clone()
        };
        let body = v3_body(event, &id).to_string();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-composio-webhook-version", "V3");
        for (name, value) in signed_headers(&self.secret, &id, now, body.as_bytes()) {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let outcome = request.body(body).send().await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(response) => eprintln!(
                "{}: forwarded {id} -> {} {} in {ms:.1} ms",
                crate::PROG,
                self.url,
                response.status().as_u16()
            ),
            Err(e) => eprintln!(
                "{}: forwarding {id} to {} failed after {ms:.1} ms: {}",
                crate::PROG,
                self.url,
                crate::one_line(&e.to_string())
            ),
        }
    }
}

/// The V3 webhook body Composio sends for `event`, with `id` as the delivery's id.
fn v3_body(event: &TriggerEvent, id: &str) -> Value {
    let account = &event.metadata.connected_account;
    let timestamp = event
        .timestamp
        .clone()
        .unwrap_or_else(|| humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    json!({
        "id": id,
        "type": event.event_type.as_deref().unwrap_or(V3_TRIGGER_MESSAGE),
        "timestamp": timestamp,
        "metadata": {
            "log_id": event.metadata.log_id,
            "trigger_slug": event.trigger_slug,
            "trigger_id": event.id,
            "connected_account_id": account.id,
            "auth_config_id": account.auth_config_id,
            "user_id": event.user_id,
        },
        "data": event.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_event_decodes_back_to_itself() {
        let event = TriggerEvent::new("SLACK_RECEIVE_MESSAGE", json!({"text": "hi"}))
            .with_event_id("evt_1")
            .with_trigger_id("ti_1")
            .with_user_id("u1");
        let body = v3_body(&event, "evt_1").to_string();
        let back = listener_core::decode::decode(body.as_bytes()).unwrap();
        assert_eq!(back.trigger_slug, "SLACK_RECEIVE_MESSAGE");
        assert_eq!(back.event_id, "evt_1");
        assert_eq!(back.id, "ti_1");
        assert_eq!(back.user_id, "u1");
        assert_eq!(back.payload, json!({"text": "hi"}));
    }

    #[test]
    fn durations_are_humantime() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
    }
}
