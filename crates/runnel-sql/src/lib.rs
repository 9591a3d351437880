//! runnel-sql: streaming SQL in the ksqlDB dialect.
//!
//! This crate is the language's pure core: the [`lexer`] and [`parser`]
//! turn statements into an [`ast`], [`eval`] compiles expressions against
//! the columns a query sees and evaluates them row by row, with ksqlDB's
//! [`types`], [`value`]s, NULL rules and [`functions`]; the [`engine`]
//! keeps the catalog and plans queries onto runnel-streams. None of that
//! does I/O: the [`service`] is the one part that talks to Kafka and
//! serves ksqlDB's REST API.
//!
//! ```
//! use runnel_sql::eval::{compile, Eval, Scope};
//! use runnel_sql::parser::parse_expression;
//! use runnel_sql::types::SqlType;
//! use runnel_sql::value::Value;
//!
//! let scope = Scope::of(&[("FARE_AMOUNT", SqlType::Double), ("PAYMENT_TYPE", SqlType::Int)]);
//! let big_card_fare = compile(&parse_expression("fare_amount > 50 AND payment_type = 1").unwrap(), &scope).unwrap();
//! let mut ctx = Eval::default();
//! assert!(big_card_fare.eval(&[Value::Double(52.0), Value::Int(1)], &mut ctx).is_true());
//! ```

#![warn(missing_docs)]

pub mod aggregate;
pub mod ast;
pub mod catalog;
pub mod engine;
pub mod error;
pub mod eval;
pub mod format;
pub mod functions;
pub mod lexer;
pub mod parser;
pub mod planner;
pub mod row;
pub mod schema;
pub mod service;
pub mod time;
pub mod types;
pub mod value;

pub use error::SqlError;
