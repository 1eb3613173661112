//! Side-by-side benchmarks (see BENCHMARKS.md): every variant runs in the same invocation,
//! on the same machine, against the same server, so the ratios are comparable.
//!
//! `bash scripts/bench.sh` runs every benchmark (each in a fresh process) and prints the tables.

mod hub_proc;
mod memory;
mod realtime;
mod stats;

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
    /// (internal) Serve a hub for the benchmarks and print its address.
    #[command(hide = true)]
    ServeHub(hub_proc::ServeArgs),
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
            Command::ServeHub(args) => hub_proc::serve(args).await,
        }
    })
}
