//! Aggregate functions: each keeps a state (a value, so it can be logged
//! to a changelog like any row), adds rows to it, merges two states (for
//! session windows), takes rows back out where it can (for tables), and
//! gives its result.

use crate::error::SqlError;
use crate::eval::{Compiled, Eval};
use crate::types::SqlType;
use crate::value::{Decimal, Value};

/// How many values `COLLECT_LIST`, `COLLECT_SET` and `HISTOGRAM` keep,
/// as ksqlDB's default limit.
const COLLECT_LIMIT: usize = 1_000;

/// Which aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Latest,
    Earliest,
    CollectList,
    CollectSet,
    TopK(usize),
    TopKDistinct(usize),
    Histogram,
    StddevSamp,
}

/// One aggregate call of a query: the function and its argument,
/// compiled against the query's input rows.
#[derive(Debug, Clone)]
pub struct Aggregate {
    function: Function,
    argument: Option<Compiled>,
    /// The type of the aggregate's result.
    pub result_type: SqlType,
}

fn argument_type(argument: &Option<Compiled>) -> SqlType {
    argument.as_ref().map_or(SqlType::Bigint, |a| a.sql_type.clone())
}

impl Aggregate {
    /// The aggregate `name` over `args` (compiled); `star` for `COUNT(*)`;
    /// `literal_args` are the arguments after the first, which must be
    /// literals (TOPK's K).
    pub fn new(name: &str, mut args: Vec<Compiled>, star: bool, literal_args: &[Value]) -> Result<Aggregate, SqlError> {
        let wrong = |why: &str| SqlError::invalid(format!("Function '{name}' {why}"));
        let count = |i: usize| literal_args.get(i).and_then(Value::as_i64).and_then(|k| usize::try_from(k).ok()).filter(|k| *k > 0);
        let function = match (name, star, args.len()) {
            ("COUNT", true, 0) => Function::CountStar,
            ("COUNT", false, 1) => Function::Count,
            ("COUNT_DISTINCT", false, 1) => Function::CountDistinct,
            ("SUM", false, 1) => Function::Sum,
            ("AVG", false, 1) => Function::Avg,
            ("MIN", false, 1) => Function::Min,
            ("MAX", false, 1) => Function::Max,
            ("LATEST_BY_OFFSET", false, 1) => Function::Latest,
            ("EARLIEST_BY_OFFSET", false, 1) => Function::Earliest,
            ("COLLECT_LIST", false, 1) => Function::CollectList,
            ("COLLECT_SET", false, 1) => Function::CollectSet,
            ("TOPK", false, 1) => Function::TopK(count(0).ok_or_else(|| wrong("takes a column and a positive whole number K"))?),
            ("TOPKDISTINCT", false, 1) => Function::TopKDistinct(count(0).ok_or_else(|| wrong("takes a column and a positive whole number K"))?),
            ("HISTOGRAM", false, 1) => Function::Histogram,
            ("STDDEV_SAMP", false, 1) => Function::StddevSamp,
            _ => return Err(wrong("does not accept these arguments")),
        };
        let argument = args.pop();
        let ty = argument_type(&argument);
        let result_type = match function {
            Function::CountStar | Function::Count | Function::CountDistinct => SqlType::Bigint,
            Function::Sum if ty.is_numeric() => ty.clone(),
            Function::Avg | Function::StddevSamp if ty.is_numeric() => SqlType::Double,
            Function::Sum | Function::Avg | Function::StddevSamp => return Err(wrong(&format!("takes a number, not {ty}"))),
            Function::Min | Function::Max if matches!(ty, SqlType::Array(_) | SqlType::Map(..) | SqlType::Struct(_) | SqlType::Bytes) => {
                return Err(wrong(&format!("cannot order values of type {ty}")))
            }
            Function::Min | Function::Max | Function::Latest | Function::Earliest => ty.clone(),
            Function::CollectList | Function::CollectSet | Function::TopK(_) | Function::TopKDistinct(_) => SqlType::Array(Box::new(ty.clone())),
            Function::Histogram if ty == SqlType::String => SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Bigint)),
            Function::Histogram => return Err(wrong(&format!("takes a STRING, not {ty}"))),
        };
        Ok(Aggregate { function, argument, result_type })
    }

    /// The type of its state.
    pub fn state_type(&self) -> SqlType {
        let ty = argument_type(&self.argument);
        match self.function {
            Function::CountStar | Function::Count => SqlType::Bigint,
            Function::Sum => self.result_type.clone(),
            Function::Avg | Function::StddevSamp => {
                SqlType::Struct(vec![("COUNT".into(), SqlType::Bigint), ("SUM".into(), SqlType::Double), ("SUMSQ".into(), SqlType::Double)])
            }
            Function::CountDistinct => SqlType::Array(Box::new(ty)),
            _ => self.result_type.clone(),
        }
    }

    /// The state before any row.
    pub fn init(&self) -> Value {
        match self.function {
            Function::CountStar | Function::Count => Value::Bigint(0),
            Function::Avg | Function::StddevSamp => moments(0, 0.0, 0.0),
            Function::CollectList | Function::CollectSet | Function::CountDistinct | Function::TopK(_) | Function::TopKDistinct(_) => Value::Array(Vec::new()),
            Function::Histogram => Value::Map(Vec::new()),
            _ => Value::Null,
        }
    }

    /// Marks in `read` the input columns its argument reads.
    pub fn mark_columns(&self, read: &mut [bool]) {
        if let Some(argument) = &self.argument {
            argument.mark_columns(read);
        }
    }

    fn argument(&self, row: &[Value], ctx: &mut Eval) -> Value {
        self.argument.as_ref().map_or(Value::Null, |a| a.eval(row, ctx))
    }

    /// The state with `row` added.
    pub fn add(&self, state: Value, row: &[Value], ctx: &mut Eval) -> Value {
        if self.function == Function::CountStar {
            return Value::Bigint(state.as_i64().unwrap_or(0) + 1);
        }
        let value = self.argument(row, ctx);
        if value.is_null() {
            return state;
        }
        self.add_value(state, value)
    }

    fn add_value(&self, state: Value, value: Value) -> Value {
        match self.function {
            Function::CountStar | Function::Count => Value::Bigint(state.as_i64().unwrap_or(0) + 1),
            Function::Sum => add_numbers(&state, &value, &self.result_type),
            Function::Avg | Function::StddevSamp => {
                let (n, sum, sumsq) = unpack_moments(&state);
                let x = value.as_f64().unwrap_or(0.0);
                moments(n + 1, sum + x, sumsq + x * x)
            }
            Function::Min | Function::Max => {
                let keep_new = state.is_null() || value.compare(&state).is_some_and(|o| if self.function == Function::Min { o.is_lt() } else { o.is_gt() });
                if keep_new {
                    value
                } else {
                    state
                }
            }
            Function::Latest => value,
            Function::Earliest if state.is_null() => value,
            Function::Earliest => state,
            Function::CollectList => push_limited(state, value, false),
            Function::CollectSet | Function::CountDistinct => push_limited(state, value, true),
            Function::TopK(k) | Function::TopKDistinct(k) => {
                let Value::Array(mut items) = state else { return Value::Array(vec![value]) };
                if self.function == Function::TopKDistinct(k) && items.contains(&value) {
                    return Value::Array(items);
                }
                items.push(value);
                items.sort_by(|a, b| b.compare(a).unwrap_or(std::cmp::Ordering::Equal));
                items.truncate(k);
                Value::Array(items)
            }
            Function::Histogram => {
                let Value::Map(mut entries) = state else { return state };
                match entries.iter().position(|(k, _)| k == &value) {
                    Some(position) => entries[position].1 = Value::Bigint(entries[position].1.as_i64().unwrap_or(0) + 1),
                    None if entries.len() < COLLECT_LIMIT => entries.push((value, Value::Bigint(1))),
                    None => {}
                }
                Value::Map(entries)
            }
        }
    }

    /// The state with `row` taken back out (a table row replaced or
    /// deleted); `None` if the function cannot undo.
    pub fn subtract(&self, state: Value, row: &[Value], ctx: &mut Eval) -> Option<Value> {
        match self.function {
            Function::CountStar => Some(Value::Bigint(state.as_i64().unwrap_or(0) - 1)),
            Function::Count => Some(if self.argument(row, ctx).is_null() { state } else { Value::Bigint(state.as_i64().unwrap_or(0) - 1) }),
            Function::Sum => {
                let value = self.argument(row, ctx);
                Some(if value.is_null() { state } else { add_numbers(&state, &negate(&value), &self.result_type) })
            }
            Function::Avg | Function::StddevSamp => {
                let value = self.argument(row, ctx);
                let (n, sum, sumsq) = unpack_moments(&state);
                let x = value.as_f64()?;
                Some(moments(n - 1, sum - x, sumsq - x * x))
            }
            Function::CollectList => {
                let value = self.argument(row, ctx);
                let Value::Array(mut items) = state else { return Some(state) };
                if let Some(position) = items.iter().position(|v| v == &value) {
                    items.remove(position);
                }
                Some(Value::Array(items))
            }
            _ => None,
        }
    }

    /// Whether tables can aggregate with it (it can undo).
    pub fn undoable(&self) -> bool {
        matches!(self.function, Function::CountStar | Function::Count | Function::Sum | Function::Avg | Function::StddevSamp | Function::CollectList)
    }

    /// Two sessions' states combined.
    pub fn merge(&self, a: Value, b: Value) -> Value {
        match self.function {
            Function::CountStar | Function::Count => Value::Bigint(a.as_i64().unwrap_or(0) + b.as_i64().unwrap_or(0)),
            Function::Sum if a.is_null() => b,
            Function::Sum if b.is_null() => a,
            Function::Sum => add_numbers(&a, &b, &self.result_type),
            Function::Avg | Function::StddevSamp => {
                let ((n1, s1, q1), (n2, s2, q2)) = (unpack_moments(&a), unpack_moments(&b));
                moments(n1 + n2, s1 + s2, q1 + q2)
            }
            Function::Latest if b.is_null() => a,
            Function::Latest => b,
            Function::Earliest if a.is_null() => b,
            Function::Earliest => a,
            Function::Min
            | Function::Max
            | Function::CollectList
            | Function::CollectSet
            | Function::CountDistinct
            | Function::TopK(_)
            | Function::TopKDistinct(_)
            | Function::Histogram => {
                let mut state = a;
                for value in values_of(b) {
                    state = match (self.function, value) {
                        (Function::Histogram, (key, Value::Bigint(n))) => (0..n).fold(state, |s, _| self.add_value(s, key.clone())),
                        (_, (value, _)) => self.add_value(state, value),
                    };
                }
                state
            }
        }
    }

    /// The aggregate's result from its state.
    pub fn result(&self, state: &Value) -> Value {
        match self.function {
            Function::CountDistinct => match state {
                Value::Array(items) => Value::Bigint(items.len() as i64),
                _ => Value::Bigint(0),
            },
            Function::Avg => {
                let (n, sum, _) = unpack_moments(state);
                if n == 0 {
                    Value::Null
                } else {
                    Value::Double(sum / n as f64)
                }
            }
            Function::StddevSamp => {
                let (n, sum, sumsq) = unpack_moments(state);
                if n < 2 {
                    return Value::Null;
                }
                let n = n as f64;
                Value::Double(((sumsq - sum * sum / n) / (n - 1.0)).max(0.0).sqrt())
            }
            _ => state.clone(),
        }
    }
}

