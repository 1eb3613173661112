//! The realtime server under benchmark, driven from its own process (so it does not share
//! the client's runtime): our hub, or sockudo fed through its HTTP API by that process.
//!
//! Either way the child runs a hub for Composio's REST endpoints (credentials, channel
//! auth), so `ComposioSource` and Composio's Python SDK take their production path; with
//! sockudo the hub signs with sockudo's app key and secret and the websocket is sockudo's.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use listener_hub::{Hub, HubConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::sockudo::{self, SockudoProc};

/// Arguments of the hidden `serve-hub` command.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Frames queued per connection (large: the benchmark publishes in bursts).
    #[arg(long, default_value_t = 2_000_000)]
    queue: usize,
    /// Publish through the sockudo listening here instead of the hub's own websocket.
    #[arg(long)]
    sockudo: Option<SocketAddr>,
}

const FIXTURE: &str = include_str!("../../tests/fixtures/v3_slack_receive_message.json");

/// The trigger channel of the hub's default project.
const CHANNEL: &str = "private-pr_local_triggers";

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Where the child publishes.
enum Publisher {
    Hub,
    Sockudo {
        addr: SocketAddr,
        http: reqwest::Client,
        /// Batch bodies built ahead by `prepare` (tag, bodies), so a throughput run times
        /// the server, not the building of its input.
        prepared: Option<(String, Vec<Vec<u8>>)>,
    },
}

/// Serves until stdin closes, printing `READY <ws-addr> <api-addr> <app-key> <app-secret>
/// <api-key>`. Stdin commands, each answered with one line:
///
/// - `publish N TAG`: publishes N copies of the V3 Slack fixture with ids `evt_TAG_i`,
///   each stamped with `data.sent_ns` (Unix nanoseconds) as it is built, then prints
///   `published N`: the benchmarked process spends nothing on producing events;
/// - `prepare N TAG` (sockudo only): builds those events now for the next `publish N TAG`;
///   prints `prepared N`;
/// - `subscribers`: prints `subscribers K`, the trigger channel's subscribers.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = HubConfig::default();
    if args.sockudo.is_some() {
        config.app_key = sockudo::APP_KEY.into();
        config.app_secret = sockudo::APP_SECRET.into();
    }
    let hub = Hub::with_config(config)
        .subscriber_queue(args.queue)
        .max_body_bytes(1 << 30)
        .start()
        .await?;
    anyhow::ensure!(
        hub.channel() == CHANNEL,
        "unexpected channel {}",
        hub.channel()
    );
    let mut publisher = match args.sockudo {
        None => Publisher::Hub,
        Some(addr) => Publisher::Sockudo {
            addr,
            http: reqwest::Client::new(),
            prepared: None,
        },
    };
    let ws_addr = args.sockudo.unwrap_or(hub.addr());
    println!(
        "READY {ws_addr} {} {} {} {}",
        hub.addr(),
        hub.app_key(),
        hub.app_secret(),
        hub.api_key()
    );
    let mut template: serde_json::Value = serde_json::from_str(FIXTURE)?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        let parts: Vec<&str> = line.split_whitespace().collect();
        match (parts.as_slice(), &mut publisher) {
            (["publish", n, tag], Publisher::Hub) => {
                let n: usize = n.parse()?;
                for i in 0..n {
                    template["id"] = serde_json::Value::String(format!("evt_{tag}_{i}"));
                    template["data"]["sent_ns"] = serde_json::Value::from(now_ns());
                    hub.publish(&template)?;
                }
                println!("published {n}");
            }
            (
                ["publish", n, tag],
                Publisher::Sockudo {
                    addr,
                    http,
                    prepared,
                },
            ) => {
                let n: usize = n.parse()?;
                let bodies = match prepared.take() {
                    Some((t, bodies)) if t == *tag => bodies,
                    _ => build_bodies(&mut template, n, tag)?,
                };
                sockudo::publish_bodies(http, *addr, bodies).await?;
                println!("published {n}");
            }
            (["prepare", n, tag], Publisher::Sockudo { prepared, .. }) => {
                let n: usize = n.parse()?;
                *prepared = Some(((*tag).to_owned(), build_bodies(&mut template, n, tag)?));
                println!("prepared {n}");
            }
            (["subscribers"], publisher) => {
                let count = match publisher {
                    Publisher::Hub => hub.subscribers() as u64,
                    Publisher::Sockudo { addr, http, .. } => {
                        sockudo::subscription_count(http, *addr, CHANNEL).await?
                    }
                };
                println!("subscribers {count}");
            }
            _ => anyhow::bail!("unknown command {line:?}"),
        }
    }
    hub.shutdown().await;
    Ok(())
}

