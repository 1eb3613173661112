//! Soak (RELIABILITY.md, "Soak"): many events at a steady rate, with RSS, open descriptors
//! and the p99 latency of the last window sampled along the way, written to a CSV and drawn
//! as a small SVG.
//!
//! - `soak realtime`: the hub (own process) publishes paced events; the listener is this
//!   process (`ComposioSource`, one no-op handler), so the samples are of this process.
//!   Latency: the hub stamps each event as it publishes it, the handler reads the stamp.
//! - `soak webhook`: ours (`serve-webhook`, own process, sampled) receives signed
//!   deliveries from keep-alive connections of this process; latency: send to status line.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context};
use listener_core::source::composio::ComposioSource;
use listener_core::source::Health;
use listener_core::{Filter, Handler, Listener, Payload};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::attack::{read_answer, signed_request};
use crate::hub_proc::HubProc;
use crate::procstat;
use crate::stats::{quantile, tree_cpu_time};

#[derive(clap::Subcommand)]
pub enum Soak {
    /// Events over the realtime path (hub -> ComposioSource) at a steady rate.
    Realtime(RealtimeArgs),
    /// Signed deliveries to the webhook source at a steady rate.
    Webhook(WebhookArgs),
}

#[derive(clap::Args)]
pub struct RealtimeArgs {
    /// Events in all.
    #[arg(long, default_value_t = 10_000_000)]
    pub events: u64,
    /// Events per second offered (default: half of ours' peak against the hub in
    /// BENCHMARKS.md, 137k/s; on a machine where hub and listener share few cores, measure
    /// this setup's own peak with `--rate 0` and offer half of it). 0: as fast as the setup
    /// goes, batches of 10,000 published back to back while at most 100,000 events are
    /// unhandled, so the achieved rate is this setup's peak.
    #[arg(long, default_value_t = 68_000)]
    pub rate: u64,
    #[command(flatten)]
    pub out: Output,
}

#[derive(clap::Args)]
pub struct WebhookArgs {
    /// Deliveries in all.
    #[arg(long, default_value_t = 1_000_000)]
    pub deliveries: u64,
    /// Deliveries per second offered (default: half of ours' peak under wrk in
    /// BENCHMARKS.md, ~60k/s).
    #[arg(long, default_value_t = 30_000)]
    pub rate: u64,
    /// Keep-alive connections carrying them.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    #[command(flatten)]
    pub out: Output,
}

#[derive(clap::Args)]
pub struct Output {
    /// Seconds between samples.
    #[arg(long, default_value_t = 5)]
    pub sample_secs: u64,
    /// Where the samples go (CSV).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Where the plot goes (SVG: RSS and p99 over time).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

pub async fn run(soak: Soak) -> anyhow::Result<String> {
    match soak {
        Soak::Realtime(a) => realtime(a).await,
        Soak::Webhook(a) => webhook(a).await,
    }
}

/// One sample.
#[derive(Clone, Copy)]
struct Sample {
    secs: f64,
    done: u64,
    rss_kib: u64,
    fds: usize,
    p50: Duration,
    p99: Duration,
    cpu: Duration,
}

/// Takes a sample every `every` of `pid` and the latencies since the last sample.
struct Samples {
    pid: u32,
    started: Instant,
    cpu0: Duration,
    rows: Vec<Sample>,
}

impl Samples {
    fn new(pid: u32) -> Samples {
        Samples {
            pid,
            started: Instant::now(),
            cpu0: tree_cpu_time(pid),
            rows: Vec::new(),
        }
    }

    fn take(&mut self, done: u64, window: &Mutex<Vec<Duration>>) -> Sample {
        let mut lat = std::mem::take(&mut *window.lock().unwrap_or_else(|e| e.into_inner()));
        lat.sort();
        let s = Sample {
            secs: self.started.elapsed().as_secs_f64(),
            done,
            rss_kib: procstat::rss_kib(self.pid),
            fds: procstat::fds(self.pid),
            p50: quantile(&lat, 0.5),
            p99: quantile(&lat, 0.99),
            cpu: tree_cpu_time(self.pid).saturating_sub(self.cpu0),
        };
        eprintln!(
            "{:>7.1} s {:>10} done  rss {:>6.1} MiB  fds {:>4}  p50 {:>7.3} ms  p99 {:>7.3} ms",
            s.secs,
            s.done,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.p50.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3
        );
        self.rows.push(s);
        s
    }

