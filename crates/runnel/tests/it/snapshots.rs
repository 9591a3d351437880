//! Snapshots of the command-line interface: help texts and table output.
//! A change to either shows up here as a diff, so it is deliberate.

use std::process::Command;

use crate::support::Serve;

/// Runs `runnel ARGS` with no RUNNEL_* variables set, so help texts do not
/// show this machine's environment; returns stdout.
fn runnel(args: &[&str], bootstrap: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    command.args(args).env_clear();
    if let Some(b) = bootstrap {
        command.args(["-b", b]);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_texts() {
    let commands: &[&[&str]] = &[
        &["--help"],
        &["serve", "--help"],
        &["topic", "--help"],
        &["topic", "create", "--help"],
        &["produce", "--help"],
        &["consume", "--help"],
        &["group", "--help"],
        &["group", "reset-offsets", "--help"],
        &["cluster", "--help"],
        &["bench", "produce", "--help"],
    ];
    for args in commands {
        let name = format!("help_{}", args.iter().filter(|a| !a.starts_with('-')).copied().collect::<Vec<_>>().join("_"));
        insta::assert_snapshot!(name.trim_end_matches('_').to_string(), runnel(args, None));
    }
}

#[test]
fn tables() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path(), &[], &[]);
    let b = serve.bootstrap();
    runnel(&["topic", "create", "snap", "--partitions", "3", "--config", "retention.ms=3600000"], Some(&b));
    runnel(&["topic", "create", "other"], Some(&b));
    insta::assert_snapshot!("table_topic_list", runnel(&["topic", "list"], Some(&b)));
    insta::assert_snapshot!("table_topic_describe", runnel(&["topic", "describe", "snap"], Some(&b)));
}
