//! The broker's Prometheus metrics, rendered in the text exposition format
//! from [`BrokerState`]. Pure: the binary serves the text over HTTP.

use std::fmt::Write;

use crate::state::BrokerState;

/// Renders every metric. Per-partition series carry `topic` and
/// `partition` labels; damage to a log is a series of its own, present
/// only for damaged partitions, so alerting on it is one expression.
pub fn render(state: &BrokerState) -> String {
    let topics = state.topics();
    let mut families: Vec<(&str, &str, &str, Vec<String>)> = vec![
        ("runnel_partition_log_start_offset", "gauge", "First offset still in the partition's log.", Vec::new()),
        ("runnel_partition_log_end_offset", "gauge", "Offset the next record appended to the partition gets.", Vec::new()),
        ("runnel_partition_size_bytes", "gauge", "Bytes of record batches in the partition's segments.", Vec::new()),
        ("runnel_partition_idempotent_producers", "gauge", "Idempotent producers whose sequence state the partition keeps.", Vec::new()),
        ("runnel_partition_storage_errors_total", "counter", "I/O failures and damaged batches met by the partition's log.", Vec::new()),
        ("runnel_partition_damaged_batch_reads_total", "counter", "Reads that met a damaged batch in the partition's log.", Vec::new()),
        ("runnel_partition_damage_info", "gauge", "Where the partition's log was last found damaged (always 1).", Vec::new()),
    ];
    for topic in &topics {
        for partition in topic.partitions() {
            let labels = format!("topic=\"{}\",partition=\"{}\"", escape(&topic.name), partition.index);
            let bounds = partition.log.bounds();
            let values = [
                bounds.log_start_offset.to_string(),
                bounds.log_end_offset.to_string(),
                partition.log.size_bytes().to_string(),
                partition.log.producer_count().to_string(),
                partition.storage_error_count().to_string(),
            ];
            for (family, value) in families.iter_mut().zip(values) {
                family.3.push(format!("{}{{{labels}}} {value}", family.0));
            }
            if let Some(damage) = partition.log.corruption() {
                families[5].3.push(format!("runnel_partition_damaged_batch_reads_total{{{labels}}} {}", damage.reads));
                families[6].3.push(format!(
                    "runnel_partition_damage_info{{{labels},segment=\"{}\",position=\"{}\",reason=\"{}\"}} 1",
                    escape(&damage.segment.display().to_string()),
                    damage.position,
                    escape(&damage.reason)
                ));
            }
        }
    }
    let mut out = String::new();
    for (name, kind, help, samples) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for sample in samples {
            out.push_str(&sample);
            out.push('\n');
        }
    }
    out
}

/// Escapes a label value as the exposition format requires.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BrokerConfig, ListenerConfig};

    #[test]
    fn partitions_are_labelled_and_damage_appears_only_when_found() {
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig {
            data_dir: dir.path().to_path_buf(),
            listeners: vec![ListenerConfig { name: "PLAINTEXT".into(), listen: "127.0.0.1:0".parse().unwrap(), advertise: None }],
            ..BrokerConfig::default()
        };
        let state = BrokerState::open(config).unwrap();
        state.create_topic("rides", 2, 1, Default::default()).unwrap();
        let text = render(&state);
        assert!(text.contains("runnel_partition_log_end_offset{topic=\"rides\",partition=\"1\"} 0\n"), "{text}");
        assert!(text.contains("# TYPE runnel_partition_storage_errors_total counter\n"));
        assert!(!text.contains("runnel_partition_damage_info{"), "no damage, no series");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
