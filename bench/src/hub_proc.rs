//! The hub under benchmark, in its own process (so it does not share the client's runtime).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use listener_core::hub::Hub;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Arguments of the hidden `serve-hub` command.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Frames queued per connection (large: the benchmark publishes in bursts).
    #[arg(long, default_value_t = 2_000_000)]
    queue: usize,
}

const FIXTURE: &str = include_str!("../../tests/fixtures/v3_slack_receive_message.json");

/// Serves until stdin closes, printing `READY <addr> <app-key> <app-secret> <api-key>`.
///
/// A stdin line `publish N TAG` publishes N copies of the V3 Slack fixture with ids
/// `evt_TAG_i`, each stamped with `data.sent_ns` (Unix nanoseconds) when published, then
/// prints `published N`: the benchmarked process spends nothing on producing events.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let hub = Hub::builder()
        .subscriber_queue(args.queue)
        .max_body_bytes(1 << 30)
        .start()
        .await?;
    println!(
        "READY {} {} {} {}",
        hub.addr(),
        hub.app_key(),
        hub.app_secret(),
        hub.api_key()
    );
    let mut template: serde_json::Value = serde_json::from_str(FIXTURE)?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let ["publish", n, tag] = parts.as_slice() {
            let n: usize = n.parse()?;
            for i in 0..n {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_nanos() as u64;
                template["id"] = serde_json::Value::String(format!("evt_{tag}_{i}"));
                template["data"]["sent_ns"] = serde_json::Value::from(now);
                hub.publish(&template)?;
            }
            println!("published {n}");
        }
    }
    hub.shutdown().await;
    Ok(())
}

/// A hub child process.
pub struct HubProc {
    _child: Child,
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    stdout: tokio::sync::Mutex<tokio::io::Lines<BufReader<tokio::process::ChildStdout>>>,
    pub addr: SocketAddr,
    pub app_key: String,
    pub app_secret: String,
    pub api_key: String,
    http: reqwest::Client,
}

impl HubProc {
    /// Starts `serve-hub` from this same binary.
    pub async fn start() -> anyhow::Result<HubProc> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("serve-hub")
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
            parts.len() == 5 && parts[0] == "READY",
            "unexpected hub output: {line}"
        );
        let stdin = child.stdin.take().context("hub stdin")?;
        Ok(HubProc {
            stdin: tokio::sync::Mutex::new(stdin),
            stdout: tokio::sync::Mutex::new(lines),
            addr: parts[1].parse()?,
            app_key: parts[2].to_owned(),
            app_secret: parts[3].to_owned(),
            api_key: parts[4].to_owned(),
            _child: child,
            http: reqwest::Client::new(),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn channel(&self) -> &'static str {
        "private-pr_local_triggers"
    }

    /// Trigger-channel subscribers right now.
    pub async fn subscribers(&self) -> anyhow::Result<u64> {
        let v: serde_json::Value = serde_json::from_slice(
            &self
                .http
                .get(format!("{}/hub/status", self.base_url()))
                .send()
                .await?
                .bytes()
                .await?,
        )?;
        Ok(v["subscribers"].as_u64().unwrap_or(0))
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

    /// Has the hub process publish `n` fixture events (ids `evt_TAG_i`) as fast as it can;
    /// returns once they are all handed to the subscribers' queues.
    pub async fn publish_synthetic(&self, n: usize, tag: &str) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(format!("publish {n} {tag}\n").as_bytes())
            .await?;
        stdin.flush().await?;
        let line = self.stdout.lock().await.next_line().await?;
        anyhow::ensure!(
            line.as_deref() == Some(&format!("published {n}")),
            "hub answered {line:?}"
        );
        Ok(())
    }
}
