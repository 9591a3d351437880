//! Serdes: how keys and values become bytes on topics and back, in the
//! encodings Kafka's Java serdes use, so a runnel-streams program and a
//! Java one can read each other's topics.

use std::marker::PhantomData;

/// Why bytes could not become a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerdeError {
    /// The bytes have the wrong length for the type.
    #[error("expected {expected}, got {got} bytes")]
    Length {
        /// The length, or lengths, the type takes.
        expected: &'static str,
        /// The length the bytes had.
        got: usize,
    },
    /// A null where the serde needs bytes (wrap it in [`Nullable`]).
    #[error("null where a value is required")]
    Null,
    /// A string that is not UTF-8.
    #[error("not UTF-8: {0}")]
    Utf8(String),
    /// Bytes that are not JSON of the expected shape.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A schema-registry value that cannot be read: an unknown schema, an
    /// unreachable registry, or bytes that do not fit the schema.
    #[error("{0}")]
    Schema(String),
}

/// Turns values of `Self::Value` into bytes (`None` is Kafka's null) and
/// back. Serdes are shared by every task of a topology, so they are
/// `Send + Sync`.
pub trait Serde: Send + Sync + 'static {
    /// The type the serde reads and writes.
    type Value;
    /// The bytes of a value; `None` writes Kafka's null.
    fn serialize(&self, value: &Self::Value) -> Option<Vec<u8>>;
    /// A value from bytes (`None` is Kafka's null).
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Self::Value, SerdeError>;
}

/// UTF-8 strings (Kafka's `StringSerde`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde for StringSerde {
    type Value = String;
    fn serialize(&self, value: &String) -> Option<Vec<u8>> {
        Some(value.as_bytes().to_vec())
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<String, SerdeError> {
        let bytes = bytes.ok_or(SerdeError::Null)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| SerdeError::Utf8(e.to_string()))
    }
}

/// A serde for an integer type in Kafka's big-endian encoding.
macro_rules! big_endian_serde {
    ($(#[$doc:meta])* $name:ident, $int:ty, $len:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde for $name {
            type Value = $int;
            fn serialize(&self, value: &$int) -> Option<Vec<u8>> {
                Some(value.to_be_bytes().to_vec())
            }
            fn deserialize(&self, bytes: Option<&[u8]>) -> Result<$int, SerdeError> {
                let bytes = bytes.ok_or(SerdeError::Null)?;
                let array: [u8; $len] = bytes.try_into().map_err(|_| SerdeError::Length { expected: stringify!($len), got: bytes.len() })?;
                Ok(<$int>::from_be_bytes(array))
            }
        }
    };
}

big_endian_serde!(
    /// 64-bit integers, 8 bytes big-endian (Kafka's `LongSerde`).
    I64Serde,
    i64,
    8
);
big_endian_serde!(
    /// 32-bit integers, 4 bytes big-endian (Kafka's `IntegerSerde`).
    I32Serde,
    i32,
    4
);

/// Raw bytes, as they are on the topic (Kafka's `ByteArraySerde`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde for BytesSerde {
    type Value = Vec<u8>;
    fn serialize(&self, value: &Vec<u8>) -> Option<Vec<u8>> {
        Some(value.clone())
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Vec<u8>, SerdeError> {
        bytes.map(<[u8]>::to_vec).ok_or(SerdeError::Null)
    }
}

