//! Side-by-side benchmarks (see BENCHMARKS.md): every variant runs in the same invocation,
//! on the same machine, against the same server, so the ratios are comparable.
//!
//! `bash scripts/bench.sh` runs every benchmark (each in a fresh process) and prints the tables.

mod hub_proc;
mod memory;
mod realtime;
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
            Command::ServeHub(args) => hub_proc::serve(args).await,
            Command::ServeWebhook(args) => webhook::serve_ours(args).await,
            Command::ServeFloor => webhook::serve_floor().await,
        }
    })
}
