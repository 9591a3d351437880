//! Plain aligned tables for terminals; commands offer JSON for scripts.

/// Renders rows under a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<width$}", width = widths[i])).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    // Bold headers on a terminal only; pipes and files get plain text.
    let mut out = if std::io::IsTerminal::is_terminal(&std::io::stdout()) { format!("\x1b[1m{}\x1b[0m", line(header.to_vec())) } else { line(header.to_vec()) };
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}
