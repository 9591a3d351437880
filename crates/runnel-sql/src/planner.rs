//! Queries planned onto runnel-streams.
//!
//! Planning resolves a `SELECT` against the catalog: it compiles every
//! expression, works out the output's key and value columns, and refuses
//! what cannot run — all before any node exists. Building then adds the
//! query's nodes to a `StreamsBuilder`: the source (with the `TIMESTAMP`
//! column as event time), a step that widens each record into the row the
//! expressions see (key columns, value columns, `ROWTIME`, `ROWPARTITION`,
//! `ROWOFFSET`), then `WHERE`,
//! and either a projection (with `PARTITION BY` re-keying) or a grouping
//! and aggregation (windowed or not, with `HAVING` and `EMIT FINAL`), and
//! the sink.

use std::sync::Arc;

use runnel_streams::processor::{Processor, ProcessorContext};
use runnel_streams::serde::{Nullable, Serde, SessionWindowedSerde, TimeWindowedSerde, Windowed};
use runnel_streams::Data;
use runnel_streams::{Grouped, JoinWindows, Joined, KGroupedStream, KStream, KTable, SessionWindows, StreamJoined, StreamsBuilder, Suppressed, TimeWindows};

use crate::aggregate::Aggregate;
use crate::ast::{BinaryOp, Emit, Expr, Join, JoinKind, Literal, Query, Relation, SelectItem, SourceKind, WindowKind, WindowSpec, Within};
use crate::catalog::{Catalog, KeyWindow, SourceDef};
use crate::error::SqlError;
use crate::eval::{compile, ColumnRef, Compiled, Eval, Scope};
use crate::format::{Format, KeySerde, RowFormat, RowSerde};
use crate::functions;
use crate::row::{Key, ProcessingLog, Row};
use crate::schema::BoundSchema;
use crate::time;
use crate::types::SqlType;
use crate::value::Value;

/// ksqlDB's grace period when a window names none (Kafka Streams' old
/// default of a day).
const DEFAULT_GRACE_MS: i64 = 86_400_000;

/// What a query produces: a stream or a table, and its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    /// A stream (projections) or a table (aggregations).
    pub kind: SourceKind,
    /// Key columns.
    pub key: Vec<(String, SqlType)>,
    /// Value columns.
    pub value: Vec<(String, SqlType)>,
    /// The window its keys carry, for windowed aggregations.
    pub window: Option<KeyWindow>,
}

/// Where a query's rows go.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// The topic.
    pub topic: String,
    /// The keys' format.
    pub key_format: Format,
    /// The values' format.
    pub value_format: Format,
    /// The registry schema keys are written with (AVRO, PROTOBUF, JSON_SR).
    pub key_schema: Option<Arc<BoundSchema>>,
    /// The registry schema values are written with.
    pub value_schema: Option<Arc<BoundSchema>>,
}

impl SinkSpec {
    /// Writing into `sink`.
    pub fn of(sink: &SourceDef) -> SinkSpec {
        SinkSpec {
            topic: sink.topic.clone(),
            key_format: sink.key_format,
            value_format: sink.value_format,
            key_schema: sink.key_schema.clone(),
            value_schema: sink.value_schema.clone(),
        }
    }
}

/// A row a push query hands its client: the key columns, the window for
/// windowed aggregations, and the value columns.
#[derive(Debug, Clone, PartialEq)]
pub struct EmittedRow {
    /// Key column values.
    pub key: Vec<Value>,
    /// `WINDOWSTART` and `WINDOWEND`, for a windowed aggregation.
    pub window: Option<(i64, i64)>,
    /// Value column values.
    pub value: Row,
}

/// Receives a push query's rows as the stream thread produces them.
pub type RowCallback = Arc<dyn Fn(EmittedRow) + Send + Sync>;

/// Where a built query's rows go.
enum Output<'a> {
    /// A topic, for persistent queries.
    Topic(&'a SinkSpec),
    /// A callback, for push queries; rows deleted from a table are not
    /// passed on.
    Rows(RowCallback),
}

impl Output<'_> {
    /// Writes `stream` to the topic in the given serdes, or passes each of
    /// its records to the callback as `row` makes it (`None`: nothing to
    /// pass).
    fn write<K: Data, V: Data>(
        &self,
        stream: KStream<K, V>,
        key_serde: impl Serde<Value = K>,
        value_serde: impl Serde<Value = V>,
        row: impl Fn(&K, &V) -> Option<EmittedRow> + Send + Sync + 'static,
    ) {
        match self {
            Output::Topic(sink) => stream.to(&sink.topic, key_serde, value_serde),
            Output::Rows(callback) => {
                let callback = callback.clone();
                stream.foreach(move |k, v| {
                    if let Some(emitted) = row(k, v) {
                        callback(emitted);
                    }
                });
            }
        }
    }
}

fn plain_row(key: &Key, value: &Row) -> Option<EmittedRow> {
    Some(EmittedRow { key: key.0.clone(), window: None, value: value.clone() })
}

fn nullable_row(key: &Key, value: &Option<Row>) -> Option<EmittedRow> {
    Some(EmittedRow { key: key.0.clone(), window: None, value: value.clone()? })
}

fn windowed_row(key: &Windowed<Key>, value: &Option<Row>) -> Option<EmittedRow> {
    Some(EmittedRow { key: key.key.0.clone(), window: Some((key.window.start, key.window.end)), value: value.clone()? })
}

/// A planned query, ready to be built onto a `StreamsBuilder`.
#[derive(Clone)]
pub struct Plan {
    source: SourceDef,
    /// The sources joined to it, in turn.
    joins: Vec<JoinPlan>,
    filter: Option<Compiled>,
    shape: Shape,
    /// What the query produces.
    pub output: OutputSchema,
    log: Arc<ProcessingLog>,
}

/// A join of what the query's source was joined into so far (left) with
/// one more source.
#[derive(Clone)]
struct JoinPlan {
    right: SourceDef,
    kind: JoinKind,
    within: Option<Within>,
    /// The join expression of each side: the left's over the row joined
    /// so far, the right's over the right source's rows.
    left_key: Compiled,
    right_key: Compiled,
    /// The two sides of `ON`, as written.
    on: (Expr, Expr),
}

#[derive(Clone)]
enum Shape {
    /// Each input row, projected; `rekey` are `PARTITION BY` expressions;
    /// `key` computes the output key (none: a join's result keeps the
    /// join key its records carry).
    Project { rekey: Option<Vec<Compiled>>, key: Vec<Compiled>, values: Vec<Compiled> },
    /// Rows grouped and aggregated.
    Aggregate(Box<Aggregation>),
}

#[derive(Clone)]
struct Aggregation {
    /// The grouping expressions, over input rows.
    group: Vec<Compiled>,
    /// Whether the grouping is the source's key as it is (no repartition).
    by_source_key: bool,
    aggregates: Vec<Aggregate>,
    window: Option<WindowSpec>,
    /// Over the aggregated row: group values, aggregate results, then
    /// WINDOWSTART and WINDOWEND.
    having: Option<Compiled>,
    values: Vec<Compiled>,
    emit_final: bool,
}

/// The names of the columns a projection's items produce: their aliases,
/// a column's own name, or `KSQL_COL_<n>`, numbered from 0 across the
/// items that need one and skipping numbers a source column has, as
/// ksqlDB names them.
pub(crate) fn item_names(items: &[(Expr, Option<String>)], scope: &Scope) -> Vec<String> {
    let taken: Vec<&str> = scope.columns.iter().map(|c| c.name.as_str()).collect();
    let mut next = 0;
    items
        .iter()
        .map(|(expr, alias)| match (alias, expr) {
            (Some(alias), _) => alias.clone(),
            (None, Expr::Column { name, .. }) => name.clone(),
            (None, Expr::Field { field, .. }) => field.clone(),
            _ => loop {
                let name = format!("KSQL_COL_{next}");
                next += 1;
                if !taken.contains(&name.as_str()) {
                    break name;
                }
            },
        })
        .collect()
}

