//! `runnel schema`: list, get, register, check and configure subjects in a
//! Confluent-compatible Schema Registry.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::output::table;
use crate::registry_client::{RegistryArgs, RegistryClient};
use crate::CliError;

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SchemaCommand,
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// List subjects with their latest version.
    List,
    /// Show a subject's schema (the latest unless --version).
    Get {
        subject: String,
        #[arg(long, default_value = "latest")]
        version: String,
    },
    /// Register a schema file under a subject.
    Register {
        subject: String,
        #[arg(long)]
        file: PathBuf,
        /// AVRO or JSON.
        #[arg(long = "type", default_value = "AVRO")]
        schema_type: String,
    },
    /// Check a schema file against a subject's compatibility level.
    Check {
        subject: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long = "type", default_value = "AVRO")]
        schema_type: String,
    },
    /// Show or set the compatibility level, of a subject or globally.
    Config {
        subject: Option<String>,
        /// NONE, BACKWARD, FORWARD, FULL, or one of the _TRANSITIVE forms.
        #[arg(long)]
        level: Option<String>,
    },
}

fn read_file(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Refused(format!("cannot read {}: {e}", path.display())))
}

/// Runs a schema command and returns what to print.
pub fn run(args: SchemaArgs) -> Result<String, CliError> {
    let client = RegistryClient::new(&args.registry);
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("serialisable") + "\n";
    match args.command {
        SchemaCommand::List => {
            let subjects = client.call("GET", "/subjects", None)?;
            let mut rows = Vec::new();
            for subject in subjects.as_array().cloned().unwrap_or_default() {
                let name = subject.as_str().unwrap_or_default().to_string();
                let latest = client.call("GET", &format!("/subjects/{name}/versions/latest"), None)?;
                rows.push(vec![
                    name,
                    latest["version"].to_string(),
                    latest["id"].to_string(),
                    latest.get("schemaType").and_then(Value::as_str).unwrap_or("AVRO").to_string(),
                ]);
            }
            if args.json {
                return Ok(pretty(&json!(rows
                    .iter()
                    .map(|r| json!({"subject": r[0], "version": r[1].parse::<i64>().ok(), "id": r[2].parse::<i64>().ok(), "type": r[3]}))
                    .collect::<Vec<_>>())));
            }
            Ok(table(&["SUBJECT", "VERSION", "ID", "TYPE"], &rows))
        }
        SchemaCommand::Get { subject, version } => {
            let found = client.call("GET", &format!("/subjects/{subject}/versions/{version}"), None)?;
            if args.json {
                return Ok(pretty(&found));
            }
            let schema: Value = serde_json::from_str(found["schema"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
            Ok(format!("subject {}  version {}  id {}\n{}", found["subject"].as_str().unwrap_or_default(), found["version"], found["id"], pretty(&schema)))
        }
        SchemaCommand::Register { subject, file, schema_type } => {
            let id = client.register(&subject, &read_file(&file)?, &schema_type.to_ascii_uppercase())?;
            Ok(if args.json { pretty(&json!({"id": id})) } else { format!("registered {} under {subject} with id {id}\n", file.display()) })
        }
        SchemaCommand::Check { subject, file, schema_type } => {
            let body = json!({"schema": read_file(&file)?, "schemaType": schema_type.to_ascii_uppercase()});
            let verdict = match client.call("POST", &format!("/compatibility/subjects/{subject}/versions/latest?verbose=true"), Some(body.clone())) {
                Err(CliError::Refused(m)) if m.contains("40401") => json!({"is_compatible": true, "messages": ["the subject has no versions yet"]}),
                other => other?,
            };
            let messages: Vec<String> =
                verdict["messages"].as_array().map(|m| m.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
            if verdict["is_compatible"] == json!(true) {
                return Ok(if args.json { pretty(&verdict) } else { format!("{} is compatible with {subject}\n", file.display()) });
            }
            Err(CliError::Refused(format!("{} is not compatible with {subject}: {}", file.display(), messages.join("; "))))
        }
        SchemaCommand::Config { subject, level } => {
            let path = match &subject {
                Some(s) => format!("/config/{s}"),
                None => "/config".to_string(),
            };
            match level {
                Some(level) => {
                    client.call("PUT", &path, Some(json!({"compatibility": level.to_ascii_uppercase()})))?;
                    Ok(format!("compatibility of {} is now {}\n", subject.as_deref().unwrap_or("the registry"), level.to_ascii_uppercase()))
                }
                None => {
                    let query = if subject.is_some() { "?defaultToGlobal=true" } else { "" };
                    let answer = client.call("GET", &format!("{path}{query}"), None)?;
                    Ok(format!("{}\n", answer["compatibilityLevel"].as_str().unwrap_or_default()))
                }
            }
        }
    }
}
