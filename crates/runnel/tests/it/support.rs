//! Runs `runnel serve` as a child process and waits for its ready line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;

/// A running `runnel serve`, killed on drop.
pub struct Serve {
    child: Child,
    /// Bound address of each listener, in the order they were logged.
    pub listeners: Vec<(String, String)>,
    /// Bound address of the Schema Registry, if it runs.
    pub registry: Option<String>,
    pub log: Vec<String>,
}

impl Serve {
    /// Starts the broker with `args` (plus env) and waits for `ready`.
    pub fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
        command.arg("serve").arg("--data-dir").arg(data_dir).args(args).env("RUNNEL_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        if !args.contains(&"--kafka-listen") && !env.iter().any(|(k, _)| *k == "RUNNEL_KAFKA_LISTEN") {
            command.args(["--kafka-listen", "127.0.0.1:0"]);
        }
        if !args.contains(&"--registry-listen") && !args.contains(&"--no-registry") {
            command.args(["--registry-listen", "127.0.0.1:0"]);
        }
        let mut child = command.spawn().expect("spawn runnel");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut log = Vec::new();
        let mut listeners = Vec::new();
        let mut registry = None;
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("runnel never became ready:\n{}", log.join("\n")));
            if line.contains("schema registry listening") {
                registry = Some(field(&line, "bind"));
            } else if line.contains("listening") {
                listeners.push((field(&line, "listener"), field(&line, "bind")));
            }
            let ready = line.contains("ready");
            log.push(line);
            if ready {
                break;
            }
        }
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Serve { child, listeners, registry, log }
    }

    pub fn bootstrap(&self) -> String {
        self.listeners[0].1.clone()
    }

    /// SIGKILL: no flush, no clean-shutdown marker.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "runnel exited with {status}");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Value of `key=value` in a tracing log line.
fn field(line: &str, key: &str) -> String {
    let start = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key} in {line}")) + key.len() + 1;
    line[start..].split_whitespace().next().unwrap().trim_matches('"').to_string()
}

pub fn client(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("message.timeout.ms", "10000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config
}