fn build_bodies(
    template: &mut serde_json::Value,
    n: usize,
    tag: &str,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let events: Vec<String> = (0..n)
        .map(|i| {
            template["id"] = serde_json::Value::String(format!("evt_{tag}_{i}"));
            template["data"]["sent_ns"] = serde_json::Value::from(now_ns());
            template.to_string()
        })
        .collect();
    sockudo::batch_bodies(
        CHANNEL,
        listener_core::source::pusher::protocol::TRIGGER_EVENT,
        &events,
    )
}

/// The server child process (and sockudo, when it is the server).
pub struct HubProc {
    _child: Child,
    _sockudo: Option<SockudoProc>,
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    stdout: tokio::sync::Mutex<tokio::io::Lines<BufReader<tokio::process::ChildStdout>>>,
    /// Which server the clients subscribe to: `hub` or `sockudo`.
    pub name: &'static str,
    /// Where the Pusher websocket listens (the hub, or sockudo).
    pub addr: SocketAddr,
    /// Where Composio's REST endpoints are served (always the hub).
    pub api_addr: SocketAddr,
    pub app_key: String,
    pub app_secret: String,
    pub api_key: String,
}

impl HubProc {
    /// Starts `serve-hub` from this same binary, publishing through its own hub.
    pub async fn start() -> anyhow::Result<HubProc> {
        Self::spawn(None).await
    }

    /// Starts sockudo from `bin` and a `serve-hub` child publishing through it.
    pub async fn start_sockudo(bin: &std::path::Path) -> anyhow::Result<HubProc> {
        let sockudo = SockudoProc::start(bin).await?;
        Self::spawn(Some(sockudo)).await
    }

    async fn spawn(sockudo: Option<SockudoProc>) -> anyhow::Result<HubProc> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve-hub");
        if let Some(s) = &sockudo {
            cmd.arg("--sockudo").arg(s.addr.to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("hub stdout")?).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("hub did not start")??
            .context("hub exited")?;
        let parts: Vec<&str> = line.split_whitespace().collect();
        anyhow::ensure!(
            parts.len() == 6 && parts[0] == "READY",
            "unexpected hub output: {line}"
        );
        let stdin = child.stdin.take().context("hub stdin")?;
        Ok(HubProc {
            stdin: tokio::sync::Mutex::new(stdin),
            stdout: tokio::sync::Mutex::new(lines),
            name: if sockudo.is_some() { "sockudo" } else { "hub" },
            addr: parts[1].parse()?,
            api_addr: parts[2].parse()?,
            app_key: parts[3].to_owned(),
            app_secret: parts[4].to_owned(),
            api_key: parts[5].to_owned(),
            _child: child,
            _sockudo: sockudo,
        })
    }

    /// Composio's API base URL (the hub's).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn channel(&self) -> &'static str {
        CHANNEL
    }

    /// Sends one command line and returns the answer line.
    async fn command(&self, line: &str) -> anyhow::Result<String> {
        let mut stdin = self.stdin.lock().await;
        let mut stdout = self.stdout.lock().await;
        stdin.write_all(format!("{line}\n").as_bytes()).await?;
        stdin.flush().await?;
        stdout
            .next_line()
            .await?
            .with_context(|| format!("the server process ended on {line:?}"))
    }

    /// Trigger-channel subscribers right now.
    pub async fn subscribers(&self) -> anyhow::Result<u64> {
        let answer = self.command("subscribers").await?;
        answer
            .strip_prefix("subscribers ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected answer {answer:?}"))
    }

    /// Waits until exactly `n` clients are subscribed.
    pub async fn await_subscribers(&self, n: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.subscribers().await? != n {
            anyhow::ensure!(Instant::now() < deadline, "subscribers never reached {n}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// With sockudo, builds the events of the next `publish_synthetic(n, tag)` ahead, so
    /// the run times the server and not the building of its input (a no-op for the hub,
    /// which builds each frame as it publishes, like a server does).
    pub async fn prepare(&self, n: usize, tag: &str) -> anyhow::Result<()> {
        if self.name == "sockudo" {
            let answer = self.command(&format!("prepare {n} {tag}")).await?;
            anyhow::ensure!(answer == format!("prepared {n}"), "answered {answer:?}");
        }
        Ok(())
    }

    /// Has the server process publish `n` fixture events (ids `evt_TAG_i`) as fast as it
    /// can; returns once they are all handed over (the hub: queued to its subscribers;
    /// sockudo: accepted by its HTTP API).
    pub async fn publish_synthetic(&self, n: usize, tag: &str) -> anyhow::Result<()> {
        let answer = self.command(&format!("publish {n} {tag}")).await?;
        anyhow::ensure!(answer == format!("published {n}"), "answered {answer:?}");
        Ok(())
    }
}
