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
    /// Run the Schema Registry alone, against any Kafka cluster.
    Registry(serve::RegistryArgs),
    /// Run the SQL service (ksqlDB's REST API) alone, against any Kafka cluster.
    SqlServer(serve::SqlServerArgs),
    /// Measure throughput and latency against any Kafka-compatible broker.
    Bench(bench::BenchArgs),
    /// Create, list, describe, alter and delete topics.
    Topic(runnel_cli::topic::TopicArgs),
    /// Produce stdin lines, or a CSV file as JSON records.
    Produce(runnel_cli::produce::ProduceArgs),
    /// Print records from a topic.
    Consume(runnel_cli::consume::ConsumeArgs),
    /// Inspect and manage consumer groups on any Kafka-compatible cluster.
    Group(runnel_cli::group::GroupArgs),
    /// List, get, register and check schemas in the Schema Registry.
    Schema(runnel_cli::schema::SchemaArgs),
    /// The SQL shell: statements and push queries against the SQL service.
    Sql(runnel_cli::sql::SqlArgs),
    /// Show brokers, controller, cluster id and API versions.
    Cluster(runnel_cli::cluster::ClusterArgs),
    /// Print runnel's version.
    Version,
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Exit codes, as documented in the README.
const EXIT_FAILED: i32 = 1;
const EXIT_UNREACHABLE: i32 = 3;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Registry(args) => serve::run_registry(args),
        Command::SqlServer(args) => serve::run_sql_server(args),
        Command::Bench(args) => bench::run(args),
        Command::Topic(args) => client_command(runnel_cli::topic::run(args)),
        Command::Produce(args) => client_command(runnel_cli::produce::run(args).map(summary_to_stderr)),
        Command::Consume(args) => client_command(runnel_cli::consume::run(args).map(summary_to_stderr)),
        Command::Group(args) => client_command(runnel_cli::group::run(args)),
        Command::Cluster(args) => client_command(runnel_cli::cluster::run(args)),
        Command::Schema(args) => client_command(runnel_cli::schema::run(args)),
        Command::Sql(args) => client_command(runnel_cli::sql::run(args)),
        Command::Version => {
            println!("runnel {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "runnel", &mut script);
            client_command(Ok(String::from_utf8_lossy(&script).into_owned()))
        }
    }
}

/// Produce and consume keep stdout for records; their summary goes to stderr.
fn summary_to_stderr(summary: String) -> String {
    eprint!("{summary}");
    String::new()
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
