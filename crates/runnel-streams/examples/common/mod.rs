//! What the course's example programs share: their one flag and how they
//! stop.

/// `--bootstrap-server HOST:PORT`, by default `localhost:9092`.
pub fn bootstrap_server() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == "--bootstrap-server").and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| "localhost:9092".to_string())
}

/// Blocks until Ctrl-C.
pub fn wait_for_ctrl_c() {
    let (tx, rx) = std::sync::mpsc::channel();
    let _ = ctrlc::set_handler(move || {
        let _ = tx.send(());
    });
    let _ = rx.recv();
}