/// A state's values, to merge one state into another: array items, or a
/// map's entries, or the value itself.
fn values_of(state: Value) -> Vec<(Value, Value)> {
    match state {
        Value::Null => Vec::new(),
        Value::Array(items) => items.into_iter().map(|v| (v, Value::Null)).collect(),
        Value::Map(entries) => entries,
        other => vec![(other, Value::Null)],
    }
}

fn push_limited(state: Value, value: Value, distinct: bool) -> Value {
    let Value::Array(mut items) = state else { return Value::Array(vec![value]) };
    if items.len() < COLLECT_LIMIT && !(distinct && items.contains(&value)) {
        items.push(value);
    }
    Value::Array(items)
}

fn moments(count: i64, sum: f64, sumsq: f64) -> Value {
    Value::Struct(vec![("COUNT".into(), Value::Bigint(count)), ("SUM".into(), Value::Double(sum)), ("SUMSQ".into(), Value::Double(sumsq))])
}

fn unpack_moments(state: &Value) -> (i64, f64, f64) {
    match state {
        Value::Struct(fields) => {
            let get = |i: usize| fields.get(i).map(|(_, v)| v.clone()).unwrap_or(Value::Null);
            (get(0).as_i64().unwrap_or(0), get(1).as_f64().unwrap_or(0.0), get(2).as_f64().unwrap_or(0.0))
        }
        _ => (0, 0.0, 0.0),
    }
}

