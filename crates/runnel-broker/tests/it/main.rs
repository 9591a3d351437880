//! Broker scenarios against real clients (librdkafka through the `rdkafka`
//! crate) and raw sockets. Every test starts its own broker on port 0.

mod clients;
mod fuzz;
mod groups;
mod raw;
mod support;
mod txns;
