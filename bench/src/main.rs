//! Side-by-side benchmarks (see BENCHMARKS.md): every variant runs in the same invocation,
//! on the same machine, against the same server, so the ratios are comparable.
//!
//! `bash scripts/bench.sh` runs every benchmark (each in a fresh process) and prints the tables.

mod attack;
mod hub_proc;
mod jetstream;
mod memory;
mod procstat;
mod realtime;
mod soak;
mod sockudo;
mod stats;
mod webhook;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Side-by-side benchmarks of the trigger listener")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Realtime throughput (floor, ours, ours with 10,000 handlers, Composio's Python SDK)
    /// and latency at half of ours' peak rate.
    Realtime(realtime::Args),
    /// Idle RSS with 100 handlers, and RSS growth over many events through the realtime path.
    Memory(memory::Args),
    /// Webhook throughput under wrk (floor, ours, FastAPI + uvicorn with Composio's SDK) and
    /// latency at half of ours' peak rate.
    Webhook(webhook::Args),
    /// The JetStream layer against a nats-server it starts: throughput and latency of the
    /// direct path, relay -> JetStream -> worker and a bare async-nats floor; scaling over
    /// 1, 2 and 4 worker processes; RSS of a relay and a worker process over many events.
    Jetstream(jetstream::Args),
    /// Resource bounds under attack: a chunk flood, or hostile webhook clients, against the
    /// listener in a child process (RSS, descriptors and CPU from /proc).
    #[command(subcommand)]
    Attack(attack::Attack),
    /// Long runs over the realtime or webhook path, sampling RSS, descriptors and p99.
    #[command(subcommand)]
    Soak(soak::Soak),
    /// (internal) The listener under the chunk flood.
    #[command(hide = true)]
    ServeChunkListener(attack::ChunkListenerArgs),
    /// (internal) A JetStream relay process fed by an injecting source.
    #[command(hide = true)]
    ServeJsRelay(jetstream::RelayArgs),
    /// (internal) A JetStream worker process.
    #[command(hide = true)]
    ServeJsWorker(jetstream::WorkerArgs),
    /// (internal) Serve a hub for the benchmarks and print its address.
    #[command(hide = true)]
    ServeHub(hub_proc::ServeArgs),
    /// (internal) Serve ours (the webhook source and a no-op handler) and print its address.
    #[command(hide = true)]
    ServeWebhook(webhook::ServeOursArgs),
    /// (internal) Serve the webhook floor (bare hyper, 200) and print its address.
    #[command(hide = true)]
    ServeFloor,
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Realtime(args) => realtime::run(args).await.map(|t| println!("{t}")),
            Command::Memory(args) => memory::run(args).await.map(|t| println!("{t}")),
            Command::Webhook(args) => webhook::run(args).await.map(|t| println!("{t}")),
            Command::Jetstream(args) => jetstream::run(args).await.map(|t| println!("{t}")),
            Command::Attack(a) => attack::run(a).await.map(|t| println!("{t}")),
            Command::Soak(s) => soak::run(s).await.map(|t| println!("{t}")),
            Command::ServeChunkListener(args) => attack::serve_chunk_listener(args).await,
            Command::ServeJsRelay(args) => jetstream::serve_relay(args).await,
            Command::ServeJsWorker(args) => jetstream::serve_worker(args).await,
            Command::ServeHub(args) => hub_proc::serve(args).await,
            Command::ServeWebhook(args) => webhook::serve_ours(args).await,
            Command::ServeFloor => webhook::serve_floor().await,
        }
    })
}