/// The query's input scope: key columns, value columns, header columns,
/// then the pseudo columns `ROWTIME`, `ROWPARTITION` and `ROWOFFSET`.
fn input_scope(source: &SourceDef, alias: &str) -> Scope {
    let qualified = |name: &str, ty: &SqlType| ColumnRef { source: Some(alias.to_string()), name: name.to_string(), sql_type: ty.clone() };
    let mut columns: Vec<ColumnRef> =
        source.key.iter().chain(&source.value).chain(source.headers.iter().map(|h| &h.column)).map(|c| qualified(&c.name, &c.sql_type)).collect();
    columns.push(qualified("ROWTIME", &SqlType::Bigint));
    columns.push(qualified("ROWPARTITION", &SqlType::Int));
    columns.push(qualified("ROWOFFSET", &SqlType::Bigint));
    Scope { columns }
}

/// Replaces aggregate calls with `$AGG<n>` columns and grouping
/// expressions with `$KEY<n>`, collecting the aggregates.
fn rewrite(expr: &Expr, group: &[Expr], calls: &mut Vec<(String, Vec<Expr>, bool)>) -> Expr {
    if let Some(position) = group.iter().position(|g| g == expr) {
        return Expr::Column { source: None, name: format!("$KEY{position}") };
    }
    let mut again = |e: &Expr| rewrite(e, group, calls);
    match expr {
        Expr::Function { name, args, star } if functions::is_aggregate(name) => {
            let call = (name.clone(), args.clone(), *star);
            let position = calls.iter().position(|c| c == &call).unwrap_or_else(|| {
                calls.push(call);
                calls.len() - 1
            });
            Expr::Column { source: None, name: format!("$AGG{position}") }
        }
        Expr::Function { name, args, star } => Expr::Function { name: name.clone(), args: args.iter().map(again).collect(), star: *star },
        Expr::Binary { op, left, right } => Expr::Binary { op: *op, left: Box::new(again(left)), right: Box::new(again(right)) },
        Expr::Not(inner) => Expr::Not(Box::new(again(inner))),
        Expr::Negate(inner) => Expr::Negate(Box::new(again(inner))),
        Expr::IsNull { expr, negated } => Expr::IsNull { expr: Box::new(again(expr)), negated: *negated },
        Expr::Cast { expr, to } => Expr::Cast { expr: Box::new(again(expr)), to: to.clone() },
        Expr::Case { operand, whens, otherwise } => Expr::Case {
            operand: operand.as_ref().map(|o| Box::new(again(o))),
            whens: whens.iter().map(|(w, t)| (again(w), again(t))).collect(),
            otherwise: otherwise.as_ref().map(|o| Box::new(again(o))),
        },
        Expr::Between { expr, low, high, negated } => {
            Expr::Between { expr: Box::new(again(expr)), low: Box::new(again(low)), high: Box::new(again(high)), negated: *negated }
        }
        Expr::InList { expr, list, negated } => Expr::InList { expr: Box::new(again(expr)), list: list.iter().map(again).collect(), negated: *negated },
        Expr::Subscript { expr, index } => Expr::Subscript { expr: Box::new(again(expr)), index: Box::new(again(index)) },
        Expr::Field { expr, field } => Expr::Field { expr: Box::new(again(expr)), field: field.clone() },
        other => other.clone(),
    }
}

/// Plans `query` over the catalog. A `persistent` query's key columns
/// must be among its selected columns, as ksqlDB requires.
pub fn plan(catalog: &Catalog, query: &Query, persistent: bool, log: Arc<ProcessingLog>) -> Result<Plan, SqlError> {
    let (name, alias) = match &query.from {
        Relation::Source { name, alias } => (name.clone(), alias.clone().unwrap_or_else(|| name.clone())),
        Relation::Join(join) => return plan_join(catalog, query, join, persistent, log),
    };
    let source = catalog.get(&name)?.clone();
    if source.window.is_some() {
        return Err(SqlError::invalid(format!("Queries on the windowed table {name} are not available yet.")));
    }
    if query.emit.is_none() && !persistent {
        return Err(SqlError::invalid("Pull queries are not available yet: add EMIT CHANGES for a push query."));
    }
    let scope = input_scope(&source, &alias);
    let filter = query.filter.as_ref().map(|f| compile(f, &scope)).transpose()?;
    if let Some(filter) = &filter {
        if filter.sql_type != SqlType::Boolean {
            return Err(SqlError::invalid(format!("Type error in WHERE expression: should evaluate to boolean but is {}", filter.sql_type)));
        }
    }
    // Expand `*` and `source.*` into the key and value columns.
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &query.items {
        match item {
            SelectItem::All | SelectItem::AllOf(_) => {
                if let SelectItem::AllOf(qualifier) = item {
                    if qualifier != &alias && qualifier != &name {
                        return Err(SqlError::invalid(format!("'{qualifier}' is not a source of the query.")));
                    }
                }
                for column in source.key.iter().chain(&source.value).chain(source.headers.iter().map(|h| &h.column)) {
                    items.push((Expr::Column { source: Some(alias.clone()), name: column.name.clone() }, None));
                }
            }
            SelectItem::Expr { expr, alias } => items.push((expr.clone(), alias.clone())),
        }
    }
    let names = item_names(&items, &scope);
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(SqlError::invalid(format!("Duplicate value columns found in schema: `{name}`")));
        }
    }
    let has_aggregates = items.iter().any(|(e, _)| contains_aggregate(e));
    let (shape, output) = if query.group_by.is_empty() && !has_aggregates {
        if query.window.is_some() {
            return Err(SqlError::invalid("WINDOW clause requires a GROUP BY clause."));
        }
        if query.having.is_some() {
            return Err(SqlError::invalid("HAVING requires a GROUP BY clause."));
        }
        plan_projection(&source, &scope, &alias, query, &items, &names, persistent)?
    } else {
        if !query.partition_by.is_empty() {
            return Err(SqlError::invalid("PARTITION BY and GROUP BY in the same query are not supported."));
        }
        if query.group_by.is_empty() {
            return Err(SqlError::invalid("Aggregate functions need a GROUP BY clause."));
        }
        plan_aggregation(&source, &scope, query, &items, &names, persistent)?
    };
    Ok(Plan { source, joins: Vec::new(), filter, shape, output, log })
}

