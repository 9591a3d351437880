//! Idempotent-producer bookkeeping for one partition: the sequence checks
//! that let a retried batch be acknowledged without being appended twice.
//! Pure: the broker feeds it batch headers and acts on its verdicts.

use std::collections::{HashMap, VecDeque};

use runnel_log::batch::BatchHeader;

/// How many recent batches per producer are remembered for duplicate
/// detection; matches `max.in.flight.requests.per.connection` = 5.
pub const MAX_IN_FLIGHT: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<BatchMeta>,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// New data in order: append it.
    Append,
    /// Already in the log at `base_offset`: acknowledge, do not append.
    Duplicate { base_offset: i64 },
    /// A gap or reordering: OUT_OF_ORDER_SEQUENCE_NUMBER.
    OutOfOrder { expected: i32 },
    /// An older epoch of a producer that has since been re-initialised.
    Fenced { current_epoch: i16 },
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Judges a batch against what this partition has seen of its producer.
    pub fn check(&self, header: &BatchHeader) -> SequenceVerdict {
        if !header.has_producer_id() {
            return SequenceVerdict::Append;
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // No state: a new producer, or one whose batches aged out of
            // the log. Either way there is nothing to compare against.
            return SequenceVerdict::Append;
        };
        if header.producer_epoch < entry.epoch {
            return SequenceVerdict::Fenced { current_epoch: entry.epoch };
        }
        if header.producer_epoch > entry.epoch {
            return if header.base_sequence == 0 { SequenceVerdict::Append } else { SequenceVerdict::OutOfOrder { expected: 0 } };
        }
        if let Some(dup) = entry.recent.iter().find(|b| b.first_sequence == header.base_sequence && b.last_sequence == header.last_sequence()) {
            return SequenceVerdict::Duplicate { base_offset: dup.base_offset };
        }
        let expected = entry.recent.back().map_or(0, |b| b.last_sequence.wrapping_add(1) & i32::MAX);
        if header.base_sequence == expected {
            SequenceVerdict::Append
        } else {
            SequenceVerdict::OutOfOrder { expected }
        }
    }

    /// Records a batch that was appended at `header.base_offset`.
    pub fn record(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.recent.clear();
        }
        if entry.recent.len() == MAX_IN_FLIGHT {
            entry.recent.pop_front();
        }
        entry.recent.push_back(BatchMeta { first_sequence: header.base_sequence, last_sequence: header.last_sequence(), base_offset: header.base_offset });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_log::batch::{testing, validate};

    fn header(producer_id: i64, epoch: i16, seq: i32, records: usize, base_offset: i64) -> BatchHeader {
        let values: Vec<&[u8]> = (0..records).map(|_| b"v".as_slice()).collect();
        let mut h = validate(&testing::batch_with_producer(0, &values, producer_id, epoch, seq)).unwrap();
        h.base_offset = base_offset;
        h
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut states = ProducerStates::default();
        let first = header(7, 0, 0, 3, 0);
        assert_eq!(states.check(&first), SequenceVerdict::Append);
        states.record(&first);
        let second = header(7, 0, 3, 2, 3);
        assert_eq!(states.check(&second), SequenceVerdict::Append);
        states.record(&second);
        assert_eq!(states.check(&header(7, 0, 0, 3, -1)), SequenceVerdict::Duplicate { base_offset: 0 });
        assert_eq!(states.check(&header(7, 0, 3, 2, -1)), SequenceVerdict::Duplicate { base_offset: 3 });
    }

    #[test]
    fn gaps_are_out_of_order_and_old_epochs_fenced() {
        let mut states = ProducerStates::default();
        states.record(&header(7, 1, 0, 1, 0));
        assert_eq!(states.check(&header(7, 1, 5, 1, -1)), SequenceVerdict::OutOfOrder { expected: 1 });
        assert_eq!(states.check(&header(7, 0, 1, 1, -1)), SequenceVerdict::Fenced { current_epoch: 1 });
        assert_eq!(states.check(&header(7, 2, 0, 1, -1)), SequenceVerdict::Append);
        assert_eq!(states.check(&header(7, 2, 4, 1, -1)), SequenceVerdict::OutOfOrder { expected: 0 });
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for i in 0..6 {
            states.record(&header(1, 0, i, 1, i as i64));
        }
        assert_eq!(states.check(&header(1, 0, 0, 1, -1)), SequenceVerdict::OutOfOrder { expected: 6 });
        assert_eq!(states.check(&header(1, 0, 1, 1, -1)), SequenceVerdict::Duplicate { base_offset: 1 });
    }

    #[test]
    fn non_idempotent_batches_always_append() {
        let states = ProducerStates::default();
        assert_eq!(states.check(&header(-1, -1, -1, 1, 0)), SequenceVerdict::Append);
    }
}
