//! `runnel sql`: a shell for the SQL service, as ksqlDB's CLI is for
//! ksqlDB. Statements end with `;` and may span lines; `SET` and `UNSET`
//! change the properties sent with each request, `DEFINE` and `UNDEFINE`
//! the variables substituted into statements; push queries (`SELECT ...
//! EMIT CHANGES`) print rows as they come until their `LIMIT` or Ctrl-C.
//! `-e` and `-f` run a script instead of the prompt.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::Args;
use runnel_sql::ast::Statement;
use runnel_sql::engine::substitute;
use runnel_sql::lexer::{tokenize, Token};
use serde_json::{json, Value};

use crate::CliError;

/// Where the service is, and what to run.
#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL service's URL (`host:port` alone means `http://host:port`).
    #[arg(long, env = "RUNNEL_SQL_SERVER", default_value = "http://localhost:8088")]
    pub server: String,
    /// Run these statements and exit.
    #[arg(short = 'e', long = "execute", value_name = "STATEMENTS", conflicts_with = "file")]
    pub execute: Option<String>,
    /// Run the statements in this file and exit.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
}

/// Runs a script, or the interactive shell.
pub fn run(args: SqlArgs) -> Result<String, CliError> {
    let mut session = Session::new(&args.server);
    let script = match (&args.execute, &args.file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?),
        (None, None) => None,
    };
    session.close_queries_on_ctrl_c()?;
    let mut stdout = std::io::stdout();
    match script {
        Some(text) => session.run(&text, &mut stdout).map(|_| String::new()),
        None => session.interact(&mut stdout).map(|_| String::new()),
    }
}

/// Whether `text` holds one or more whole statements: it tokenizes and
/// its last token is `;`. Text inside an unclosed string or comment is not
/// whole.
pub fn is_complete(text: &str) -> bool {
    match tokenize(text) {
        Ok(tokens) => tokens.iter().rev().find(|t| t.token != Token::End).is_some_and(|t| t.token == Token::Symbol(";")),
        Err(_) => false,
    }
}

/// The shell's state: the service, local properties and variables, and
/// the push query running now (so Ctrl-C can close it).
struct Session {
    base: String,
    properties: BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
    running: Arc<Mutex<Option<String>>>,
}

impl Session {
    fn new(server: &str) -> Session {
        let server = server.trim_end_matches('/');
        let base = if server.contains("://") { server.to_string() } else { format!("http://{server}") };
        Session { base, properties: BTreeMap::new(), variables: BTreeMap::new(), running: Arc::default() }
    }