/// The sources of a chain of joins, left to right, with their aliases,
/// and the joins between them (the `i`th joins source `i + 1`).
type JoinChain<'a, 'q> = (Vec<(&'a SourceDef, String)>, Vec<&'q Join>);

/// A chain of joins, as the parser nests them (each join's left side the
/// joins before it) taken apart.
fn join_chain<'a, 'q>(catalog: &'a Catalog, join: &'q Join) -> Result<JoinChain<'a, 'q>, SqlError> {
    let (mut sides, mut joins) = match &join.left {
        Relation::Source { name, alias } => (vec![(catalog.get(name)?, alias.clone().unwrap_or_else(|| name.clone()))], Vec::new()),
        Relation::Join(inner) => join_chain(catalog, inner)?,
    };
    let Relation::Source { name, alias } = &join.right else {
        return Err(SqlError::invalid("A join's right side must be a stream or table; join the sources one after another."));
    };
    let alias = alias.clone().unwrap_or_else(|| name.clone());
    if let Some((_, taken)) = sides.iter().find(|(_, a)| *a == alias) {
        return Err(SqlError::invalid(format!("Each side of the join needs its own alias: {taken} is used twice.")));
    }
    sides.push((catalog.get(name)?, alias));
    joins.push(join);
    Ok((sides, joins))
}

/// Joins of sources, one after another, each with the result of the
/// joins before it: stream–table (INNER, LEFT) on the table's primary
/// key, stream–stream (INNER, LEFT, RIGHT, FULL) `WITHIN` a window, each
/// stream re-keyed by its join expression unless the first is joined on
/// its own key, or table–table on the right table's primary key (INNER,
/// LEFT, RIGHT and FULL on the tables' keys; the first join may instead
/// be INNER or LEFT on a foreign key taken from the left table's rows);
/// then `WHERE` and the projection over the joined row (each side's
/// columns in turn).
fn plan_join(catalog: &Catalog, query: &Query, join: &Join, persistent: bool, log: Arc<ProcessingLog>) -> Result<Plan, SqlError> {
    let (sides, chain) = join_chain(catalog, join)?;
    if query.emit.is_none() && !persistent {
        return Err(SqlError::invalid("Pull queries are not available yet: add EMIT CHANGES for a push query."));
    }
    if !query.group_by.is_empty() || query.window.is_some() || !query.partition_by.is_empty() {
        return Err(SqlError::invalid("GROUP BY, WINDOW and PARTITION BY over a join are not available yet."));
    }
    let (first, first_alias) = (sides[0].0, &sides[0].1);
    let mut scope = input_scope(first, first_alias);
    // The places in the joined row known to hold the result's key: a
    // table's primary key, and the keys of tables joined to it on it.
    let mut key_positions: Vec<usize> = if first.key.len() == 1 { vec![0] } else { Vec::new() };
    let mut joins = Vec::new();
    for (step, (join, (right, right_alias))) in chain.iter().zip(&sides[1..]).enumerate() {
        let right_scope = input_scope(right, right_alias);
        let Expr::Binary { op: BinaryOp::Eq, left: a, right: b } = &join.on else {
            return Err(SqlError::invalid("Unsupported join expression: a join's ON must be an equality of an expression of each side."));
        };
        let (left_key, right_key) = match (compile(a, &scope), compile(b, &right_scope)) {
            (Ok(l), Ok(r)) => (l, r),
            _ => match (compile(b, &scope), compile(a, &right_scope)) {
                (Ok(l), Ok(r)) => (l, r),
                _ => return Err(SqlError::invalid("Unsupported join expression: each side of ON must refer to one source of the join.")),
            },
        };
        if left_key.sql_type != right_key.sql_type {
            return Err(SqlError::invalid(format!("Invalid join condition: types don't match. Got {} = {}.", left_key.sql_type, right_key.sql_type)));
        }
        let on_left_key = left_key.as_column().is_some_and(|c| key_positions.contains(&c));
        match (first.kind, right.kind) {
            (SourceKind::Stream, SourceKind::Table) => {
                if !matches!(join.kind, JoinKind::Inner | JoinKind::Left) {
                    return Err(SqlError::invalid(format!("Stream-table joins are INNER or LEFT, not {}.", format!("{:?}", join.kind).to_uppercase())));
                }
                if join.within.is_some() {
                    return Err(SqlError::invalid("A stream-table join takes no WITHIN clause."));
                }
                require_primary_key(right, &right_key, "stream-table joins require a join on the table's")?;
            }
            (SourceKind::Stream, SourceKind::Stream) => {
                if join.within.is_none() {
                    return Err(SqlError::invalid("Stream-Stream joins must have a WITHIN clause specified. None was provided."));
                }
            }
            (SourceKind::Table, SourceKind::Table) => {
                if join.within.is_some() {
                    return Err(SqlError::invalid("A table-table join takes no WITHIN clause."));
                }
                require_primary_key(right, &right_key, "table-table joins require a join on the right table's")?;
                if !on_left_key && step > 0 {
                    return Err(SqlError::invalid("Invalid join condition: a table joined to the result of a join must be joined on its key."));
                }
                if !on_left_key && matches!(join.kind, JoinKind::Full | JoinKind::Right) {
                    let kind = if join.kind == JoinKind::Full { "full-outer" } else { "right" };
                    return Err(SqlError::invalid(format!("Invalid join type: {kind} join not supported for foreign-key table-table join.")));
                }
            }
            (SourceKind::Table, SourceKind::Stream) => {
                return Err(SqlError::invalid("Joins with a table on the left and a stream on the right are not available: put the stream on the left."))
            }
        }
        let offset = scope.columns.len();
        if first.kind == SourceKind::Table && on_left_key {
            key_positions.push(offset);
        }
        scope.columns.extend(right_scope.columns);
        joins.push(JoinPlan {
            right: (*right).clone(),
            kind: join.kind,
            within: join.within,
            left_key,
            right_key,
            on: (a.as_ref().clone(), b.as_ref().clone()),
        });
    }
    let filter = query.filter.as_ref().map(|f| compile(f, &scope)).transpose()?;
    let mut items: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &query.items {
        match item {
            SelectItem::All | SelectItem::AllOf(_) => {
                for (source, alias) in &sides {
                    if matches!(item, SelectItem::AllOf(q) if q != alias && q != &source.name) {
                        continue;
                    }
                    for column in source.key.iter().chain(&source.value).chain(source.headers.iter().map(|h| &h.column)) {
                        items.push((Expr::Column { source: Some(alias.clone()), name: column.name.clone() }, Some(format!("{alias}_{}", column.name))));
                    }
                }
            }
            SelectItem::Expr { expr, alias } => items.push((expr.clone(), alias.clone())),
        }
    }
    let names = item_names(&items, &scope);
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(SqlError::invalid(format!("Duplicate value columns found in schema: `{name}`")));
        }
    }
    let compiled_items: Vec<Compiled> = items.iter().map(|(e, _)| compile(e, &scope)).collect::<Result<_, _>>()?;
    // A stream's result is keyed by the last join's expression, which the
    // item selecting either side of it names; a table's result keeps its
    // key, named by the item selecting a column holding it.
    let last = joins.last().expect("a join joins two sources at least");
    let (key_item, key_type, shown) = match first.kind {
        SourceKind::Table => {
            let item = compiled_items.iter().position(|c| c.as_column().is_some_and(|column| key_positions.contains(&column)));
            (item, first.key[0].sql_type.clone(), first.key[0].name.clone())
        }
        SourceKind::Stream => {
            let item = items.iter().position(|(e, _)| *e == last.on.0 || *e == last.on.1);
            let shown = match &last.on.0 {
                Expr::Column { name, .. } => name.clone(),
                _ => "KSQL_COL_0".into(),
            };
            (item, last.left_key.sql_type.clone(), shown)
        }
    };
    let key_column = match key_item {
        Some(position) => (names[position].clone(), key_type),
        None if persistent => {
            return Err(SqlError::invalid(format!("Key missing from projection (ie, SELECT). The query used to build the result must include the join expression {shown} in its projection (eg, SELECT {shown}...).")));
        }
        None => ("KSQL_COL_0".into(), key_type),
    };
    let key_items: Vec<usize> = key_item.into_iter().collect();
    let (values, value_columns) = value_items(compiled_items, &names, &key_items, persistent);
    let output = OutputSchema { kind: first.kind, key: vec![key_column], value: value_columns, window: None };
    Ok(Plan { source: first.clone(), joins, filter, shape: Shape::Project { rekey: None, key: Vec::new(), values }, output, log })
}

/// Refuses a join whose right side is not joined on its primary key;
/// `rule` says which joins need that.
fn require_primary_key(right: &SourceDef, right_key: &Compiled, rule: &str) -> Result<(), SqlError> {
    if on_primary_key(right, right_key) {
        return Ok(());
    }
    Err(SqlError::invalid(format!("Invalid join condition: {rule} primary key, {}.", right.key.first().map_or("", |c| c.name.as_str()))))
}

