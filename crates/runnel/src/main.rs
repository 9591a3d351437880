//! The `runnel` binary: one command for every part of the platform.

mod bench;
mod serve;

use clap::{Parser, Subcommand};

/// Runnel: a Kafka-compatible event streaming platform in one binary.
#[derive(Debug, Parser)]
#[command(name = "runnel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the broker (Kafka protocol on 127.0.0.1:9092 by default).
    Serve(serve::ServeArgs),
    /// Measure throughput and latency against any Kafka-compatible broker.
    Bench(bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