    /// Ctrl-C while a push query runs closes it and returns to the
    /// prompt; otherwise it ends the shell (at the prompt, the line editor
    /// takes Ctrl-C as a key and clears the line instead).
    fn close_queries_on_ctrl_c(&self) -> Result<(), CliError> {
        let (running, base) = (self.running.clone(), self.base.clone());
        ctrlc::set_handler(move || match running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
            Some(id) => {
                let _ = ureq::post(&format!("{base}/close-query")).send_json(json!({"queryId": id}));
            }
            None => std::process::exit(130),
        })
        .map_err(|e| CliError::Usage(format!("cannot handle Ctrl-C: {e}")))
    }

    /// The prompt: statements as they are completed, with history.
    fn interact(&mut self, out: &mut impl Write) -> Result<(), CliError> {
        let mut editor = rustyline::DefaultEditor::new().map_err(|e| CliError::Usage(format!("cannot read the terminal: {e}")))?;
        let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".runnel_sql_history"));
        if let Some(history) = &history {
            let _ = editor.load_history(history);
        }
        let _ = writeln!(out, "runnel sql: statements end with ';'. Ctrl-C stops a query, Ctrl-D leaves.\nServer: {}\n", self.base);
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() { "runnel> " } else { "     > " };
            match editor.readline(prompt) {
                Ok(line) => {
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if matches!(buffer.trim().to_lowercase().as_str(), "exit" | "quit" | "exit;" | "quit;") {
                        break;
                    }
                    if is_complete(&buffer) {
                        let _ = editor.add_history_entry(buffer.trim());
                        // Errors are shown; the shell goes on.
                        if let Err(error) = self.run(&buffer, out) {
                            let _ = writeln!(out, "{error}");
                        }
                        buffer.clear();
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => buffer.clear(),
                Err(_) => break,
            }
        }
        if let Some(history) = &history {
            let _ = editor.save_history(history);
        }
        Ok(())
    }

    /// Runs each statement of `text` in turn, stopping at the first that
    /// fails.
    fn run(&mut self, text: &str, out: &mut impl Write) -> Result<(), CliError> {
        let statements = match runnel_sql::parser::parse(text) {
            Ok(statements) => statements,
            Err(e) => return Err(refused(&e.to_string())),
        };
        for statement in statements {
            let text = substitute(&statement.text, &self.variables);
            let parsed = match runnel_sql::parser::parse(&text) {
                Ok(mut parsed) if parsed.len() == 1 => parsed.remove(0),
                Ok(_) => return Err(refused("a variable's value ended the statement early")),
                Err(e) => return Err(refused(&e.to_string())),
            };
            match parsed.statement {
                Statement::Set { property, value } => {
                    let _ = writeln!(out, "Successfully changed local property '{property}' to '{value}'.");
                    self.properties.insert(property, value);
                }
                Statement::Unset { property } => match self.properties.remove(&property) {
                    Some(value) => {
                        let _ = writeln!(out, "Successfully unset local property '{property}' (value was '{value}').");
                    }
                    None => return Err(refused(&format!("Property '{property}' is not set."))),
                },
                Statement::Define { name, value } => {
                    self.variables.insert(name, value);
                }
                Statement::Undefine { name } => {
                    self.variables.remove(&name);
                }
                Statement::Select(_) | Statement::Print { .. } => self.push(&parsed.text, out)?,
                _ => self.ksql(&parsed.text, out)?,
            }
        }
        Ok(())
    }

    fn post(&self, path: &str, body: Value) -> Result<ureq::Response, CliError> {
        match ureq::post(&format!("{}{path}", self.base)).set("Accept", "application/vnd.ksql.v1+json").send_json(body) {
            Ok(response) => Ok(response),
            Err(ureq::Error::Status(_, response)) => {
                let body: Value = response.into_json().unwrap_or_default();
                Err(CliError::Refused(body.get("message").and_then(Value::as_str).unwrap_or("the server refused the request").to_string()))
            }
            Err(e) => Err(CliError::Refused(format!("SQL service {} unreachable: is `runnel serve` running? ({e})", self.base))),
        }
    }

    /// A statement for `/ksql`, its answer printed.
    fn ksql(&self, text: &str, out: &mut impl Write) -> Result<(), CliError> {
        let response = self.post("/ksql", json!({"ksql": text, "streamsProperties": self.properties}))?;
        let entities: Vec<Value> = response.into_json().map_err(|e| refused(&format!("bad answer from the server: {e}")))?;
        for entity in &entities {
            let _ = write!(out, "{}", render_entity(entity));
        }
        Ok(())
    }

    /// A push query: its rows printed as they arrive.
    fn push(&self, text: &str, out: &mut impl Write) -> Result<(), CliError> {
        let response = self.post("/query-stream", json!({"sql": text, "properties": self.properties}))?;
        let mut widths = Vec::new();
        let mut rows = 0;
        for line in BufReader::new(response.into_reader()).lines() {
            let Ok(line) = line else { break };
            // `PRINT` answers with text lines.
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                let _ = writeln!(out, "{line}");
                continue;
            };
            match value {
                Value::Object(header) if header.contains_key("columnNames") => {
                    *self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = header.get("queryId").and_then(Value::as_str).map(str::to_string);
                    let names: Vec<String> = header["columnNames"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
                    widths = names.iter().map(|n| n.len().max(12) + 1).collect();
                    let _ = write!(out, "{}", border(&widths));
                    let _ = write!(out, "{}", table_row(&names, &widths));
                    let _ = write!(out, "{}", border(&widths));
                }
                Value::Array(values) => {
                    let cells: Vec<String> = values.iter().map(cell).collect();
                    let _ = write!(out, "{}", table_row(&cells, &widths));
                    rows += 1;
                }
                Value::Object(error) => {
                    let _ = writeln!(out, "{}", error.get("message").and_then(Value::as_str).unwrap_or("the query failed"));
                }
                _ => {}
            }
            let _ = out.flush();
        }
        *self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        if !widths.is_empty() {
            let _ = write!(out, "{}", border(&widths));
            let _ = writeln!(out, "Query terminated: {rows} row{}.", if rows == 1 { "" } else { "s" });
        }
        Ok(())
    }
}

fn refused(message: &str) -> CliError {
    CliError::Refused(message.to_string())
}

/// A value as the shell shows it in a table.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn border(widths: &[usize]) -> String {
    let mut line = String::from("+");
    for width in widths {
        line.push_str(&"-".repeat(*width));
        line.push('+');
    }
    line.push('\n');
    line
}

fn table_row(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::from("|");
    for (i, value) in cells.iter().enumerate() {
        let width = widths.get(i).copied().unwrap_or(value.len());
        line.push_str(&format!("{value:<width$}|"));
    }
    line.push('\n');
    line
}

/// A whole table: columns as wide as their widest cell.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> =
        headers.iter().enumerate().map(|(i, h)| rows.iter().map(|r| r.get(i).map_or(0, String::len)).max().unwrap_or(0).max(h.len()) + 1).collect();
    let headers: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let mut text = border(&widths) + &table_row(&headers, &widths) + &border(&widths);
    for row in rows {
        text.push_str(&table_row(row, &widths));
    }
    text + &border(&widths)
}

fn text_of(value: &Value, field: &str) -> String {
    cell(&value[field])
}

