//! Runs `runnel serve` as a child process and waits for its ready line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// A running `runnel serve`, killed on drop.
pub struct Serve {
    child: Child,
    /// Bound address of each listener, in the order they were logged.
    pub listeners: Vec<(String, String)>,
    /// Bound address of the Schema Registry, if it runs.
    pub registry: Option<String>,
    /// Bound address of the metrics endpoint, if it runs.
    pub metrics: Option<String>,
    /// Bound address of the SQL service, if it runs.
    pub sql: Option<String>,
    /// Every line logged so far, ready line included; kept up to date.
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    /// Starts the broker with `args` (plus env) and waits for `ready`.
    pub fn start(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serve {
        Self::start_limited(data_dir, args, env, None)
    }

    /// Like [`Serve::start`], with the open-file limit (soft and hard) set
    /// to `open_files` when given.
    pub fn start_limited(data_dir: &Path, args: &[&str], env: &[(&str, &str)], open_files: Option<u64>) -> Serve {
        let mut command = match open_files {
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_runnel")]);
                sh
            }
            None => Command::new(env!("CARGO_BIN_EXE_runnel")),
        };
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
        if !args.contains(&"--metrics-listen") && !args.contains(&"--no-metrics") {
            command.args(["--metrics-listen", "127.0.0.1:0"]);
        }
        if !args.contains(&"--sql-listen") && !args.contains(&"--no-sql") {
            command.args(["--sql-listen", "127.0.0.1:0"]);
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
        let mut metrics = None;
        let mut sql = None;
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("runnel never became ready:\n{}", log.join("\n")));
            if line.contains("schema registry listening") {
                registry = Some(field(&line, "bind"));
            } else if line.contains("metrics listening") {
                metrics = Some(field(&line, "bind"));
            } else if line.contains("SQL service listening") {
                sql = Some(field(&line, "bind"));
            } else if line.contains("listening") {
                listeners.push((field(&line, "listener"), field(&line, "bind")));
            }
            let ready = line.contains("ready");
            log.push(line);
            if ready {
                break;
            }
        }
        let log = Arc::new(Mutex::new(log));
        let lines = log.clone();
        std::thread::spawn(move || {
            while let Ok(line) = rx.recv() {
                lines.lock().unwrap().push(line);
            }
        });
        Serve { child, listeners, registry, metrics, sql, log }
    }

    pub fn bootstrap(&self) -> String {
        self.listeners[0].1.clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a logged line contains `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line with `{needle}` in:\n{}", self.log().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the broker process, from /proc.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kb: u64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap();
        kb * 1024
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

/// Every (offset, value) of `topic`/0 from the start to the high watermark.
pub fn read_partition(bootstrap: &str, topic: &str) -> Vec<(i64, String)> {
    let consumer: BaseConsumer = client(bootstrap, &[("group.id", "read-partition"), ("enable.auto.commit", "false")]).create().unwrap();
    let (_, high) = consumer.fetch_watermarks(topic, 0, Duration::from_secs(10)).unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut next = 0;
    while next < high {
        assert!(Instant::now() < deadline, "read {next} of {high}");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            next = message.offset() + 1;
            records.push((message.offset(), String::from_utf8(message.payload().unwrap().to_vec()).unwrap()));
        }
    }
    records
}
