//! Memory: idle RSS of a listener with 100 handlers, and RSS over many events through the
//! realtime path (the dedupe window and chunk buffers are bounded: RSS must not grow with N).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use listener_core::source::composio::ComposioSource;
use listener_core::source::Health;
use listener_core::{Filter, Handler, Listener, TriggerEvent};

use crate::hub_proc::HubProc;

/// Memory benchmark settings.
#[derive(clap::Args)]
pub struct Args {
    /// Events pushed through the realtime path.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Events per published batch (the next batch waits until this one is handled).
    #[arg(long, default_value_t = 20_000)]
    pub batch: usize,
}

/// Resident set size of this process, in KiB.
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

pub async fn run(args: Args) -> anyhow::Result<String> {
    let hub = HubProc::start().await?;
    let seen = Arc::new(AtomicUsize::new(0));
    let mut builder = Listener::builder().without_registered_handlers().source(
        ComposioSource::new(&hub.api_key)
            .base_url(hub.base_url())?
            .pusher_host(hub.addr.ip().to_string())
            .pusher_port(hub.addr.port())
            .pusher_tls(false),
    );
    let counter = Arc::clone(&seen);
    builder = builder.handler(Handler::new(
        "count",
        Filter::new().name("SLACK_RECEIVE_MESSAGE"),
        move |_: Arc<TriggerEvent>| {
            counter.fetch_add(1, Ordering::Relaxed);
            async {}
        },
    ));
    for i in 1..100 {
        builder = builder.handler(Handler::new(
            format!("h{i}"),
            Filter::new().name(format!("OTHER_EVENT_{i}")),
            |_: Arc<TriggerEvent>| async {},
        ));
    }
    let handle = builder.build()?.spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !handle
        .health()
        .iter()
        .any(|s| s.health == Health::Connected)
    {
        anyhow::ensure!(Instant::now() < deadline, "listener never subscribed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.await_subscribers(1).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = rss_kib()?;

    let mut warm = 0;
    let mut sent = 0;
    let started = Instant::now();
    while sent < args.events {
        let n = args.batch.min(args.events - sent);
        hub.publish_synthetic(n, &format!("mem{sent}")).await?;
        sent += n;
        let deadline = Instant::now() + Duration::from_secs(120);
        while seen.load(Ordering::Relaxed) < sent {
            anyhow::ensure!(
                Instant::now() < deadline,
                "events stopped arriving at {}",
                seen.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if warm == 0 && sent >= args.events / 10 {
            warm = rss_kib()?;
        }
    }
    let elapsed = started.elapsed();
    let end = rss_kib()?;
    handle.shutdown().await?;
    let growth = end as i64 - warm as i64;
    let mut t = String::new();
    t.push_str(&format!(
        "### Memory (listener with 100 handlers, {} events through the realtime path in {:.1} s)\n\n",
        args.events,
        elapsed.as_secs_f64()
    ));
    t.push_str("| measure | MiB | target |\n| --- | ---: | --- |\n");
    t.push_str(&format!(
        "| idle RSS, connected and subscribed | {} | < 10 |\n",
        mib(idle)
    ));
    t.push_str(&format!(
        "| RSS after {} events (warm) | {} | |\n",
        args.events / 10,
        mib(warm)
    ));
    t.push_str(&format!(
        "| RSS after {} events | {} | |\n",
        args.events,
        mib(end)
    ));
    t.push_str(&format!(
        "| growth from warm to end | {:.1} | < 5 |\n",
        growth as f64 / 1024.0
    ));
    Ok(t)
}
