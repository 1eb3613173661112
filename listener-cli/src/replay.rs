//! `trigger-hub replay`: publishes recorded events, one JSON event per line, in order,
//! optionally rate-limited, with a progress bar on stderr.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value};
use tokio::time::{interval, MissedTickBehavior};

use crate::http::{self, HubArgs};

/// Publish recorded events from a JSON Lines file, in order.
///
/// Each line is one event: any envelope (V3, V2, V1, legacy realtime) is sent as it is; a
/// bare event `{"trigger_slug", "payload", "user_id"?}` is wrapped by the hub; a line
/// printed by `tail --json` is sent as a bare event keeping its slug, payload and ids. Blank
/// lines are skipped. A bad line (not JSON, or refused by the hub) is reported on stderr
/// with its line number and the replay goes on (or stops, with --stop-on-error); the exit
/// status is non-zero if any line failed. An unreachable hub stops the replay at once.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON Lines file of recorded events; `-` reads standard input.
    #[arg(value_name = "FILE.jsonl")]
    pub file: String,
    /// At most this many events per second, e.g. `10` or `10/s` (default: as fast as the
    /// hub takes them).
    #[arg(long, value_name = "N/s", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Stop at the first bad line instead of reporting it and going on.
    #[arg(long)]
    pub stop_on_error: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Parses `N` or `N/s` (N > 0, fractions allowed).
fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    let number = s.trim().strip_suffix("/s").unwrap_or(s.trim());
    match number.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a rate: expected events per second such as 10 or 10/s"
        )),
    }
}

/// One line to publish.
struct Line {
    number: usize,
    text: String,
}

/// Reads, publishes and reports.
pub async fn run(args: Args) -> Result<()> {
    let base = args.hub.base()?;
    let text = if args.file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read events from standard input")?;
        text
    } else {
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {}", args.file))?
    };
    let lines: Vec<Line> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Line {
            number: i + 1,
            text: l.to_owned(),
        })
        .collect();
    if lines.is_empty() {
        bail!("{} holds no events", display_name(&args.file));
    }

    let client = http::client()?;
    let bar = progress_bar(lines.len() as u64);
    let mut ticker = args.rate.map(|rate| {
        let mut t = interval(Duration::from_secs_f64(1.0 / rate));
        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
        t
    });
    let (mut sent, mut failed) = (0usize, 0usize);
    for line in &lines {
        if let Some(t) = ticker.as_mut() {
            t.tick().await;
        }
        let outcome = match prepare(&line.text) {
            Ok(body) => crate::send::publish(&client, &base, args.hub.api_key(), body).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(_) => sent += 1,
            Err(e) if is_transport(&e) => {
                bar.abandon();
                return Err(e.context(format!("line {}", line.number)));
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| {
                    eprintln!(
                        "{}: line {}: {}",
                        crate::PROG,
                        line.number,
                        crate::one_line(&format!("{e:#}"))
                    )
                });
                if args.stop_on_error {
                    bar.abandon();
                    bail!(
                        "stopped at line {} after publishing {sent} event(s)",
                        line.number
                    );
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("replayed {sent} of {} event(s) to {base}", lines.len());
    if failed > 0 {
        bail!("{failed} line(s) failed");
    }
    Ok(())
}

fn display_name(file: &str) -> &str {
    if file == "-" {
        "standard input"
    } else {
        file
    }
}

/// Whether the error means the hub could not be reached at all (no point going on).
fn is_transport(e: &anyhow::Error) -> bool {
    e.downcast_ref::<http::Unreachable>().is_some()
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(len: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} events {per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// The body to post for one line: the line itself when it is an envelope or a bare event;
/// a `tail --json` line (a serialized `TriggerEvent`) is turned into a bare event.
fn prepare(line: &str) -> Result<Vec<u8>> {
    let value: Value = serde_json::from_str(line).map_err(|e| anyhow!("not JSON: {e}"))?;
    let Value::Object(map) = value else {
        bail!("not a JSON object");
    };
    if is_tailed_event(&map) {
        return Ok(bare_from_tailed(&map).to_string().into_bytes());
    }
    Ok(line.as_bytes().to_vec())
}

/// `tail --json` prints serialized `TriggerEvent`s: they carry `envelope` and `event_id`
/// beside `trigger_slug` and `payload`, which no wire envelope does.
fn is_tailed_event(map: &Map<String, Value>) -> bool {
    map.contains_key("trigger_slug")
        && map.contains_key("envelope")
        && map.contains_key("event_id")
        && map.contains_key("payload")
}

fn bare_from_tailed(map: &Map<String, Value>) -> Value {
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| Value::String(s.to_owned()))
            .unwrap_or(Value::Null)
    };
    let account = map.get("metadata").and_then(|m| m.get("connected_account"));
    serde_json::json!({
        "trigger_slug": map.get("trigger_slug").cloned().unwrap_or(Value::Null),
        "payload": map.get("payload").cloned().unwrap_or(Value::Null),
        "user_id": text(map.get("user_id")),
        "trigger_id": text(map.get("id")),
        "connected_account_id": text(account.and_then(|a| a.get("id"))),
        "auth_config_id": text(account.and_then(|a| a.get("auth_config_id"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!(parse_rate("10").unwrap(), 10.0);
        assert_eq!(parse_rate("2.5/s").unwrap(), 2.5);
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-1/s").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("inf").is_err());
    }

    #[test]
    fn lines_are_prepared() {
        let envelope =
            r#"{"id":"evt_1","type":"composio.trigger.message","metadata":{},"data":{}}"#;
        assert_eq!(prepare(envelope).unwrap(), envelope.as_bytes());
        assert!(prepare("nope")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert!(prepare("[1]").is_err());

        let event = listener_core::TriggerEvent::new("GITHUB_STAR", serde_json::json!({"n": 1}))
            .with_user_id("u1");
        let line = serde_json::to_string(&event).unwrap();
        let bare: Value = serde_json::from_slice(&prepare(&line).unwrap()).unwrap();
        assert_eq!(bare["trigger_slug"], "GITHUB_STAR");
        assert_eq!(bare["payload"]["n"], 1);
        assert_eq!(bare["user_id"], "u1");
        assert_eq!(bare["trigger_id"], Value::Null);
    }
}