/// Whether a join expression, compiled over its side's row, is nothing
/// but that side's one key column.
fn on_primary_key(source: &SourceDef, key: &Compiled) -> bool {
    source.key.len() == 1 && key.as_column() == Some(0)
}

fn contains_aggregate(expr: &Expr) -> bool {
    let mut calls = Vec::new();
    rewrite(expr, &[], &mut calls);
    !calls.is_empty()
}

/// A projection's key: the source's key columns, or the `PARTITION BY`
/// expressions; each key column is named by the item that selects it.
fn plan_projection(
    source: &SourceDef,
    scope: &Scope,
    alias: &str,
    query: &Query,
    items: &[(Expr, Option<String>)],
    names: &[String],
    persistent: bool,
) -> Result<(Shape, OutputSchema), SqlError> {
    let key_exprs: Vec<Expr> = if query.partition_by.is_empty() {
        source.key.iter().map(|c| Expr::Column { source: Some(alias.to_string()), name: c.name.clone() }).collect()
    } else {
        query.partition_by.clone()
    };
    let compiled_items: Vec<Compiled> = items.iter().map(|(e, _)| compile(e, scope)).collect::<Result<_, _>>()?;
    let rekey = (!query.partition_by.is_empty()).then(|| query.partition_by.iter().map(|e| compile(e, scope)).collect::<Result<Vec<_>, _>>()).transpose()?;
    let mut key = Vec::new();
    let mut key_columns = Vec::new();
    let mut key_items = Vec::new();
    for (k, key_expr) in key_exprs.iter().enumerate() {
        let same = |e: &Expr| e == key_expr || matches!((e, key_expr), (Expr::Column { source: None, name: a }, Expr::Column { name: b, .. }) if a == b);
        let compiled_key = compile(key_expr, scope)?;
        match items.iter().position(|(e, _)| same(e)) {
            Some(position) => {
                key_items.push(position);
                key_columns.push((names[position].clone(), compiled_key.sql_type.clone()));
            }
            None if persistent => {
                let shown = match key_expr {
                    Expr::Column { name, .. } => name.clone(),
                    _ => format!("KSQL_COL_{k}"),
                };
                return Err(SqlError::invalid(format!("Key missing from projection (ie, SELECT). The query used to build the result must include the key column {shown} in its projection (eg, SELECT {shown}...).")));
            }
            None => key_columns.push((format!("KSQL_COL_{k}"), compiled_key.sql_type.clone())),
        }
        // After PARTITION BY the new key is the row's first columns.
        key.push(if rekey.is_some() {
            compile(&Expr::Column { source: None, name: format!("$KEY{k}") }, &rekeyed_scope(rekey.as_deref().unwrap_or_default(), scope))?
        } else {
            compiled_key
        });
    }
    let (values, value_columns) = value_items(compiled_items, names, &key_items, persistent);
    let values = match &rekey {
        Some(rekey) => {
            let scope = rekeyed_scope(rekey, scope);
            items
                .iter()
                .enumerate()
                .filter(|(i, _)| !persistent || !key_items.contains(i))
                .map(|(_, (e, _))| compile(e, &scope))
                .collect::<Result<Vec<_>, _>>()?
        }
        None => values,
    };
    let output = OutputSchema { kind: SourceKind::Stream, key: key_columns, value: value_columns, window: None };
    if source.kind == SourceKind::Table && rekey.is_some() {
        return Err(SqlError::invalid("PARTITION BY is not supported on tables."));
    }
    let output = OutputSchema { kind: source.kind, ..output };
    Ok((Shape::Project { rekey, key, values }, output))
}

/// The selected items that are values, with their columns: a persistent
/// query's key columns (the items at `key_items`) go into its key.
fn value_items(items: Vec<Compiled>, names: &[String], key_items: &[usize], persistent: bool) -> (Vec<Compiled>, Vec<(String, SqlType)>) {
    items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !persistent || !key_items.contains(i))
        .map(|(i, c)| {
            let column = (names[i].clone(), c.sql_type.clone());
            (c, column)
        })
        .unzip()
}

/// After `PARTITION BY`, rows are the new key's values followed by the
/// input row.
fn rekeyed_scope(rekey: &[Compiled], scope: &Scope) -> Scope {
    let mut columns: Vec<ColumnRef> =
        rekey.iter().enumerate().map(|(i, c)| ColumnRef { source: None, name: format!("$KEY{i}"), sql_type: c.sql_type.clone() }).collect();
    columns.extend(scope.columns.iter().cloned());
    Scope { columns }
}

fn plan_aggregation(
    source: &SourceDef,
    scope: &Scope,
    query: &Query,
    items: &[(Expr, Option<String>)],
    names: &[String],
    persistent: bool,
) -> Result<(Shape, OutputSchema), SqlError> {
    let group: Vec<Compiled> = query.group_by.iter().map(|g| compile(g, scope)).collect::<Result<_, _>>()?;
    let by_source_key = query.group_by.len() == source.key.len()
        && query.group_by.iter().zip(&source.key).all(|(g, k)| matches!(g, Expr::Column { name, .. } if name == &k.name));
    let mut calls = Vec::new();
    let rewritten: Vec<Expr> = items.iter().map(|(e, _)| rewrite(e, &query.group_by, &mut calls)).collect();
    let having = query.having.as_ref().map(|h| rewrite(h, &query.group_by, &mut calls));
    let mut aggregates = Vec::new();
    for (name, args, star) in &calls {
        let (first, rest) = args.split_first().map_or((None, &[][..]), |(f, r)| (Some(f), r));
        let compiled_args = first.map(|f| compile(f, scope)).transpose()?.into_iter().collect();
        let literal_args: Vec<Value> = rest
            .iter()
            .map(|a| match a {
                Expr::Literal(Literal::Integer(i)) => Ok(Value::Bigint(*i)),
                _ => Err(SqlError::invalid(format!("Function '{name}' takes literal arguments after the first"))),
            })
            .collect::<Result<_, _>>()?;
        aggregates.push(Aggregate::new(name, compiled_args, *star, &literal_args)?);
    }
    let window = query.window;
    if source.kind == SourceKind::Table {
        if window.is_some() {
            return Err(SqlError::invalid("Windowed aggregations are not supported on tables: aggregate a stream."));
        }
        if let Some(((name, _, _), _)) = calls.iter().zip(&aggregates).find(|(_, a)| !a.undoable()) {
            return Err(SqlError::invalid(format!("The aggregate function {name} is not supported on tables: it cannot take a row back out.")));
        }
    }
    // The aggregated row: group values, aggregate results, window bounds.
    let mut columns: Vec<ColumnRef> =
        group.iter().enumerate().map(|(i, g)| ColumnRef { source: None, name: format!("$KEY{i}"), sql_type: g.sql_type.clone() }).collect();
    columns.extend(aggregates.iter().enumerate().map(|(i, a)| ColumnRef { source: None, name: format!("$AGG{i}"), sql_type: a.result_type.clone() }));
    if window.is_some() {
        columns.push(ColumnRef { source: None, name: "WINDOWSTART".into(), sql_type: SqlType::Bigint });
        columns.push(ColumnRef { source: None, name: "WINDOWEND".into(), sql_type: SqlType::Bigint });
    }
    let aggregated = Scope { columns };
    let not_grouped = |e: SqlError| match e {
        SqlError::Invalid(message) if message.starts_with("Column '") => SqlError::invalid(format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {}",
            message.trim_start_matches("Column '").trim_end_matches("' cannot be resolved.")
        )),
        other => other,
    };
    let compiled_items: Vec<Compiled> = rewritten.iter().map(|e| compile(e, &aggregated).map_err(not_grouped)).collect::<Result<_, _>>()?;
    let having = having.map(|h| compile(&h, &aggregated).map_err(not_grouped)).transpose()?;
    let mut key_columns = Vec::new();
    let mut key_items = Vec::new();
    for (k, g) in group.iter().enumerate() {
        match rewritten.iter().position(|e| e == &Expr::Column { source: None, name: format!("$KEY{k}") }) {
            Some(position) => {
                key_items.push(position);
                key_columns.push((names[position].clone(), g.sql_type.clone()));
            }
            None if persistent => {
                let shown = match &query.group_by[k] {
                    Expr::Column { name, .. } => name.clone(),
                    _ => format!("KSQL_COL_{k}"),
                };
                return Err(SqlError::invalid(format!("Key missing from projection (ie, SELECT). The query used to build the result must include the grouping expression {shown} in its projection (eg, SELECT {shown}...).")));
            }
            None => key_columns.push((format!("KSQL_COL_{k}"), g.sql_type.clone())),
        }
    }
    let (values, value_columns) = value_items(compiled_items, names, &key_items, persistent);
    let emit_final = query.emit == Some(Emit::Final);
    if emit_final && window.is_none() {
        return Err(SqlError::invalid("EMIT FINAL is only supported for windowed aggregations."));
    }
    let key_window = window.map(|w| match w.kind {
        WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => KeyWindow::Time { size_ms },
        WindowKind::Session { .. } => KeyWindow::Session,
    });
    let output = OutputSchema { kind: SourceKind::Table, key: key_columns, value: value_columns, window: key_window };
    Ok((Shape::Aggregate(Box::new(Aggregation { group, by_source_key, aggregates, window, having, values, emit_final })), output))
}