/// Any serde type as JSON.
#[derive(Debug)]
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Clone for JsonSerde<T> {
    fn clone(&self) -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T: serde::Serialize + serde::de::DeserializeOwned + 'static> Serde for JsonSerde<T> {
    type Value = T;
    fn serialize(&self, value: &T) -> Option<Vec<u8>> {
        serde_json::to_vec(value).ok()
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<T, SerdeError> {
        serde_json::from_slice(bytes.ok_or(SerdeError::Null)?).map_err(|e| SerdeError::Json(e.to_string()))
    }
}

/// Makes any serde nullable: `None` is Kafka's null (a tombstone, or a
/// record without a key).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nullable<S>(pub S);

impl<S: Serde> Serde for Nullable<S> {
    type Value = Option<S::Value>;
    fn serialize(&self, value: &Option<S::Value>) -> Option<Vec<u8>> {
        value.as_ref().and_then(|v| self.0.serialize(v))
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Option<S::Value>, SerdeError> {
        bytes.map(|b| self.0.deserialize(Some(b))).transpose()
    }
}

/// A shared serde is a serde, so the DSL can wrap the serdes it keeps (in
/// windowed-key serdes, for instance).
impl<T: 'static> Serde for std::sync::Arc<dyn Serde<Value = T>> {
    type Value = T;
    fn serialize(&self, value: &T) -> Option<Vec<u8>> {
        (**self).serialize(value)
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<T, SerdeError> {
        (**self).deserialize(bytes)
    }
}

/// A key within its window, as windowed aggregations emit it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The key, as the aggregation grouped by it.
    pub key: K,
    /// The window the key's aggregate is for.
    pub window: crate::window::Window,
}

/// Kafka Streams' time-windowed key layout: the inner key's bytes, then
/// the window start (8 bytes, big-endian). The end is not written; the
/// reader knows the window size.
#[derive(Debug, Clone, Copy)]
pub struct TimeWindowedSerde<S> {
    inner: S,
    window_size_ms: i64,
}

impl<S> TimeWindowedSerde<S> {
    /// The serde of keys in windows of `window_size_ms` (the reader's size
    /// sets each window's end).
    pub fn new(inner: S, window_size_ms: i64) -> Self {
        TimeWindowedSerde { inner, window_size_ms }
    }
}

impl<S: Serde> Serde for TimeWindowedSerde<S> {
    type Value = Windowed<S::Value>;
    fn serialize(&self, value: &Windowed<S::Value>) -> Option<Vec<u8>> {
        let mut bytes = self.inner.serialize(&value.key).unwrap_or_default();
        bytes.extend_from_slice(&value.window.start.to_be_bytes());
        Some(bytes)
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Windowed<S::Value>, SerdeError> {
        let bytes = bytes.ok_or(SerdeError::Null)?;
        let split = bytes.len().checked_sub(8).ok_or(SerdeError::Length { expected: "at least 8", got: bytes.len() })?;
        let start = i64::from_be_bytes(bytes[split..].try_into().expect("8 bytes"));
        let key = self.inner.deserialize(Some(&bytes[..split]))?;
        Ok(Windowed { key, window: crate::window::Window { start, end: start.saturating_add(self.window_size_ms) } })
    }
}

/// Kafka Streams' session-windowed key layout: the inner key's bytes, then
/// the session's end and start (8 bytes each, big-endian).
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionWindowedSerde<S>(pub S);

impl<S: Serde> Serde for SessionWindowedSerde<S> {
    type Value = Windowed<S::Value>;
    fn serialize(&self, value: &Windowed<S::Value>) -> Option<Vec<u8>> {
        let mut bytes = self.0.serialize(&value.key).unwrap_or_default();
        bytes.extend_from_slice(&value.window.end.to_be_bytes());
        bytes.extend_from_slice(&value.window.start.to_be_bytes());
        Some(bytes)
    }
    fn deserialize(&self, bytes: Option<&[u8]>) -> Result<Windowed<S::Value>, SerdeError> {
        let bytes = bytes.ok_or(SerdeError::Null)?;
        let split = bytes.len().checked_sub(16).ok_or(SerdeError::Length { expected: "at least 16", got: bytes.len() })?;
        let end = i64::from_be_bytes(bytes[split..split + 8].try_into().expect("8 bytes"));
        let start = i64::from_be_bytes(bytes[split + 8..].try_into().expect("8 bytes"));
        let key = self.0.deserialize(Some(&bytes[..split]))?;
        Ok(Windowed { key, window: crate::window::Window { start, end } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Window;

    #[test]
    fn integers_are_big_endian_as_in_kafka() {
        assert_eq!(I64Serde.serialize(&1), Some(vec![0, 0, 0, 0, 0, 0, 0, 1]));
        assert_eq!(I32Serde.deserialize(Some(&[0, 0, 1, 0])), Ok(256));
        assert_eq!(I64Serde.deserialize(Some(&[1, 2])), Err(SerdeError::Length { expected: "8", got: 2 }));
        assert_eq!(I64Serde.deserialize(None), Err(SerdeError::Null));
    }

    #[test]
    fn windowed_keys_use_kafka_streams_layouts() {
        let windowed = Windowed { key: "132".to_string(), window: Window { start: 10_000, end: 20_000 } };
        let time = TimeWindowedSerde::new(StringSerde, 10_000);
        let bytes = time.serialize(&windowed).unwrap();
        assert_eq!(bytes, [b"132".as_slice(), &10_000i64.to_be_bytes()].concat());
        assert_eq!(time.deserialize(Some(&bytes)), Ok(windowed.clone()));
        let session = SessionWindowedSerde(StringSerde);
        let bytes = session.serialize(&windowed).unwrap();
        assert_eq!(bytes, [b"132".as_slice(), &20_000i64.to_be_bytes(), &10_000i64.to_be_bytes()].concat());
        assert_eq!(session.deserialize(Some(&bytes)), Ok(windowed));
    }

    #[test]
    fn nullable_serdes_carry_kafka_nulls() {
        let serde = Nullable(StringSerde);
        assert_eq!(serde.serialize(&None), None);
        assert_eq!(serde.deserialize(None), Ok(None));
        assert_eq!(serde.deserialize(Some(b"x")), Ok(Some("x".to_string())));
    }
}
