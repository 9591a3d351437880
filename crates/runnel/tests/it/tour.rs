//! Runs every command of the README's tour against a fresh broker, so the
//! README cannot go stale.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Serve;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The shell commands between the README's `marker:begin` and
/// `marker:end` comments.
fn tour_commands(marker: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).unwrap();
    let start = readme.find(&format!("<!-- {marker}:begin")).unwrap_or_else(|| panic!("README has a {marker}"));
    let end = readme.find(&format!("<!-- {marker}:end -->")).unwrap_or_else(|| panic!("the {marker} ends"));
    readme[start..end].lines().filter(|l| l.starts_with("runnel ")).map(str::to_string).collect()
}

/// Runs one tour command as a user would, with the `runnel` under test
/// first on the path and `serve`'s addresses in the environment; returns
/// what it printed, once it succeeded.
fn run_tour_command(serve: &Serve, command: &str) -> String {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_runnel")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut shell = Command::new("sh");
    shell.args(["-c", command]).current_dir(repository_root()).env("PATH", &path).env("RUNNEL_BROKERS", serve.bootstrap());
    if let Some(sql) = &serve.sql {
        shell.env("RUNNEL_SQL_SERVER", sql);
    }
    let output = shell.output().unwrap();
    assert!(output.status.success(), "`{command}` failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs every command of a tour in order; returns what each printed.
fn run_tour(serve: &Serve, commands: &[String]) -> Vec<String> {
    commands.iter().map(|command| run_tour_command(serve, command)).collect()
}

#[test]
fn the_readme_tour_runs() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let commands = tour_commands("tour");
    assert!(commands.len() >= 5, "the tour lost its commands: {commands:?}");
    let outputs = run_tour(&serve, &commands);
    let by_command = |prefix: &str| outputs[commands.iter().position(|c| c.starts_with(prefix)).unwrap()].clone();
    assert!(by_command("runnel consume rides_json --from-beginning --count 3").contains("\"PULocationID\""));
    assert!(by_command("runnel topic describe").contains("266"), "the topic holds 266 rides");
    assert_eq!(by_command("runnel consume rides_json --group").lines().count(), 100);
    let group = by_command("runnel group describe");
    assert!(group.lines().any(|l| l.starts_with("rides_json") && l.split_whitespace().nth(4) == Some("166")), "lag 166:\n{group}");
}

/// The rows of a table the shell printed (`|a |b |`), as trimmed cells.
fn table_rows(printed: &str) -> Vec<Vec<String>> {
    printed.lines().filter(|line| line.starts_with('|')).map(|line| line.trim_matches('|').split('|').map(|cell| cell.trim().to_string()).collect()).collect()
}

#[test]
fn the_readme_sql_tour_runs() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let commands = tour_commands("sql-tour");
    assert!(commands.len() >= 6, "the SQL tour lost its commands: {commands:?}");
    // Everything up to the pull queries runs once, in order.
    let pulls = commands.iter().filter(|c| c.contains("\"SELECT * FROM")).count();
    let outputs = run_tour(&serve, &commands[..commands.len() - pulls]);
    let filtered = outputs.iter().find(|out| out.contains("Query terminated")).expect("the push query ran");
    assert_eq!(table_rows(filtered).len(), 1 + 5, "a header and five rides paid in cash:\n{filtered}");

    // The course's counts per vendor, from the CSV itself.
    let csv = std::fs::read_to_string(repository_root().join("../shared/data/rides.csv")).unwrap();
    let mut lines = csv.lines();
    let vendor_column = lines.next().unwrap().split(',').position(|c| c == "VendorID").unwrap();
    let mut expected = std::collections::BTreeMap::<String, i64>::new();
    for line in lines.filter(|l| !l.is_empty()) {
        *expected.entry(line.split(',').nth(vendor_column).unwrap().to_string()).or_default() += 1;
    }
    // Pull queries answer what the persistent queries have made so far:
    // each is asked again until its table is complete.
    let per_vendor = commands.iter().find(|c| c.contains("FROM rides_per_vendor")).unwrap();
    let counted = pulled_until(&serve, per_vendor, |rows| {
        let counted: std::collections::BTreeMap<String, i64> = rows.iter().skip(1).map(|row| (row[0].clone(), row[1].parse().unwrap_or(-1))).collect();
        counted == expected
    });
    assert_eq!(counted[0], ["VENDORID", "RIDES"]);
    let sessions = commands.iter().find(|c| c.contains("FROM payment_type_sessions")).unwrap();
    let rows = pulled_until(&serve, sessions, |rows| rows.len() > 1);
    assert_eq!(rows[0], ["PAYMENT_TYPE", "WINDOWSTART", "WINDOWEND", "RIDES"]);
    assert!(rows.iter().skip(1).all(|row| row[0] == "1"), "sessions of card payments only:\n{rows:?}");
}

/// The table a pull query prints, asked until `done` holds of its rows
/// (header first) or a minute has passed.
fn pulled_until(serve: &Serve, command: &str, done: impl Fn(&[Vec<String>]) -> bool) -> Vec<Vec<String>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let rows = table_rows(&run_tour_command(serve, command));
        if done(&rows) {
            return rows;
        }
        assert!(std::time::Instant::now() < deadline, "`{command}` printed only {rows:?}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