    /// Writes the CSV and SVG, and returns the summary row.
    fn finish(&self, what: &str, out: &Output, total: u64) -> anyhow::Result<String> {
        if let Some(path) = &out.csv {
            let mut csv = String::from("secs,done,rss_kib,fds,p50_ms,p99_ms,cpu_secs\n");
            for s in &self.rows {
                csv.push_str(&format!(
                    "{:.1},{},{},{},{:.3},{:.3},{:.2}\n",
                    s.secs,
                    s.done,
                    s.rss_kib,
                    s.fds,
                    s.p50.as_secs_f64() * 1e3,
                    s.p99.as_secs_f64() * 1e3,
                    s.cpu.as_secs_f64()
                ));
            }
            std::fs::write(path, csv).with_context(|| format!("{}", path.display()))?;
        }
        if let Some(path) = &out.svg {
            write_svg(path, what, &self.rows)?;
        }
        ensure!(self.rows.len() >= 2, "too few samples");
        // Flatness: the first sample after a tenth of the run (warm) against the end.
        let warm = self
            .rows
            .iter()
            .find(|s| s.done >= total / 10)
            .unwrap_or(&self.rows[0]);
        let last = self.rows.last().unwrap_or(warm);
        let max_rss = self.rows.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        let (min_fds, max_fds) = (
            self.rows.iter().map(|s| s.fds).min().unwrap_or(0),
            self.rows.iter().map(|s| s.fds).max().unwrap_or(0),
        );
        let mut p99s: Vec<Duration> = self.rows.iter().map(|s| s.p99).collect();
        p99s.sort();
        Ok(format!(
            "| soak: {what} | {} in {:.0} s ({:.0}/s achieved), {} samples | RSS {} MiB warm -> {} MiB at the end (max {}); fds {}-{}; p99 per window: median {} ms, max {} ms; CPU {:.1} µs per event |",
            last.done,
            last.secs,
            last.done as f64 / last.secs.max(0.001),
            self.rows.len(),
            procstat::mib(warm.rss_kib),
            procstat::mib(last.rss_kib),
            procstat::mib(max_rss),
            min_fds,
            max_fds,
            crate::stats::ms(p99s[p99s.len() / 2]),
            crate::stats::ms(*p99s.last().unwrap_or(&Duration::ZERO)),
            last.cpu.as_secs_f64() * 1e6 / last.done.max(1) as f64,
        ))
    }
}

/// With `--rate 0`: events published per batch, and the most left unhandled before the next.
const UNPACED_BATCH: u64 = 10_000;
const UNPACED_BACKLOG: u64 = 100_000;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

async fn realtime(args: RealtimeArgs) -> anyhow::Result<String> {
    let hub = HubProc::start().await?;
    let seen = Arc::new(AtomicU64::new(0));
    let window = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let (counter, lat) = (Arc::clone(&seen), Arc::clone(&window));
    let handle = Listener::builder()
        .without_registered_handlers()
        .source(
            ComposioSource::new(&hub.api_key)
                .base_url(hub.base_url())?
                .pusher_host(hub.addr.ip().to_string())
                .pusher_port(hub.addr.port())
                .pusher_tls(false),
        )
        .handler(Handler::new(
            "noop",
            Filter::new().name("SLACK_RECEIVE_MESSAGE"),
            move |Payload(p): Payload<Value>| {
                let now = now_ns();
                let sent = p["sent_ns"].as_u64().unwrap_or(now);
                lat.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Duration::from_nanos(now.saturating_sub(sent)));
                counter.fetch_add(1, Ordering::Relaxed);
                async {}
            },
        ))
        .build()?
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !handle
        .health()
        .iter()
        .any(|s| s.health == Health::Connected)
    {
        ensure!(Instant::now() < deadline, "listener never subscribed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    hub.await_subscribers(1).await?;

    let mut samples = Samples::new(std::process::id());
    samples.take(0, &window);
    let tick = Duration::from_millis(10);
    let unpaced = args.rate == 0;
    let per_tick = if unpaced {
        UNPACED_BATCH
    } else {
        ((args.rate as f64 * tick.as_secs_f64()).round() as u64).max(1)
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut next_sample = Instant::now() + Duration::from_secs(args.sample_secs());
    let mut sent = 0u64;
    let mut t = 0u64;
    while sent < args.events {
        if unpaced {
            // Back to back, but never more than the bound ahead of the handler.
            while sent.saturating_sub(seen.load(Ordering::Relaxed)) > UNPACED_BACKLOG {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } else {
            interval.tick().await;
        }
        let n = per_tick.min(args.events - sent);
        hub.publish_synthetic(n as usize, &format!("s{t}")).await?;
        sent += n;
        t += 1;
        if Instant::now() >= next_sample {
            samples.take(seen.load(Ordering::Relaxed), &window);
            next_sample += Duration::from_secs(args.sample_secs());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.load(Ordering::Relaxed) < sent {
        ensure!(
            Instant::now() < deadline,
            "events stopped arriving at {} of {sent}",
            seen.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    samples.take(seen.load(Ordering::Relaxed), &window);
    handle.shutdown().await?;
    let offered = if unpaced {
        format!("unpaced (batches of {UNPACED_BATCH}, at most {UNPACED_BACKLOG} unhandled)")
    } else {
        format!("{} events/s offered", args.rate)
    };
    samples.finish(
        &format!("realtime, {offered} (hub -> ComposioSource -> 1 no-op handler)"),
        &args.out,
        args.events,
    )
}

impl RealtimeArgs {
    fn sample_secs(&self) -> u64 {
        self.out.sample_secs.max(1)
    }
}

async fn webhook(args: WebhookArgs) -> anyhow::Result<String> {
    let ours = crate::webhook::start_ours_with(&[]).await?;
    let addr: std::net::SocketAddr = ours.addr.parse()?;
    let pid = ours.child.id().context("pid")?;
    let window = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let per_conn = args.deliveries.div_ceil(args.connections as u64);
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate.max(1) as f64);
    let mut workers = Vec::new();
    for c in 0..args.connections {
        let (window, done, failed) = (Arc::clone(&window), Arc::clone(&done), Arc::clone(&failed));
        workers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut tcp: Option<TcpStream> = None;
            let mut buf = Vec::new();
            for i in 0..per_conn {
                tick.tick().await;
                let req = signed_request(&format!("evt_soak_{c}_{i}"), false);
                let started = Instant::now();
                let answer = async {
                    if tcp.is_none() {
                        let t = TcpStream::connect(addr).await?;
                        t.set_nodelay(true)?;
                        tcp = Some(t);
                        buf.clear();
                    }
                    let t = tcp.as_mut().context("connection")?;
                    t.write_all(&req).await?;
                    read_answer(t, &mut buf).await
                }
                .await;
                match answer {
                    Ok(200) => {
                        window
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(started.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tcp = None;
                    }
                }
            }
        }));
    }
    let mut samples = Samples::new(pid);
    samples.take(0, &window);
    let every = Duration::from_secs(args.out.sample_secs.max(1));
    let mut all = futures_util::future::join_all(workers);
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = tokio::time::sleep(every) => {
                samples.take(done.load(Ordering::Relaxed), &window);
            }
        }
    }
    samples.take(done.load(Ordering::Relaxed), &window);
    let failed = failed.load(Ordering::SeqCst);
    ours.stop().await?;
    let row = samples.finish(
        &format!(
            "webhook, {} deliveries/s offered on {} keep-alive connections (signed V3 Slack, unique ids)",
            args.rate, args.connections
        ),
        &args.out,
        args.deliveries,
    )?;
    Ok(format!("{row}\n\n{failed} deliveries not answered 200."))
}

/// Two stacked panels (RSS MiB, p99 ms) against seconds, as a small SVG.
fn write_svg(path: &Path, title: &str, rows: &[Sample]) -> anyhow::Result<()> {
    let (w, h, pad) = (640.0, 180.0, 48.0);
    let t_max = rows.last().map_or(1.0, |s| s.secs).max(1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{pad}\" y=\"16\" font-size=\"12\">{}</text>\n",
        2.0 * h + 40.0,
        xml_escape(title)
    );
    fn rss_mib(s: &Sample) -> f64 {
        s.rss_kib as f64 / 1024.0
    }
    fn p99_ms(s: &Sample) -> f64 {
        s.p99.as_secs_f64() * 1e3
    }
    type Panel = (&'static str, fn(&Sample) -> f64, &'static str);
    let panels: [Panel; 2] = [
        ("RSS (MiB)", rss_mib, "#1f77b4"),
        ("p99 latency of the window (ms)", p99_ms, "#d62728"),
    ];
    for (k, (label, value, colour)) in panels.iter().enumerate() {
        let top = 28.0 + k as f64 * (h + 6.0);
        let (x0, x1, y0, y1) = (pad, w - 12.0, top + h - 24.0, top + 14.0);
        let v_max = rows.iter().map(value).fold(0.0, f64::max).max(1e-9) * 1.1;
        let points: Vec<String> = rows
            .iter()
            .map(|s| {
                let x = x0 + (x1 - x0) * s.secs / t_max;
                let y = y0 - (y0 - y1) * value(s) / v_max;
                format!("{x:.1},{y:.1}")
            })
            .collect();
        svg.push_str(&format!(
            "<text x=\"{x0}\" y=\"{}\">{label}</text>\n<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#888\"/>\n<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#888\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.1}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n<text x=\"{x1}\" y=\"{}\" text-anchor=\"end\">{t_max:.0} s</text>\n<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            y1 - 2.0,
            x0 - 4.0,
            y1 + 4.0,
            v_max,
            x0 - 4.0,
            y0 + 4.0,
            y0 + 14.0,
            points.join(" ")
        ));
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).with_context(|| format!("{}", path.display()))?;
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