/// The row expressions see: the key columns, the value columns, the
/// header columns, then `ROWTIME`, `ROWPARTITION` and `ROWOFFSET`.
fn widen(key: &Key, value: impl ExactSizeIterator<Item = Value>, headers: Vec<Value>, pseudo: [Value; 3]) -> Row {
    let mut row = Vec::with_capacity(key.0.len() + value.len() + headers.len() + pseudo.len());
    row.extend(key.0.iter().cloned());
    row.extend(value);
    row.extend(headers);
    row.extend(pseudo);
    row
}

/// Widens each record: its header columns from its headers, its
/// timestamp as `ROWTIME`, and where it was read as `ROWPARTITION` and
/// `ROWOFFSET`.
struct Widen {
    /// Each header column's key (`None`: every header).
    headers: Arc<[Option<String>]>,
}

impl Widen {
    /// The header columns' values: every header as `KEY`/`VALUE`
    /// structs, or the last value of one key.
    fn header_values(&self, ctx: &ProcessorContext<'_, Key, Row>) -> Vec<Value> {
        if self.headers.is_empty() {
            return Vec::new();
        }
        let headers = ctx.headers();
        let bytes = |value: &Option<Vec<u8>>| value.clone().map_or(Value::Null, Value::Bytes);
        self.headers
            .iter()
            .map(|wanted| match wanted {
                None => Value::Array(
                    headers
                        .iter()
                        .map(|(key, value)| Value::Struct(vec![("KEY".into(), Value::String(key.clone())), ("VALUE".into(), bytes(value))]))
                        .collect(),
                ),
                Some(wanted) => headers.iter().rev().find(|(key, _)| key == wanted).map_or(Value::Null, |(_, value)| bytes(value)),
            })
            .collect()
    }
}

impl Widen {
    /// The pseudo columns' values: `ROWTIME`, `ROWPARTITION`, `ROWOFFSET`.
    fn pseudo(ctx: &ProcessorContext<'_, Key, Row>) -> [Value; 3] {
        let (partition, offset) = ctx.record_metadata().map_or((Value::Null, Value::Null), |r| (Value::Int(r.partition), Value::Bigint(r.offset)));
        [Value::Bigint(ctx.timestamp()), partition, offset]
    }
}

impl Processor<Key, Row, Key, Row> for Widen {
    fn process(&mut self, key: &Key, value: &Row, ctx: &mut ProcessorContext<'_, Key, Row>) {
        let row = widen(key, value.iter().cloned(), self.header_values(ctx), Widen::pseudo(ctx));
        // Run with `process_values`, the record keeps the key it came with
        // whatever key it is forwarded under: an empty one costs no copy.
        ctx.forward(Key::default(), row);
    }

    /// The value's columns are moved into the wider row, not copied.
    fn process_owned(&mut self, key: &Key, value: Row, ctx: &mut ProcessorContext<'_, Key, Row>) {
        let row = widen(key, value.into_iter(), self.header_values(ctx), Widen::pseudo(ctx));
        ctx.forward(Key::default(), row);
    }
}

/// A joined row: the left side's columns, then the right's, NULLs for a
/// side without a row; built in place, each value copied once.
fn joined_row(left: Option<&Row>, left_width: usize, right: Option<&Row>, right_width: usize) -> Row {
    let mut row = Vec::with_capacity(left_width + right_width);
    for (side, width) in [(left, left_width), (right, right_width)] {
        match side {
            Some(values) => row.extend_from_slice(values),
            None => row.resize(row.len() + width, Value::Null),
        }
    }
    row
}

/// Evaluates compiled expressions on a row, reporting failures to the log.
fn evaluate(expressions: &[Compiled], row: &[Value], log: &ProcessingLog) -> Vec<Value> {
    let mut ctx = Eval::default();
    let out = expressions.iter().map(|e| e.eval(row, &mut ctx)).collect();
    for error in ctx.errors {
        log.record(error);
    }
    out
}

/// For each expression, the column it moves out of the row it is
/// evaluated on: one selected as it is and read by no other expression.
fn movable_columns(expressions: &[Compiled], width: usize) -> Vec<Option<usize>> {
    let mut readers = vec![0usize; width];
    for expression in expressions {
        let mut read = vec![false; width];
        expression.mark_columns(&mut read);
        readers.iter_mut().zip(read).for_each(|(count, read)| *count += usize::from(read));
    }
    expressions.iter().map(|e| e.as_column().filter(|c| readers.get(*c) == Some(&1))).collect()
}

/// [`evaluate`] on a row it may take apart: the columns `moves` names are
/// moved out rather than copied.
fn evaluate_owned(expressions: &[Compiled], moves: &[Option<usize>], mut row: Row, log: &ProcessingLog) -> Vec<Value> {
    let mut ctx = Eval::default();
    let out = expressions
        .iter()
        .zip(moves)
        .map(|(expression, moved)| match moved {
            Some(column) => std::mem::replace(&mut row[*column], Value::Null),
            None => expression.eval(&row, &mut ctx),
        })
        .collect();
    for error in ctx.errors {
        log.record(error);
    }
    out
}

fn holds(condition: &Compiled, row: &[Value], log: &ProcessingLog) -> bool {
    let mut ctx = Eval::default();
    let result = condition.eval(row, &mut ctx).is_true();
    for error in ctx.errors {
        log.record(error);
    }
    result
}

/// The event time of a source's record: its `TIMESTAMP` column, read as
/// milliseconds, a `TIMESTAMP`, or text in the column's pattern.
fn event_time(source: &SourceDef) -> Option<impl Fn(&Key, &Row, i64) -> i64 + Send + Sync + 'static> {
    let (column, pattern) = source.timestamp.clone()?;
    let in_key = source.key.iter().position(|c| c.name == column);
    let position = in_key.or_else(|| source.value.iter().position(|c| c.name == column))?;
    Some(move |key: &Key, row: &Row, _written: i64| {
        let value = if in_key.is_some() { key.0.get(position) } else { row.get(position) };
        match (value, &pattern) {
            (Some(Value::Bigint(ms)) | Some(Value::Timestamp(ms)), _) => *ms,
            (Some(Value::String(text)), Some(pattern)) => time::parse_with_pattern(text, pattern).unwrap_or(-1),
            _ => -1,
        }
    })
}

