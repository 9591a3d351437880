//! What can go wrong with a statement, and where.

use std::fmt;

/// A place in a statement's text, counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}:{}", self.line, self.column)
    }
}

/// Why a statement was refused. The REST API answers each with ksqlDB's
/// error code for a bad statement (40001), except where noted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// The text is not in the dialect: where, and what was expected.
    #[error("{at}: {message}")]
    Parse {
        /// Where the parser stopped.
        at: Position,
        /// What it expected and found.
        message: String,
    },
    /// The statement parses but cannot run as written (an unknown column,
    /// a type that does not fit, a clause the query kind refuses).
    #[error("{0}")]
    Invalid(String),
    /// A stream, table, query or function that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A stream or table of that name exists already.
    #[error("{0}")]
    Exists(String),
}

impl SqlError {
    pub(crate) fn parse(at: Position, message: &str) -> SqlError {
        SqlError::Parse { at, message: message.to_string() }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> SqlError {
        SqlError::Invalid(message.into())
    }
}
