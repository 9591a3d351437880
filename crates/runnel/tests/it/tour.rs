//! Runs every command of the README's tour against a fresh broker, so the
//! README cannot go stale.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Serve;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The shell commands between the README's tour markers.
fn tour_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(repository_root().join("README.md")).unwrap();
    let start = readme.find("<!-- tour:begin").expect("README has a tour");
    let end = readme.find("<!-- tour:end -->").expect("the tour ends");
    readme[start..end].lines().filter(|l| l.starts_with("runnel ")).map(str::to_string).collect()
}

#[test]
fn the_readme_tour_runs() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_runnel")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let commands = tour_commands();
    assert!(commands.len() >= 5, "the tour lost its commands: {commands:?}");
    let mut outputs = Vec::new();
    for command in &commands {
        let output = Command::new("sh")
            .args(["-c", command])
            .current_dir(repository_root())
            .env("PATH", &path)
            .env("RUNNEL_BROKERS", serve.bootstrap())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "`{command}` failed: {}", String::from_utf8_lossy(&output.stderr));
        outputs.push(stdout);
    }
    let by_command = |prefix: &str| outputs[commands.iter().position(|c| c.starts_with(prefix)).unwrap()].clone();
    assert!(by_command("runnel consume rides_json --from-beginning --count 3").contains("\"PULocationID\""));
    assert!(by_command("runnel topic describe").contains("266"), "the topic holds 266 rides");
    assert_eq!(by_command("runnel consume rides_json --group").lines().count(), 100);
    let group = by_command("runnel group describe");
    assert!(group.lines().any(|l| l.starts_with("rides_json") && l.split_whitespace().nth(4) == Some("166")), "lag 166:\n{group}");
}