impl Plan {
    /// The catalog sources the query reads.
    pub fn source_names(&self) -> Vec<String> {
        let mut names = vec![self.source.name.clone()];
        names.extend(self.joins.iter().map(|j| j.right.name.clone()));
        names
    }

    fn source_serdes(&self, source: &SourceDef) -> (KeySerde, RowSerde) {
        let key_serde = KeySerde(source.key_row_format(self.log.clone()));
        let value_serde = RowSerde(source.value_row_format(self.log.clone()));
        (key_serde, value_serde)
    }

    /// Where each source's widened row starts in the joined row: 0 for
    /// the query's source, then one offset per join; and the joined row's
    /// width.
    fn offsets(&self) -> (Vec<usize>, usize) {
        let mut offsets = Vec::with_capacity(self.joins.len() + 1);
        let mut width = 0;
        for source in std::iter::once(&self.source).chain(self.joins.iter().map(|j| &j.right)) {
            offsets.push(width);
            width += input_scope(source, "").columns.len();
        }
        (offsets, width)
    }

    /// The types of the joined row's first `width` columns, as a serde
    /// for the rows a join stores or repartitions.
    fn joined_serde(&self, width: usize, topic: &str) -> RowSerde {
        let types: Vec<(String, SqlType)> = std::iter::once(&self.source)
            .chain(self.joins.iter().map(|j| &j.right))
            .flat_map(|source| input_scope(source, "").columns)
            .take(width)
            .enumerate()
            .map(|(i, c)| (format!("C{i}_{}", c.name), c.sql_type))
            .collect();
        RowSerde(RowFormat::value(Format::Json, types, topic, self.log.clone()))
    }

    /// Which columns of the query's input scope (the source's widened
    /// row, then each joined source's) its expressions read; `None` when
    /// it cannot tell (a `PARTITION BY` shifts the columns its projection
    /// sees).
    fn columns_read(&self) -> Option<Vec<bool>> {
        let (offsets, total) = self.offsets();
        let mut read = vec![false; total];
        self.filter.iter().for_each(|filter| filter.mark_columns(&mut read));
        match &self.shape {
            Shape::Project { rekey: Some(_), .. } => return None,
            Shape::Project { rekey: None, key, values } => key.iter().chain(values).for_each(|e| e.mark_columns(&mut read)),
            Shape::Aggregate(aggregation) => {
                aggregation.group.iter().for_each(|e| e.mark_columns(&mut read));
                aggregation.aggregates.iter().for_each(|a| a.mark_columns(&mut read));
            }
        }
        for (join, offset) in self.joins.iter().zip(&offsets[1..]) {
            join.left_key.mark_columns(&mut read[..*offset]);
            join.right_key.mark_columns(&mut read[*offset..]);
        }
        Some(read)
    }

    /// A source's records as widened rows. `read` flags the widened
    /// columns the query reads (all if `None`): value columns it does not
    /// read are skipped as the records are decoded.
    fn source_stream(&self, builder: &StreamsBuilder, source: &SourceDef, read: Option<&[bool]>) -> KStream<Key, Row> {
        let (key_serde, mut value_serde) = self.source_serdes(source);
        if let Some(read) = read {
            let mut values: Vec<bool> = source.value.iter().enumerate().map(|(i, _)| read.get(source.key.len() + i).copied().unwrap_or(true)).collect();
            if let Some(position) = source.timestamp.as_ref().and_then(|(column, _)| source.value.iter().position(|c| &c.name == column)) {
                values[position] = true;
            }
            value_serde = RowSerde(value_serde.0.reading_only(values));
        }
        let stream = match event_time(source) {
            Some(extract) => builder.stream_with_timestamps(&source.topic, key_serde, value_serde, extract),
            None => builder.stream(&source.topic, key_serde, value_serde),
        };
        let headers: Arc<[Option<String>]> = source.headers.iter().map(|h| h.key.clone()).collect();
        stream.process_values(move || Widen { headers: headers.clone() }, &[])
    }

    /// Adds the query's nodes to `builder`, writing to `sink`.
    pub fn build(&self, builder: &StreamsBuilder, sink: &SinkSpec) {
        self.build_into(builder, &Output::Topic(sink));
    }

    /// Adds the query's nodes to `builder`, passing its rows to `rows`, as
    /// a push query runs.
    pub fn build_push(&self, builder: &StreamsBuilder, rows: RowCallback) {
        self.build_into(builder, &Output::Rows(rows));
    }

    fn build_into(&self, builder: &StreamsBuilder, out: &Output<'_>) {
        let log = self.log.clone();
        let sink = match out {
            Output::Topic(sink) => (*sink).clone(),
            Output::Rows(_) => {
                SinkSpec { topic: self.source.topic.clone(), key_format: Format::Json, value_format: Format::Json, key_schema: None, value_schema: None }
            }
        };
        let sink = &sink;
        let key_format = RowFormat::key(sink.key_format, self.output.key.clone(), &sink.topic, log.clone()).with_schema(sink.key_schema.clone());
        let value_format = RowFormat::value(sink.value_format, self.output.value.clone(), &sink.topic, log.clone()).with_schema(sink.value_schema.clone());
        if self.source.kind == SourceKind::Table {
            self.build_on_table(builder, sink, out, key_format, value_format);
            return;
        }
        let read = self.columns_read();
        let (offsets, _) = self.offsets();
        let side_read = |side: usize| read.as_deref().map(|r| &r[offsets[side]..offsets.get(side + 1).copied().unwrap_or(r.len())]);
        let mut stream = self.source_stream(builder, &self.source, side_read(0));
        for (step, join) in self.joins.iter().enumerate() {
            stream = self.joined(builder, stream, step, join, offsets[step + 1], side_read(step + 1));
        }
        if let Some(filter) = &self.filter {
            let (filter, log) = (filter.clone(), log.clone());
            stream = stream.filter(move |_, row| holds(&filter, row, &log));
        }
        match &self.shape {
            Shape::Project { rekey, key, values } => {
                let stream = match rekey {
                    Some(rekey) => {
                        let (rekey, log) = (rekey.clone(), log.clone());
                        stream.map(move |_, row| {
                            let new_key = evaluate(&rekey, row, &log);
                            let mut widened = new_key.clone();
                            widened.extend(row.iter().cloned());
                            (Key(new_key), widened)
                        })
                    }
                    None => stream,
                };
                // The key stays as it came (a join's key, or the source's
                // key columns selected as they are) without being copied.
                let source_key = (0..self.source.key.len()).map(Some).collect::<Vec<_>>();
                let keeps_key = key.is_empty() || (rekey.is_none() && key.iter().map(Compiled::as_column).eq(source_key));
                let (key, values, log) = (key.clone(), values.clone(), log.clone());
                let projected = if keeps_key {
                    let moves = movable_columns(&values, self.offsets().1);
                    stream.map_values_owned(move |row| evaluate_owned(&values, &moves, row, &log))
                } else {
                    stream.map(move |_, row| (Key(evaluate(&key, row, &log)), evaluate(&values, row, &log)))
                };
                out.write(projected, KeySerde(key_format), RowSerde(value_format), plain_row);
            }
            Shape::Aggregate(aggregation) => self.build_aggregation(stream, aggregation, sink, out, key_format, value_format),
        }
    }

    /// A table's rows, widened (its pseudo columns are NULL: a table's
    /// rows keep no timestamp or offset).
    fn source_table(&self, builder: &StreamsBuilder, source: &SourceDef) -> KTable<Key, Row> {
        let (key_serde, value_serde) = self.source_serdes(source);
        // The widened rows' serde: a foreign-key join writes them.
        let types: Vec<(String, SqlType)> = input_scope(source, "").columns.into_iter().map(|c| (c.name, c.sql_type)).collect();
        let widened = RowSerde(RowFormat::value(Format::Json, types, &source.topic, self.log.clone()));
        builder
            .table(&source.topic, key_serde, value_serde)
            .map_values_with_serde(|key, row| widen(key, row.iter().cloned(), Vec::new(), [Value::Null, Value::Null, Value::Null]), widened)
    }

