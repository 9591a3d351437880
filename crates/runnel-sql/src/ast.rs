//! The statements and expressions of the dialect, as parsed. Variants
//! and fields are named after the syntax they stand for.

#![allow(missing_docs)]

use std::fmt;

use crate::types::SqlType;

/// A statement, and its text as written (ksqlDB echoes it back).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub statement: Statement,
    pub text: String,
}

/// Whether a source is a stream of events or a table of latest values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Stream,
    Table,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        })
    }
}

/// What `SHOW`/`LIST` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Topics,
    Streams,
    Tables,
    Queries,
    Properties,
    Functions,
    Types,
    Variables,
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (columns) WITH (...)`.
    CreateSource {
        kind: SourceKind,
        name: String,
        or_replace: bool,
        if_not_exists: bool,
        /// A read-only source (`CREATE SOURCE TABLE`), materialized for
        /// pull queries.
        source: bool,
        columns: Vec<ColumnDef>,
        properties: Vec<(String, Literal)>,
    },
    /// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (...)] AS SELECT ...`.
    CreateAs { kind: SourceKind, name: String, or_replace: bool, if_not_exists: bool, properties: Vec<(String, Literal)>, query: Box<Query> },
    /// `INSERT INTO name [WITH (...)] SELECT ...`.
    InsertInto { target: String, properties: Vec<(String, Literal)>, query: Box<Query> },
    /// `INSERT INTO name [(columns)] VALUES (...)`.
    InsertValues { target: String, columns: Vec<String>, values: Vec<Expr> },
    /// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]`.
    Drop { kind: SourceKind, name: String, if_exists: bool, delete_topic: bool },
    /// `TERMINATE id` or `TERMINATE ALL` (`None`).
    Terminate { query: Option<String> },
    /// `SHOW`/`LIST` ..., with `EXTENDED`.
    Show { what: Listing, extended: bool },
    /// `DESCRIBE [EXTENDED] name`.
    Describe { name: String, extended: bool },
    /// `DESCRIBE STREAMS|TABLES [EXTENDED]`.
    DescribeAll { kind: SourceKind, extended: bool },
    /// `DESCRIBE FUNCTION name`.
    DescribeFunction { name: String },
    /// `EXPLAIN query-id` or `EXPLAIN statement`.
    Explain(Box<Explained>),
    /// `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`.
    Print { topic: String, from_beginning: bool, interval: Option<u64>, limit: Option<u64> },
    /// `SET 'property' = 'value'`.
    Set { property: String, value: String },
    /// `UNSET 'property'`.
    Unset { property: String },
    /// `DEFINE name = 'value'`.
    Define { name: String, value: String },
    /// `UNDEFINE name`.
    Undefine { name: String },
    /// A query: push (`EMIT CHANGES`) or pull.
    Select(Box<Query>),
}

/// What `EXPLAIN` explains.
#[derive(Debug, Clone, PartialEq)]
pub enum Explained {
    Query(String),
    Statement(Statement),
}

/// A column of `CREATE STREAM|TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub sql_type: SqlType,
    pub role: ColumnRole,
}

/// Where a column's data lives in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnRole {
    Value,
    /// `KEY` (streams).
    Key,
    /// `PRIMARY KEY` (tables).
    PrimaryKey,
    /// `HEADERS`: all headers, as an array of key/value structs.
    Headers,
    /// `HEADER('key')`: the last header with that key, as bytes.
    Header(String),
}

/// A `SELECT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub items: Vec<SelectItem>,
    pub from: Relation,
    pub window: Option<WindowSpec>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub partition_by: Vec<Expr>,
    pub having: Option<Expr>,
    pub emit: Option<Emit>,
    pub limit: Option<u64>,
}

/// `EMIT CHANGES` or `EMIT FINAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    Changes,
    Final,
}

/// One item of a select list.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    /// `*`.
    All,
    /// `source.*`.
    AllOf(String),
    /// An expression, with its alias if any.
    Expr { expr: Expr, alias: Option<String> },
}

/// A source in `FROM`, or a join of several.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    Source { name: String, alias: Option<String> },
    Join(Box<Join>),
}

/// `left [INNER|LEFT|RIGHT|FULL] JOIN right [WITHIN ...] ON condition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub left: Relation,
    pub right: Relation,
    pub kind: JoinKind,
    pub within: Option<Within>,
    pub on: Expr,
}

/// The kind of a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

/// A stream–stream join's window: how far before and after, and grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Within {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: Option<i64>,
}

/// A `WINDOW` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub kind: WindowKind,
    pub retention_ms: Option<i64>,
    pub grace_ms: Option<i64>,
}

/// Tumbling, hopping or session windows, with their sizes in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling { size_ms: i64 },
    Hopping { size_ms: i64, advance_ms: i64 },
    Session { gap_ms: i64 },
}

/// A literal value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Boolean(bool),
    /// An integer that fits an `INT`, or else a `BIGINT`.
    Integer(i64),
    /// A number with a decimal point: a `DECIMAL` of its digits.
    Decimal(String),
    /// A number with an exponent: a `DOUBLE`.
    Double(f64),
    String(String),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Boolean(b) => write!(f, "{b}"),
            Literal::Integer(i) => write!(f, "{i}"),
            Literal::Decimal(d) => f.write_str(d),
            Literal::Double(d) => write!(f, "{d:?}"),
            Literal::String(s) => f.write_str(s),
        }
    }
}

/// Binary operators, by precedence group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Concat,
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinaryOp::Or => "OR",
            BinaryOp::And => "AND",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Concat => "||",
        })
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Literal),
    /// A column, qualified by its source or alias if written so.
    Column {
        source: Option<String>,
        name: String,
    },
    /// A variable of a lambda (`x => ...`).
    LambdaVariable(String),
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Not(Box<Expr>),
    Negate(Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    IsDistinctFrom {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// A function call; `COUNT(*)` has no arguments and `star`.
    Function {
        name: String,
        args: Vec<Expr>,
        star: bool,
    },
    Cast {
        expr: Box<Expr>,
        to: SqlType,
    },
    /// `CASE [operand] WHEN ... THEN ... [ELSE ...] END`.
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// `expr[index]` (arrays from 1; negative from the end) or `map[key]`.
    Subscript {
        expr: Box<Expr>,
        index: Box<Expr>,
    },
    /// `expr->field`.
    Field {
        expr: Box<Expr>,
        field: String,
    },
    Array(Vec<Expr>),
    Map(Vec<(Expr, Expr)>),
    Struct(Vec<(String, Expr)>),
    /// `(x, y) => body`.
    Lambda {
        params: Vec<String>,
        body: Box<Expr>,
    },
}