/// What the shell prints for one of `/ksql`'s entities.
pub fn render_entity(entity: &Value) -> String {
    let listed = |field: &str| entity[field].as_array().cloned().unwrap_or_default();
    match entity["@type"].as_str().unwrap_or_default() {
        "currentStatus" => table(&["Message"], &[vec![text_of(&entity["commandStatus"], "message")]]),
        "streams" | "tables" => {
            let (field, name) = if entity["@type"] == "streams" { ("streams", "Stream Name") } else { ("tables", "Table Name") };
            let rows: Vec<Vec<String>> = listed(field)
                .iter()
                .map(|s| vec![text_of(s, "name"), text_of(s, "topic"), text_of(s, "keyFormat"), text_of(s, "valueFormat"), text_of(s, "isWindowed")])
                .collect();
            table(&[name, "Kafka Topic", "Key Format", "Value Format", "Windowed"], &rows)
        }
        "queries" => {
            let rows: Vec<Vec<String>> = listed("queries")
                .iter()
                .map(|q| {
                    vec![
                        text_of(q, "id"),
                        text_of(q, "queryType"),
                        text_of(q, "state"),
                        cell(&q["sinks"][0]),
                        cell(&q["sinkKafkaTopics"][0]),
                        text_of(q, "queryString"),
                    ]
                })
                .collect();
            table(&["Query ID", "Query Type", "Status", "Sink Name", "Sink Kafka Topic", "Query String"], &rows)
        }
        "kafka_topics" => {
            let rows: Vec<Vec<String>> = listed("topics")
                .iter()
                .map(|t| {
                    let replicas = t["replicaInfo"].as_array().cloned().unwrap_or_default();
                    vec![text_of(t, "name"), replicas.len().to_string(), replicas.iter().map(cell).collect::<Vec<_>>().join(" ")]
                })
                .collect();
            table(&["Kafka Topic", "Partitions", "Partition Replicas"], &rows)
        }
        "properties" => {
            let rows: Vec<Vec<String>> = listed("properties").iter().map(|p| vec![text_of(p, "name"), text_of(p, "scope"), text_of(p, "value")]).collect();
            table(&["Property", "Scope", "Value"], &rows)
        }
        "variables" => {
            let rows: Vec<Vec<String>> = listed("variables").iter().map(|v| vec![text_of(v, "name"), text_of(v, "value")]).collect();
            table(&["Variable Name", "Value"], &rows)
        }
        "sourceDescription" => describe(&entity["sourceDescription"]),
        "source_descriptions" => listed("sourceDescriptions").iter().map(describe).collect::<Vec<_>>().join("\n"),
        _ => format!("{entity}\n"),
    }
}

/// `DESCRIBE`: the source's name and kind, then its columns.
fn describe(source: &Value) -> String {
    let rows: Vec<Vec<String>> = source["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let key = if f["type"] == "KEY" { "   (key)" } else { "" };
            vec![text_of(f, "name"), format!("{}{key}", text_of(&f["schema"], "type"))]
        })
        .collect();
    format!(
        "\nName                 : {}\nType                 : {}\nKafka topic          : {} (partitions: {})\nKey format           : {}\nValue format         : {}\n{}",
        text_of(source, "name"),
        text_of(source, "type"),
        text_of(source, "topic"),
        text_of(source, "partitions"),
        text_of(source, "keyFormat"),
        text_of(source, "valueFormat"),
        table(&["Field", "Type"], &rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_whole_once_it_ends_with_a_semicolon_outside_quotes() {
        assert!(is_complete("SHOW STREAMS;"));
        assert!(is_complete("SELECT *\nFROM rides\nEMIT CHANGES;\n"));
        assert!(!is_complete("SELECT *\nFROM rides"));
        assert!(!is_complete("INSERT INTO s VALUES ('a;"));
        assert!(is_complete("INSERT INTO s VALUES ('a;b');"));
        assert!(!is_complete(""));
    }

    #[test]
    fn listings_print_as_tables() {
        let streams = json!({"@type": "streams", "streams": [
            {"name": "RIDE_STREAMS", "topic": "rides", "keyFormat": "KAFKA", "valueFormat": "JSON", "isWindowed": false}]});
        let text = render_entity(&streams);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "|Stream Name  |Kafka Topic |Key Format |Value Format |Windowed |");
        assert_eq!(lines[3], "|RIDE_STREAMS |rides       |KAFKA      |JSON         |false    |");
        assert_eq!(lines.len(), 5);
        let created = json!({"@type": "currentStatus", "commandStatus": {"status": "SUCCESS", "message": "Stream created"}});
        assert!(render_entity(&created).contains("|Stream created |"));
    }

    #[test]
    fn a_description_lists_columns_with_their_types() {
        let described = json!({"@type": "sourceDescription", "sourceDescription": {"name": "TIPS", "type": "STREAM", "topic": "tips",
            "partitions": 2, "keyFormat": "KAFKA", "valueFormat": "JSON", "fields": [
            {"name": "DRIVER", "schema": {"type": "STRING"}, "type": "KEY"}, {"name": "TIP", "schema": {"type": "DOUBLE"}}]}});
        let text = render_entity(&described);
        assert!(text.contains("Kafka topic          : tips (partitions: 2)"), "{text}");
        assert!(text.contains("|DRIVER |STRING   (key) |"), "{text}");
        assert!(text.contains("|TIP    |DOUBLE         |"), "{text}");
    }
}
