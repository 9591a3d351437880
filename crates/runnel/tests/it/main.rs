//! The `runnel` binary as users run it: flags, config layering, listeners,
//! restarts, and crash safety under `kill -9`.

mod cli;
mod conformance;
mod crash;
mod group_cli;
mod hardening;
mod serve;
mod snapshots;
mod support;
mod tour;
