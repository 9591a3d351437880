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
    /// Inspect and manage consumer groups on any Kafka-compatible cluster.
    Group(runnel_cli::group::GroupArgs),
}

/// Exit codes, as documented in the README.
const EXIT_FAILED: i32 = 1;
const EXIT_UNREACHABLE: i32 = 3;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Group(args) => client_command(runnel_cli::group::run(args)),
    }
}

/// Prints a client command's output, or its error and the matching exit code.
fn client_command(result: Result<String, runnel_cli::CliError>) -> anyhow::Result<()> {
    use std::io::Write;
    match result {
        Ok(text) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush());
            Ok(())
        }
        Err(error) => {
            eprintln!("error: {error}");
            let code = match error {
                runnel_cli::CliError::Unreachable(..) => EXIT_UNREACHABLE,
                runnel_cli::CliError::Usage(_) => 2,
                _ => EXIT_FAILED,
            };
            std::process::exit(code);
        }
    }
}
