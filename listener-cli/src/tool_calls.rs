//! `trigger-hub tool-calls`: prints the tool executions a hub recorded (what a bot "posted"
//! through `POST /api/v3.1/tools/execute/{tool_slug}`), from its log `GET /hub/tool-calls`.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::http::{self, HubArgs};

/// Print the tool calls the hub recorded (oldest first), readably or as JSON lines.
///
/// The hub runs no tool: it records each execution (slug, arguments, user, connected
/// account, time) and answers as the tool would. With --follow, keeps printing new calls
/// until Ctrl-C (or --count of them).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this tool's calls (case-insensitive), e.g. SLACK_SEND_MESSAGE.
    #[arg(long, value_name = "SLUG")]
    pub tool: Option<String>,
    /// Only the most recent N calls.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Print each call as one JSON line (the hub's record).
    #[arg(long)]
    pub json: bool,
    /// Keep printing new calls as they are recorded.
    #[arg(long, short)]
    pub follow: bool,
    /// With --follow: exit after this many new calls.
    #[arg(long, value_name = "N", requires = "follow")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// How often --follow reads the log.
const POLL: Duration = Duration::from_millis(200);

/// Prints the recent calls, then (with --follow) every new one.
pub async fn run(args: Args) -> Result<()> {
    let base = args.hub.base()?;
    let client = http::client()?;
    let items = fetch(&client, &base, &args).await?;
    let start = items.len().saturating_sub(args.limit);
    for item in &items[start..] {
        print(item, args.json)?;
    }
    if !args.follow {
        if items.is_empty() {
            eprintln!(
                "{}: the hub at {base} has recorded no tool calls{}",
                crate::PROG,
                args.tool
                    .as_deref()
                    .map(|t| format!(" of {t}"))
                    .unwrap_or_default()
            );
        }
        return Ok(());
    }
    if args.count == Some(0) {
        return Ok(());
    }
    // The log is bounded and drops its oldest entries, so the new calls are those not in
    // the previous read.
    let mut seen: HashSet<String> = items.iter().map(key).collect();
    let mut printed = 0u64;
    let mut tick = tokio::time::interval(POLL);
    let stop = crate::stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tick.tick() => {}
        }
        let items = fetch(&client, &base, &args).await?;
        for item in items.iter().filter(|i| !seen.contains(&key(i))) {
            print(item, args.json)?;
            printed += 1;
            if args.count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
        seen = items.iter().map(key).collect();
    }
}

/// A call's identity in the log: its log id (fresh per call).
fn key(item: &Value) -> String {
    item["log_id"].as_str().unwrap_or_default().to_owned()
}

/// The hub's log, oldest first, filtered by --tool.
async fn fetch(client: &reqwest::Client, base: &str, args: &Args) -> Result<Vec<Value>> {
    let mut url = http::parse_url(&format!("{base}/hub/tool-calls"))?;
    if let Some(tool) = &args.tool {
        url.query_pairs_mut().append_pair("tool", tool);
    }
    let response = client
        .get(url)
        .header("x-api-key", args.hub.api_key())
        .send()
        .await
        .map_err(|e| http::unreachable(base, &e))?;
    let log = http::json_or_error(base, response)
        .await
        .context("cannot read the hub's tool calls")?;
    Ok(log["items"].as_array().cloned().unwrap_or_default())
}

fn print(item: &Value, json: bool) -> Result<()> {
    use std::io::Write;
    let text = if json {
        item.to_string()
    } else {
        describe(item)
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`tool-calls | head`) ends the command quietly.
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        anyhow::bail!("standard output closed");
    }
    Ok(())
}

/// Slug, log id, time and outcome on one line; who ran it; the indented arguments.
fn describe(item: &Value) -> String {
    let s = |k: &str| match item[k].as_str() {
        Some(v) if !v.trim().is_empty() => crate::one_line(v),
        _ => "-".to_owned(),
    };
    let outcome = if item["successful"].as_bool() == Some(true) {
        "ok".to_owned()
    } else {
        format!("failed: {}", s("error"))
    };
    let mut out = format!(
        "{}  {}  {}  {outcome}\n",
        s("tool_slug"),
        s("log_id"),
        s("at")
    );
    out.push_str(&format!(
        "  user {}  account {}",
        s("user_id"),
        s("connected_account_id")
    ));
    if let Some(version) = item["version"].as_str() {
        out.push_str(&format!("  version {}", crate::one_line(version)));
    }
    out.push('\n');
    let arguments = serde_json::to_string_pretty(&item["arguments"])
        .unwrap_or_else(|_| item["arguments"].to_string());
    for line in arguments.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out.truncate(out.trim_end().len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_read_as_slug_account_and_arguments() {
        let ok = json!({"log_id": "log_1", "tool_slug": "SLACK_SEND_MESSAGE", "user_id": "alice",
            "connected_account_id": "ca_1", "version": null, "successful": true, "error": null,
            "arguments": {"channel": "C1", "mrkdwn": false}, "data": {}, "at": "2026-12-01T10:00:00.000Z"});
        let text = describe(&ok);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "SLACK_SEND_MESSAGE  log_1  2026-12-01T10:00:00.000Z  ok"
        );
        assert_eq!(lines[1], "  user alice  account ca_1");
        assert!(text.contains("  \"channel\": \"C1\""), "{text}");
        assert!(text.ends_with('}'), "{text:?}");

        let failed = json!({"log_id": "log_2", "tool_slug": "SLACK_SEND_MESSAGE", "user_id": "",
            "connected_account_id": "ca_1", "version": "20250905_00", "successful": false,
            "error": "channel_not_found", "arguments": {}, "at": "t"});
        let text = describe(&failed);
        assert!(text.starts_with("SLACK_SEND_MESSAGE  log_2  t  failed: channel_not_found\n  user -  account ca_1  version 20250905_00"), "{text}");
        // A malformed record prints dashes, never a panic.
        assert!(describe(&json!("odd")).starts_with("-  -  -  failed: -"));
    }
}
