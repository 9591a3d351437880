//! Committed offsets and their `__consumer_offsets` encoding.
//!
//! Keys and values use Apache Kafka's own schemas (offset commit key v1,
//! value v3), so tools that read `__consumer_offsets` understand them.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::Millis;

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: Millis,
}

/// Where a committed offset belongs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetKey {
    pub group: String,
    pub topic: String,
    pub partition: i32,
}

const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

pub(crate) fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

pub(crate) fn get_string(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        return None;
    }
    String::from_utf8(buf.split_to(len as usize).to_vec()).ok()
}

impl OffsetKey {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(KEY_VERSION);
        put_string(&mut buf, &self.group);
        put_string(&mut buf, &self.topic);
        buf.put_i32(self.partition);
        buf.freeze()
    }

    /// Decodes an offset commit key; `None` for other record kinds (such as
    /// group metadata) or damaged bytes.
    pub fn decode(mut buf: Bytes) -> Option<OffsetKey> {
        if buf.remaining() < 2 {
            return None;
        }
        let version = buf.get_i16();
        if version != 0 && version != 1 {
            return None;
        }
        let group = get_string(&mut buf)?;
        let topic = get_string(&mut buf)?;
        if buf.remaining() < 4 {
            return None;
        }
        Some(OffsetKey { group, topic, partition: buf.get_i32() })
    }
}

impl CommittedOffset {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(VALUE_VERSION);
        buf.put_i64(self.offset);
        buf.put_i32(self.leader_epoch);
        put_string(&mut buf, &self.metadata);
        buf.put_i64(self.commit_timestamp);
        buf.freeze()
    }

    /// Decodes value versions 1 and 3 (the ones Kafka writes today).
    pub fn decode(mut buf: Bytes) -> Option<CommittedOffset> {
        if buf.remaining() < 2 {
            return None;
        }
        let version = buf.get_i16();
        if buf.remaining() < 8 {
            return None;
        }
        let offset = buf.get_i64();
        let leader_epoch = if version >= 3 {
            if buf.remaining() < 4 {
                return None;
            }
            buf.get_i32()
        } else {
            -1
        };
        let metadata = get_string(&mut buf)?;
        if buf.remaining() < 8 {
            return None;
        }
        Some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp: buf.get_i64() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip() {
        let key = OffsetKey { group: "g".into(), topic: "rides".into(), partition: 3 };
        assert_eq!(OffsetKey::decode(key.encode()), Some(key));
        let value = CommittedOffset { offset: 42, leader_epoch: 0, metadata: "m".into(), commit_timestamp: 7 };
        assert_eq!(CommittedOffset::decode(value.encode()), Some(value));
    }

    #[test]
    fn damaged_bytes_decode_to_none() {
        let key = OffsetKey { group: "group".into(), topic: "t".into(), partition: 1 }.encode();
        for cut in 0..key.len() {
            assert_eq!(OffsetKey::decode(key.slice(..cut)), None);
        }
        assert_eq!(OffsetKey::decode(Bytes::from_static(&[0, 2, 0, 1, b'g'])), None, "group metadata keys are skipped");
    }
}
