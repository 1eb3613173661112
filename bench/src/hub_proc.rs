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

/// Serves until stdin closes, printing `READY <addr> <app-key> <app-secret> <api-key>`.
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
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(_)) = stdin.next_line().await {}
    hub.shutdown().await;
    Ok(())
}

/// A hub child process.
pub struct HubProc {
    _child: Child,
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
        Ok(HubProc {
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

    /// Publishes NDJSON lines in one request.
    pub async fn publish_ndjson(&self, body: String) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/hub/events", self.base_url()))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "publish answered {}", r.status());
        Ok(())
    }
}