    /// The left table joined with the right one: on both primary keys
    /// (INNER, LEFT, FULL), or on the right's primary key taken from the
    /// left's rows (a foreign-key join, INNER or LEFT), keeping the left's
    /// key. A joined row is the left side's columns, then the right's
    /// (NULL for a side without a row).
    fn joined_tables(&self, builder: &StreamsBuilder, left: KTable<Key, Row>, step: usize, join: &JoinPlan, left_width: usize) -> KTable<Key, Row> {
        let right_width = input_scope(&join.right, "").columns.len();
        let right = self.source_table(builder, &join.right);
        // Only the first join may take its key from the left's rows.
        if step > 0 || on_primary_key(&self.source, &join.left_key) {
            return match join.kind {
                JoinKind::Left => left.left_join(&right, move |l: &Row, r: Option<&Row>| joined_row(Some(l), left_width, r, right_width)),
                JoinKind::Right => right.left_join(&left, move |r: &Row, l: Option<&Row>| joined_row(l, left_width, Some(r), right_width)),
                JoinKind::Full => left.outer_join(&right, move |l: Option<&Row>, r: Option<&Row>| joined_row(l, left_width, r, right_width)),
                JoinKind::Inner => left.join(&right, move |l: &Row, r: &Row| joined_row(Some(l), left_width, Some(r), right_width)),
            };
        }
        let (key, log) = (join.left_key.clone(), self.log.clone());
        let foreign_key = move |row: &Row| Key(evaluate(std::slice::from_ref(&key), row, &log));
        match join.kind {
            JoinKind::Left => {
                left.left_join_on_foreign_key(&right, foreign_key, move |l: &Row, r: Option<&Row>| joined_row(Some(l), left_width, r, right_width))
            }
            _ => left.join_on_foreign_key(&right, foreign_key, move |l: &Row, r: &Row| joined_row(Some(l), left_width, Some(r), right_width)),
        }
    }

    /// The left stream (the source, joined with the sources of the `step`
    /// joins before) joined with the right source: each side re-keyed by
    /// its join expression (repartitioned by runnel-streams when the key
    /// changed), the joined row being the left row (`left_width` columns)
    /// then the right (NULLs for a side without a partner).
    fn joined(
        &self,
        builder: &StreamsBuilder,
        left: KStream<Key, Row>,
        step: usize,
        join: &JoinPlan,
        left_width: usize,
        right_read: Option<&[bool]>,
    ) -> KStream<Key, Row> {
        let log = self.log.clone();
        let right_width = input_scope(&join.right, "").columns.len();
        // A table is joined by its own key bytes, so the stream is
        // repartitioned in the table's key format: equal keys land in the
        // same partition on both sides.
        let key_serde = match join.right.kind {
            SourceKind::Table => KeySerde(RowFormat::key(join.right.key_format, join.right.key_columns(), &join.right.topic, log.clone())),
            SourceKind::Stream => {
                KeySerde(RowFormat::key(Format::Json, vec![("KEY".to_string(), join.left_key.sql_type.clone())], &self.source.topic, log.clone()))
            }
        };
        let right_serde = || {
            let types: Vec<(String, SqlType)> = input_scope(&join.right, "").columns.into_iter().map(|c| (c.name, c.sql_type)).collect();
            RowSerde(RowFormat::value(Format::Json, types, &join.right.topic, log.clone()))
        };
        let left_serde = || self.joined_serde(left_width, &self.source.topic);
        let rekeyed = |stream: KStream<Key, Row>, key: &Compiled| {
            let (key, log) = (key.clone(), log.clone());
            stream.select_key(move |_, row| Key(evaluate(std::slice::from_ref(&key), row, &log)))
        };
        // A stream joined on its own key, written in the format the other
        // side's key is in, is partitioned as the other side already (as
        // Kafka requires of co-partitioned topics): it is not repartitioned,
        // as ksqlDB does not repartition it. A join's result is keyed anew.
        let on_own_key = |source: &SourceDef, key: &Compiled, format: Format| on_primary_key(source, key) && source.key_format == format;
        let left_in_place = step == 0
            && match join.right.kind {
                SourceKind::Table => on_own_key(&self.source, &join.left_key, join.right.key_format),
                SourceKind::Stream => {
                    on_own_key(&self.source, &join.left_key, join.right.key_format) && on_own_key(&join.right, &join.right_key, self.source.key_format)
                }
            };
        let left = if left_in_place { left } else { rekeyed(left, &join.left_key) };
        match join.right.kind {
            SourceKind::Table => {
                let table = self.source_table(builder, &join.right);
                let joined = Joined::with(key_serde, left_serde());
                match join.kind {
                    JoinKind::Left => left.left_join_table(&table, move |l: &Row, r: Option<&Row>| joined_row(Some(l), left_width, r, right_width), joined),
                    _ => left.join_table(&table, move |l: &Row, r: &Row| joined_row(Some(l), left_width, Some(r), right_width), joined),
                }
            }
            SourceKind::Stream => {
                let right = self.source_stream(builder, &join.right, right_read);
                let right = if left_in_place { right } else { rekeyed(right, &join.right_key) };
                let within = join.within.unwrap_or(Within { before_ms: 0, after_ms: 0, grace_ms: None });
                let windows = JoinWindows { before_ms: within.before_ms, after_ms: within.after_ms, grace_ms: within.grace_ms.unwrap_or(DEFAULT_GRACE_MS) };
                if join.kind == JoinKind::Right {
                    let serdes = StreamJoined::with(key_serde, right_serde(), left_serde());
                    return right.left_join(&left, move |r: &Row, l: Option<&Row>| joined_row(l, left_width, Some(r), right_width), windows, serdes);
                }
                let serdes = StreamJoined::with(key_serde, left_serde(), right_serde());
                match join.kind {
                    JoinKind::Left => left.left_join(&right, move |l: &Row, r: Option<&Row>| joined_row(Some(l), left_width, r, right_width), windows, serdes),
                    JoinKind::Full => {
                        left.outer_join(&right, move |l: Option<&Row>, r: Option<&Row>| joined_row(l, left_width, r, right_width), windows, serdes)
                    }
                    _ => left.join(&right, move |l: &Row, r: &Row| joined_row(Some(l), left_width, Some(r), right_width), windows, serdes),
                }
            }
        }
    }

