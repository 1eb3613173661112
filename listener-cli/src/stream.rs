//! `trigger-hub stream`: the JetStream stream of listeners running several replicas — its
//! state and its groups', replaying dead letters, starting a group at a time.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use listener_core::jetstream::{ops, JetStream};

/// Inspect and operate the JetStream stream that relays and workers share.
///
/// The connection and the stream come from the same variables the listeners read
/// (`LISTENER_NATS_URL`, `LISTENER_NATS_STREAM`, `LISTENER_NATS_SUBJECT_PREFIX`, and
/// `LISTENER_NATS_USER`/`_PASSWORD`, `_TOKEN`, `_CREDS`, `_TLS_*` for credentials), or from
/// the options below.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The NATS servers (comma-separated).
    #[arg(
        long,
        value_name = "URL",
        env = "LISTENER_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats: String,
    /// The stream.
    #[arg(long, value_name = "NAME", env = "LISTENER_NATS_STREAM", default_value = listener_core::jetstream::DEFAULT_STREAM, global = true)]
    pub stream: String,
    /// The subject prefix of the stream's events.
    #[arg(long, value_name = "PREFIX", env = "LISTENER_NATS_SUBJECT_PREFIX", default_value = listener_core::jetstream::DEFAULT_SUBJECT_PREFIX, global = true)]
    pub prefix: String,
    #[command(subcommand)]
    pub command: StreamCommand,
}

/// What to do with the stream.
#[derive(Debug, clap::Subcommand)]
pub enum StreamCommand {
    /// The stream's events and bytes, and each group's pending, unanswered, redelivered
    /// events and dead letters.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put a group's dead letters back into the stream, oldest first, for that group only
    /// (its handlers that had succeeded on an event still do not run again).
    Replay {
        /// The group whose dead letters to replay.
        #[arg(long, value_name = "GROUP")]
        group: String,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        limit: usize,
    },
    /// Start a group at a point in time: its consumer is made anew, delivering the events
    /// stored from then on (a new group replays them; an existing one is moved).
    StartGroup {
        /// The group.
        #[arg(long, value_name = "GROUP")]
        group: String,
        /// An RFC 3339 time (`2026-12-01T00:00:00Z`), or a duration ago (`90m`, `2h`, `1day`).
        #[arg(long, value_name = "WHEN")]
        since: String,
    },
}

/// The stream settings of `args`, with the rest from the environment.
fn config(args: &Args) -> Result<JetStream> {
    let lookup = |key: &str| match key {
        "LISTENER_NATS_URL" => Some(args.nats.clone()),
        "LISTENER_NATS_STREAM" => Some(args.stream.clone()),
        "LISTENER_NATS_SUBJECT_PREFIX" => Some(args.prefix.clone()),
        // Role and group do not matter to these commands.
        "LISTENER_NATS_ROLE" | "LISTENER_NATS_GROUP" | "LISTENER_NATS_START_AT" => None,
        other => std::env::var(other).ok(),
    };
    match JetStream::from_lookup(&lookup)? {
        Some(js) => Ok(js),
        None => bail!("no NATS server given (--nats or LISTENER_NATS_URL)"),
    }
}

/// `WHEN` as a time: RFC 3339, or a duration before now.
fn parse_since(text: &str, now: SystemTime) -> Result<SystemTime> {
    if let Ok(at) = humantime::parse_rfc3339_weak(text.trim()) {
        return Ok(at);
    }
    let ago: Duration = humantime::parse_duration(text.trim()).with_context(|| {
        format!("`{text}` is neither an RFC 3339 time (2026-12-01T00:00:00Z) nor a duration (90m)")
    })?;
    now.checked_sub(ago)
        .with_context(|| format!("{text} ago is before 1970"))
}

/// Runs one `stream` command.
pub async fn run(args: Args) -> Result<()> {
    let js = config(&args)?;
    match args.command {
        StreamCommand::Status { json } => {
            let state = ops::stream_state(&js).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status_json(&state))?);
            } else {
                print!("{}", status_table(&state));
            }
        }
        StreamCommand::Replay { group, limit } => {
            let n = ops::replay_dead_letters(&js, &group, limit).await?;
            println!(
                "replayed {n} dead letter(s) of group {group} into {}",
                js.stream_name()
            );
        }
        StreamCommand::StartGroup { group, since } => {
            let at = parse_since(&since, SystemTime::now())?;
            ops::start_group_at(&js, &group, at).await?;
            println!(
                "group {group} of {} starts at {}",
                js.stream_name(),
                humantime::format_rfc3339_seconds(at)
            );
        }
    }
    Ok(())
}

fn status_json(state: &ops::StreamState) -> serde_json::Value {
    serde_json::json!({
        "stream": state.stream,
        "subjects": state.subjects,
        "messages": state.messages,
        "bytes": state.bytes,
        "first_sequence": state.first_sequence,
        "last_sequence": state.last_sequence,
        "replicas": state.replicas,
        "dead_letters": state.dead_letters,
        "groups": state.groups.iter().map(|g| serde_json::json!({
            "group": g.group,
            "pending": g.pending,
            "unanswered": g.ack_pending,
            "redelivered": g.redelivered,
            "waiting_pulls": g.waiting,
            "dead_letters": g.dead_letters,
        })).collect::<Vec<_>>(),
    })
}

fn status_table(state: &ops::StreamState) -> String {
    let mut out = format!(
        "stream {} ({}): {} events, {} bytes, sequences {}..{}, {} replica(s), {} dead letter(s)\n",
        state.stream,
        state.subjects.join(", "),
        state.messages,
        state.bytes,
        state.first_sequence,
        state.last_sequence,
        state.replicas,
        state.dead_letters
    );
    if state.groups.is_empty() {
        out.push_str("no groups\n");
        return out;
    }
    out.push_str(&format!(
        "{:<24} {:>10} {:>11} {:>12} {:>13}\n",
        "group", "pending", "unanswered", "redelivered", "dead letters"
    ));
    for g in &state.groups {
        out.push_str(&format!(
            "{:<24} {:>10} {:>11} {:>12} {:>13}\n",
            g.group, g.pending, g.ack_pending, g.redelivered, g.dead_letters
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_ago() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_200);
        assert_eq!(
            parse_since("2026-12-01T00:00:00Z", now).unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_083_200)
        );
        assert_eq!(
            parse_since("90m", now).unwrap(),
            now - Duration::from_secs(5400)
        );
        assert!(parse_since("yesterday-ish", now).is_err());
    }
}
