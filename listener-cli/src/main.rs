//! `trigger-hub`: the command-line companion of `listener-core`.
//!
//! Runs a local hub (Composio's realtime protocol and webhook subscriptions, offline),
//! publishes and replays events into it, tails them as a listener would see them, forwards
//! them to a local webhook server, shows the tool calls bots made through it, listens to
//! Composio itself through a temporary trigger (`listen`), generates payload types from
//! trigger type schemas (`types`), signs and verifies webhook requests, and inspects and
//! operates the JetStream stream of listeners running as several replicas (`stream`). Every command
//! has `--help`; an error is one line on stderr and a non-zero exit status (2 for a usage
//! error, 1 otherwise).

mod forward;
mod http;
mod hub;
mod listen;
mod replay;
mod send;
mod sign;
mod stream;
mod tail;
mod tool_calls;
mod types;
mod verify;

use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

/// The program name used in messages.
pub const PROG: &str = "trigger-hub";

/// The subcommands' names.
const SUBCOMMANDS: &[&str] = &[
    "hub",
    "send",
    "replay",
    "tail",
    "listen",
    "forward",
    "tool-calls",
    "types",
    "sign",
    "verify",
    "stream",
];

/// Develop trigger handlers offline: run a local hub, publish, replay, tail and forward
/// trigger events.
#[derive(Debug, Parser)]
#[command(name = PROG, version, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Hub(hub::Args),
    Send(send::Args),
    Replay(replay::Args),
    Tail(tail::Args),
    Listen(listen::Args),
    Forward(forward::Args),
    ToolCalls(tool_calls::Args),
    Types(types::Args),
    Sign(sign::Args),
    Verify(verify::Args),
    Stream(stream::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Hub(args) => hub::run(args).await,
            Command::Send(args) => send::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Tail(args) => tail::run(args).await,
            Command::Listen(args) => listen::run(args).await,
            Command::Forward(args) => forward::run(args).await,
            Command::ToolCalls(args) => tool_calls::run(args).await,
            Command::Types(args) => types::run(args).await,
            Command::Sign(args) => sign::run(args),
            Command::Verify(args) => verify::run(args),
            Command::Stream(args) => stream::run(args).await,
        }
    });
    // Background tasks (listener sources, hub connections) must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints `trigger-hub: error: …` on one line and returns exit status 1.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("{PROG}: error: {}", one_line(&format!("{e:#}")));
    ExitCode::FAILURE
}

/// Help and version go to stdout with status 0; a usage error is one line with status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            eprintln!("{PROG}: error: {}", usage_line(&e.render().to_string()));
            ExitCode::from(2)
        }
    }
}

/// clap's multi-line usage error as one line: the message and its details up to the usage
/// section, then where to find help (`trigger-hub send --help`).
fn usage_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    // Without a usage section (invalid values), the subcommand named on the command line.
    let mut command = std::env::args()
        .skip(1)
        .find(|a| SUBCOMMANDS.contains(&a.as_str()))
        .map_or_else(|| PROG.to_owned(), |sub| format!("{PROG} {sub}"));
    for line in rendered.lines().map(str::trim) {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            command = usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['[', '<', '-']))
                .collect::<Vec<_>>()
                .join(" ");
            break;
        }
        if line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() && !line.starts_with("tip:") {
            parts.push(line);
        }
    }
    let message = one_line(&parts.join(" "));
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let message = if message.is_empty() {
        "invalid arguments"
    } else {
        message
    };
    format!("{message} (see `{command} --help`)")
}

/// Collapses a message onto one line.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Source trouble (a lost connection, a refused login) is logged at `warn`.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if verbose == 0 {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves when the process is asked to stop: Ctrl-C, or SIGTERM on Unix.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_fit_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  <SLUG>\n\nUsage: trigger-hub send <SLUG>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered),
            "the following required arguments were not provided: <SLUG> (see `trigger-hub send --help`)"
        );
        assert_eq!(
            usage_line(""),
            "invalid arguments (see `trigger-hub --help`)"
        );
    }
}