    /// A query over a table: its rows (`ROWTIME` is NULL) filtered and
    /// projected as a table, so a row that stops matching is deleted; or
    /// regrouped and aggregated, each change taking the old row out and
    /// putting the new one in.
    fn build_on_table(&self, builder: &StreamsBuilder, sink: &SinkSpec, out: &Output<'_>, key_format: RowFormat, value_format: RowFormat) {
        let log = self.log.clone();
        let mut table = self.source_table(builder, &self.source);
        let (offsets, _) = self.offsets();
        for (step, join) in self.joins.iter().enumerate() {
            table = self.joined_tables(builder, table, step, join, offsets[step + 1]);
        }
        if let Some(filter) = &self.filter {
            let (filter, log) = (filter.clone(), log.clone());
            table = table.filter(move |_, row| holds(&filter, row, &log));
        }
        match &self.shape {
            Shape::Project { values, .. } => {
                let (values, log) = (values.clone(), log.clone());
                let projected = table.map_values(move |row| evaluate(&values, row, &log)).to_stream();
                out.write(projected, KeySerde(key_format), RowSerde(value_format), plain_row);
            }
            Shape::Aggregate(aggregation) => {
                let (group_serde, wide_serde, state_serde) = self.aggregation_serdes(aggregation, sink);
                let regroup = {
                    let (group, log) = (aggregation.group.clone(), log.clone());
                    move |_: &Key, row: &Row| (Key(evaluate(&group, row, &log)), row.clone())
                };
                let (init, add, project) = self.aggregation_steps(aggregation);
                let subtract = {
                    let (aggregates, log) = (Arc::new(aggregation.aggregates.clone()), log.clone());
                    move |_: &Key, row: &Row, mut state: Row| -> Row {
                        let mut ctx = Eval::default();
                        for (aggregate, slot) in aggregates.iter().zip(state.iter_mut()) {
                            let previous = std::mem::replace(slot, Value::Null);
                            *slot = aggregate.subtract(previous.clone(), row, &mut ctx).unwrap_or(previous);
                        }
                        for error in ctx.errors {
                            log.record(error);
                        }
                        state
                    }
                };
                let aggregated = table
                    .group_by(regroup, Grouped::with(group_serde, wide_serde))
                    .aggregate(init, add, subtract, state_serde)
                    .to_stream()
                    .map_values_with_key(move |key, state| project(key, state, None));
                out.write(aggregated, KeySerde(key_format), Nullable(RowSerde(value_format)), nullable_row);
            }
        }
    }

    /// The serdes of an aggregation's regrouped keys, of the rows it
    /// repartitions, and of its state.
    fn aggregation_serdes(&self, aggregation: &Aggregation, sink: &SinkSpec) -> (KeySerde, RowSerde, RowSerde) {
        let log = self.log.clone();
        let group_types: Vec<(String, SqlType)> = aggregation.group.iter().enumerate().map(|(i, g)| (format!("KEY{i}"), g.sql_type.clone())).collect();
        let wide_types: Vec<(String, SqlType)> = input_scope(&self.source, "").columns.into_iter().map(|c| (c.name, c.sql_type)).collect();
        // The state: each aggregate's; the group's values are its key.
        let state_types: Vec<(String, SqlType)> = aggregation.aggregates.iter().enumerate().map(|(i, a)| (format!("AGG{i}"), a.state_type())).collect();
        (
            KeySerde(RowFormat::value(Format::Json, group_types, &sink.topic, log.clone())),
            RowSerde(RowFormat::value(Format::Json, wide_types, &sink.topic, log.clone())),
            RowSerde(RowFormat::value(Format::Json, state_types, &sink.topic, log)),
        )
    }

    /// An aggregation's initial state (each aggregate's), its step adding
    /// a row, and the projection of a group's key, state (and window) into
    /// the output row, `None` when `HAVING` rejects it.
    #[allow(clippy::type_complexity)]
    fn aggregation_steps(
        &self,
        aggregation: &Aggregation,
    ) -> (
        impl Fn() -> Row + Send + Sync + 'static,
        impl Fn(&Key, &Row, Row) -> Row + Send + Sync + 'static,
        impl Fn(&Key, &Row, Option<(i64, i64)>) -> Option<Row> + Send + Sync + 'static,
    ) {
        let log = self.log.clone();
        let aggregates = Arc::new(aggregation.aggregates.clone());
        let init = {
            let aggregates = aggregates.clone();
            move || -> Row { aggregates.iter().map(Aggregate::init).collect() }
        };
        let add = {
            let (aggregates, log) = (aggregates.clone(), log.clone());
            move |_: &Key, row: &Row, mut state: Row| -> Row {
                let mut ctx = Eval::default();
                for (aggregate, slot) in aggregates.iter().zip(state.iter_mut()) {
                    let previous = std::mem::replace(slot, Value::Null);
                    *slot = aggregate.add(previous, row, &mut ctx);
                }
                for error in ctx.errors {
                    log.record(error);
                }
                state
            }
        };
        let project = {
            let (values, having) = (aggregation.values.clone(), aggregation.having.clone());
            move |key: &Key, state: &Row, window: Option<(i64, i64)>| -> Option<Row> {
                let mut row: Row = Vec::with_capacity(key.0.len() + state.len() + 2);
                row.extend(key.0.iter().cloned());
                row.extend(aggregates.iter().zip(state).map(|(a, s)| a.result(s)));
                if let Some((start, end)) = window {
                    row.push(Value::Bigint(start));
                    row.push(Value::Bigint(end));
                }
                if having.as_ref().is_some_and(|h| !holds(h, &row, &log)) {
                    return None;
                }
                Some(evaluate(&values, &row, &log))
            }
        };
        (init, add, project)
    }

    fn build_aggregation(
        &self,
        stream: KStream<Key, Row>,
        aggregation: &Aggregation,
        sink: &SinkSpec,
        out: &Output<'_>,
        key_format: RowFormat,
        value_format: RowFormat,
    ) {
        let log = self.log.clone();
        let (group_serde, wide_serde, state_serde) = self.aggregation_serdes(aggregation, sink);
        let grouped: KGroupedStream<Key, Row> = if aggregation.by_source_key {
            stream.group_by_key_with(Grouped::with(group_serde, wide_serde))
        } else {
            let (group, log) = (aggregation.group.clone(), log.clone());
            stream.group_by(move |_, row| Key(evaluate(&group, row, &log)), Grouped::with(group_serde, wide_serde))
        };
        let (init, add, project) = self.aggregation_steps(aggregation);
        let aggregates = Arc::new(aggregation.aggregates.clone());
        let value_serde = Nullable(RowSerde(value_format));
        match aggregation.window.map(|w| (w, w.grace_ms.unwrap_or(DEFAULT_GRACE_MS))) {
            None => {
                let table: KTable<Key, Row> = grouped.aggregate(init, add, state_serde);
                out.write(table.to_stream().map_values_with_key(move |key, state| project(key, state, None)), KeySerde(key_format), value_serde, nullable_row);
            }
            Some((WindowSpec { kind: WindowKind::Session { gap_ms }, .. }, grace)) => {
                let merge = {
                    let aggregates = aggregates.clone();
                    move |_: &Key, a: Row, b: Row| -> Row { aggregates.iter().zip(a.into_iter().zip(b)).map(|(agg, (a, b))| agg.merge(a, b)).collect() }
                };
                let table = grouped.windowed_by_sessions(SessionWindows::of_inactivity_gap_and_grace(gap_ms, grace)).aggregate(init, add, merge, state_serde);
                let table = if aggregation.emit_final { table.suppress(Suppressed::until_window_closes()) } else { table };
                let key_serde = SessionWindowedSerde(KeySerde(key_format));
                let projected = table.to_stream().map_values_with_key(move |windowed: &Windowed<Key>, state| {
                    project(&windowed.key, state, Some((windowed.window.start, windowed.window.end)))
                });
                out.write(projected, key_serde, value_serde, windowed_row);
            }
            Some((WindowSpec { kind, .. }, grace)) => {
                let windows = match kind {
                    WindowKind::Hopping { size_ms, advance_ms } => TimeWindows::of_size_and_grace(size_ms, grace).advance_by(advance_ms),
                    WindowKind::Tumbling { size_ms } | WindowKind::Session { gap_ms: size_ms } => TimeWindows::of_size_and_grace(size_ms, grace),
                };
                let table = grouped.windowed_by(windows).aggregate(init, add, state_serde);
                let table = if aggregation.emit_final { table.suppress(Suppressed::until_window_closes()) } else { table };
                let key_serde = TimeWindowedSerde::new(KeySerde(key_format), windows.size_ms);
                let projected = table.to_stream().map_values_with_key(move |windowed: &Windowed<Key>, state| {
                    project(&windowed.key, state, Some((windowed.window.start, windowed.window.end)))
                });
                out.write(projected, key_serde, value_serde, windowed_row);
            }
        }
    }
}
