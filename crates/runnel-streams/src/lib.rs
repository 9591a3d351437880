//! runnel-streams: stream processing in the style of Kafka Streams, in
//! Rust.
//!
//! Build a [`Topology`] with the [`StreamsBuilder`] DSL — [`KStream`],
//! [`KGroupedStream`], [`KTable`], time windows — then run it against
//! Kafka (runnel, or any Kafka cluster) with [`KafkaStreams`], or in
//! memory and deterministically with the [`TopologyTestDriver`], as Kafka
//! Streams' `TopologyTestDriver` runs a Java topology. State stores are
//! backed by changelog topics, so an application restarted anywhere
//! resumes where it stopped. Serdes write Kafka's
//! encodings, including Kafka Streams' windowed-key layouts, so Java
//! programs can read what a runnel-streams program writes and the reverse.
//!
//! ```
//! use runnel_streams::serde::{I64Serde, StringSerde};
//! use runnel_streams::{StreamsBuilder, TopologyTestDriver};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("rides", StringSerde, StringSerde)
//!     .group_by_key()
//!     .count()
//!     .to_stream()
//!     .to("rides-per-location", StringSerde, I64Serde);
//! let mut driver = TopologyTestDriver::new(builder.build());
//! let rides = driver.input_topic("rides", StringSerde, StringSerde);
//! let counts = driver.output_topic("rides-per-location", StringSerde, I64Serde);
//! driver.pipe(&rides, &"132".to_string(), &"a ride".to_string(), 1_000);
//! driver.pipe(&rides, &"132".to_string(), &"another".to_string(), 2_000);
//! let out = driver.read(&counts).unwrap();
//! assert_eq!(out.last().map(|r| r.value), Some(2));
//! ```

#![warn(missing_docs)]

pub mod aggregate;
mod checkpoint;
pub mod driver;
mod fk_join;
mod java_order;
pub mod join;
pub mod kstream;
pub mod processor;
pub mod registry;
pub mod runtime;
pub mod serde;
pub mod store;
pub mod table;
mod task;
pub mod topology;
pub mod window;

pub use aggregate::{KGroupedStream, SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream};
pub use driver::{InputTopic, OutputTopic, TestRecord, TopologyTestDriver};
pub use join::StreamJoined;
pub use kstream::{BranchedKStream, KStream};
pub use runtime::{KafkaStreams, ProcessingGuarantee, ReadOnlyKeyValueStore, ReadOnlyWindowStore, StreamsConfig, StreamsError, StreamsMetrics};
pub use table::{GlobalKTable, Joined, KGroupedTable, KTable, Suppressed};
pub use task::{OnUndecodable, Undecodable};
pub use topology::{Data, Grouped, StreamsBuilder, Topology};
pub use window::{JoinWindows, SessionWindows, SlidingWindows, TimeWindows, Window};
