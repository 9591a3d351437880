//! The one place where runnel's errors become Kafka error codes.

use kafka_protocol::error::ResponseError;
use runnel_coordinator::txn::TxnError;
use runnel_coordinator::GroupError;
use runnel_log::{BatchError, LogError, RecordsError, SequenceError};

use crate::broker_config::BrokerConfigError;
use crate::state::TopicError;
use crate::topic_config::ConfigError;

/// A Kafka error code with an optional message for responses that carry one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    pub code: ResponseError,
    pub message: Option<String>,
}

impl KafkaError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> KafkaError {
        KafkaError { code, message: Some(message.into()) }
    }

    pub fn bare(code: ResponseError) -> KafkaError {
        KafkaError { code, message: None }
    }

    pub fn code(&self) -> i16 {
        self.code.code()
    }
}

impl From<&BatchError> for KafkaError {
    fn from(e: &BatchError) -> Self {
        let code = match e {
            // As Apache Kafka 4: message formats 0 and 1 are invalid records.
            BatchError::UnsupportedMagic(_) => ResponseError::InvalidRecord,
            BatchError::CrcMismatch | BatchError::Truncated | BatchError::BadLength(_) => ResponseError::CorruptMessage,
            BatchError::BadRecordCount { .. } | BatchError::UnexpectedControlBatch => ResponseError::InvalidRecord,
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
        };
        KafkaError::new(code, e.to_string())
    }
}

impl From<&RecordsError> for KafkaError {
    fn from(e: &RecordsError) -> Self {
        KafkaError::new(ResponseError::CorruptMessage, e.to_string())
    }
}

impl From<&LogError> for KafkaError {
    fn from(e: &LogError) -> Self {
        match e {
            LogError::Batch(b) => b.into(),
            LogError::OffsetOutOfRange { .. } => KafkaError::new(ResponseError::OffsetOutOfRange, e.to_string()),
            LogError::Sequence(s) => {
                let code = match s {
                    SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
                    SequenceError::Fenced { .. } => ResponseError::InvalidProducerEpoch,
                    SequenceError::DuplicateWithNew => ResponseError::DuplicateSequenceNumber,
                };
                KafkaError::new(code, s.to_string())
            }
            // As Apache Kafka answers a read that meets a damaged batch.
            LogError::Records(r) => r.into(),
            LogError::Corrupt { .. } => KafkaError::new(ResponseError::CorruptMessage, e.to_string()),
            LogError::Io(_) => KafkaError::new(ResponseError::KafkaStorageError, e.to_string()),
        }
    }
}

impl From<&ConfigError> for KafkaError {
    fn from(e: &ConfigError) -> Self {
        KafkaError::new(ResponseError::InvalidConfig, e.to_string())
    }
}

impl From<&TopicError> for KafkaError {
    fn from(e: &TopicError) -> Self {
        let code = match e {
            TopicError::InvalidName(_) | TopicError::Collides { .. } => ResponseError::InvalidTopicException,
            TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
            TopicError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
            TopicError::Internal(_) => ResponseError::InvalidRequest,
            TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            TopicError::TooManyOpenFiles { .. } => ResponseError::InvalidPartitions,
            TopicError::Config(c) => return c.into(),
            TopicError::Log(l) => return l.into(),
            TopicError::Io(_) => ResponseError::KafkaStorageError,
        };
        KafkaError::new(code, e.to_string())
    }
}

impl From<GroupError> for KafkaError {
    fn from(e: GroupError) -> Self {
        let code = match e {
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
            GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        };
        KafkaError::new(code, e.to_string())
    }
}

impl From<&BrokerConfigError> for KafkaError {
    fn from(e: &BrokerConfigError) -> Self {
        // As Apache Kafka: a broker config it cannot take, for whatever
        // reason, is an invalid request (topic configs get INVALID_CONFIG).
        let code = match e {
            BrokerConfigError::NotDynamic(_) | BrokerConfigError::Invalid { .. } => ResponseError::InvalidRequest,
            BrokerConfigError::Io(_) => ResponseError::KafkaStorageError,
        };
        KafkaError::new(code, e.to_string())
    }
}

/// The Kafka error code of an optional group error (0 for none).
pub fn group_code(error: Option<GroupError>) -> i16 {
    error.map_or(0, |e| KafkaError::from(e).code())
}

/// The Kafka error of a refused transactional request. Clients older than
/// KIP-588 know a fenced producer only as INVALID_PRODUCER_EPOCH, so
/// request versions below `fenced_from` get that, as Apache Kafka answers.
pub fn txn_error(e: TxnError, version: i16, fenced_from: i16) -> ResponseError {
    match e {
        TxnError::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::ProducerFenced if version < fenced_from => ResponseError::InvalidProducerEpoch,
        TxnError::ProducerFenced => ResponseError::ProducerFenced,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::InvalidRequest => ResponseError::InvalidRequest,
    }
}