fn negate(value: &Value) -> Value {
    match value {
        Value::Int(i) => Value::Int(i.wrapping_neg()),
        Value::Bigint(i) => Value::Bigint(i.wrapping_neg()),
        Value::Double(d) => Value::Double(-d),
        Value::Decimal(d) => Value::Decimal(Decimal { unscaled: -d.unscaled, scale: d.scale }),
        other => other.clone(),
    }
}

/// `a + b` in `ty` (NULL counts as nothing).
fn add_numbers(a: &Value, b: &Value, ty: &SqlType) -> Value {
    if a.is_null() {
        return b.clone().widen_to(ty).unwrap_or(Value::Null);
    }
    match ty {
        SqlType::Int => Value::Int((a.as_i64().unwrap_or(0) as i32).wrapping_add(b.as_i64().unwrap_or(0) as i32)),
        SqlType::Bigint => Value::Bigint(a.as_i64().unwrap_or(0).wrapping_add(b.as_i64().unwrap_or(0))),
        SqlType::Double => Value::Double(a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0)),
        SqlType::Decimal { scale, .. } => match (a, b) {
            (Value::Decimal(x), Value::Decimal(y)) => {
                let (x, y) = (x.rescale(*scale), y.rescale(*scale));
                match (x, y) {
                    (Some(x), Some(y)) => Value::Decimal(Decimal { unscaled: x.unscaled + y.unscaled, scale: *scale }),
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}
