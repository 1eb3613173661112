//! `trigger-hub hub`: runs the embeddable local hub until Ctrl-C / SIGTERM and prints what a
//! listener needs to use it.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use listener_hub::{Hub, RunningHub};

use crate::http::ApiKeyArg;

/// Run a local hub until Ctrl-C and print how listeners reach it.
///
/// The hub serves Composio's realtime endpoints and a Pusher websocket, the ingest API
/// (`POST /hub/events`), webhook subscriptions and their delivery log, Composio's tool
/// execution endpoint, which records every call (`trigger-hub tool-calls` shows them), and
/// Composio's triggers API: trigger types (a bundled catalog, plus `--catalog` files),
/// trigger instances and webhook endpoints. It prints the base URL, the ingest URL and the
/// `export KEY=VALUE` lines a listener needs (`Listener::from_env` picks them up).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8790")]
    pub addr: SocketAddr,
    /// The API key clients must send as `x-api-key`.
    #[command(flatten)]
    pub key: ApiKeyArg,
    /// Events whose envelope is longer than this many bytes are sent in chunks.
    #[arg(long, value_name = "BYTES", default_value_t = 10 * 1024)]
    pub chunk_size: usize,
    /// A JSON file of trigger types to serve besides the bundled ones: one type, an array of
    /// them, or `{"items": [...]}`, each in Composio's shape (slug, name, toolkit, config and
    /// payload JSON schemas…). Repeatable; a type replaces a bundled one of the same slug.
    #[arg(long, value_name = "FILE")]
    pub catalog: Vec<PathBuf>,
    /// Refuse (409) trigger events that match no enabled trigger instance, instead of
    /// publishing them.
    #[arg(long)]
    pub strict_triggers: bool,
    /// Most trigger instances the hub keeps.
    #[arg(long, value_name = "N", default_value_t = listener_hub::DEFAULT_MAX_TRIGGER_INSTANCES)]
    pub max_trigger_instances: usize,
}

/// Starts the hub, prints how to reach it, serves until asked to stop.
pub async fn run(args: Args) -> Result<()> {
    if args.key.api_key.trim().is_empty() {
        anyhow::bail!("--api-key must not be empty");
    }
    let mut builder = Hub::builder()
        .addr(args.addr)
        .api_key(args.key.api_key)
        .chunk_size(args.chunk_size)
        .strict_triggers(args.strict_triggers)
        .max_trigger_instances(args.max_trigger_instances);
    for file in args.catalog {
        builder = builder.catalog_file(file);
    }
    let hub = builder
        .start()
        .await
        .with_context(|| format!("cannot start the hub on {}", args.addr))?;
    print!("{}", banner(&hub));
    crate::stop_signal().await;
    eprintln!("{}: stopping the hub", crate::PROG);
    hub.shutdown().await;
    Ok(())
}

/// What the hub prints at start: URLs, then one `export` line per variable.
fn banner(hub: &RunningHub) -> String {
    let base = hub.base_url();
    let mut out = String::new();
    out.push_str(&format!("hub listening on {base}\n"));
    out.push_str(&format!("  dashboard:     {}\n", hub.dashboard_url()));
    out.push_str(&format!("  ingest:        POST {base}/hub/events\n"));
    out.push_str(&format!(
        "  event log:     GET  {base}/hub/events, POST {base}/hub/events/{{id}}/resend\n"
    ));
    out.push_str(&format!("  deliveries:    GET  {base}/hub/deliveries\n"));
    out.push_str(&format!(
        "  subscriptions: {base}/api/v3.1/webhook_subscriptions\n"
    ));
    out.push_str(&format!(
        "  tools:         POST {base}/api/v3.1/tools/execute/{{tool_slug}}\n"
    ));
    out.push_str(&format!("  tool calls:    GET  {base}/hub/tool-calls\n"));
    out.push_str(&format!(
        "  triggers:      {base}/api/v3.1/triggers_types ({} types), {base}/api/v3.1/trigger_instances\n",
        hub.trigger_types().len()
    ));
    out.push_str(&format!(
        "  endpoints:     POST {base}/api/v3/webhook_endpoints\n"
    ));
    out.push_str(&format!("  status:        GET  {base}/hub/status\n"));
    out.push_str("# a listener's environment (Listener::from_env):\n");
    for (key, value) in hub.env() {
        out.push_str(&format!("export {key}={value}\n"));
    }
    out.push_str(&format!(
        "# try: {prog} tail --hub {base}   and   {prog} send SLACK_RECEIVE_MESSAGE --hub {base}\n",
        prog = crate::PROG
    ));
    out
}
