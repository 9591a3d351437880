//! runnel-sql's tests: data-driven expression cases and the parser.

mod expressions;
mod queries;
mod statements;
