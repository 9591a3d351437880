//! Expressions compiled against the columns a query can see, then
//! evaluated row by row.
//!
//! Compiling resolves names to positions and works out every
//! expression's type, so a query that cannot run is refused before it
//! starts. Evaluating follows ksqlDB: NULL in, NULL out for operators and
//! most functions, three-valued `AND`/`OR`, and an error on a row (a
//! division by zero, a failed cast) makes that expression NULL and is
//! reported to the processing log instead of stopping the query.

use std::cmp::Ordering;

use crate::ast::{BinaryOp, Expr, Literal};
use crate::error::SqlError;
use crate::functions::{self, Scalar};
use crate::time;
use crate::types::SqlType;
use crate::value::{Decimal, Value};

/// A column a query can see: the source (or alias) it comes from, its
/// name and its type.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnRef {
    /// The source or alias that qualifies it, if any.
    pub source: Option<String>,
    /// Its name.
    pub name: String,
    /// Its type.
    pub sql_type: SqlType,
}

/// The columns of the rows an expression is evaluated on, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// The columns, in row order.
    pub columns: Vec<ColumnRef>,
}

impl Scope {
    /// Unqualified columns of these names and types.
    pub fn of(columns: &[(&str, SqlType)]) -> Scope {
        Scope { columns: columns.iter().map(|(name, ty)| ColumnRef { source: None, name: name.to_string(), sql_type: ty.clone() }).collect() }
    }

    /// The position of a column, qualified or not; an error if there is
    /// none or more than one.
    pub fn resolve(&self, source: Option<&str>, name: &str) -> Result<usize, SqlError> {
        let found: Vec<usize> =
            self.columns.iter().enumerate().filter(|(_, c)| c.name == name && (source.is_none() || c.source.as_deref() == source)).map(|(i, _)| i).collect();
        match found[..] {
            [i] => Ok(i),
            [] => {
                let full = source.map_or(name.to_string(), |s| format!("{s}.{name}"));
                Err(SqlError::invalid(format!("Column '{full}' cannot be resolved.")))
            }
            _ => Err(SqlError::invalid(format!("Column '{name}' is ambiguous: qualify it with its source."))),
        }
    }
}

/// A compiled expression: its type, and how to evaluate it.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The type of the values it gives.
    pub sql_type: SqlType,
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Const(Value),
    Column(usize),
    /// A lambda parameter, by depth from the innermost binding.
    Variable(usize),
    Binary(BinaryOp, Box<Compiled>, Box<Compiled>),
    Not(Box<Compiled>),
    Negate(Box<Compiled>),
    IsNull(Box<Compiled>, bool),
    IsDistinct(Box<Compiled>, Box<Compiled>, bool),
    Between(Box<Compiled>, Box<Compiled>, Box<Compiled>, bool),
    Like(Box<Compiled>, Box<Compiled>, Option<char>, bool),
    In(Box<Compiled>, Vec<Compiled>, bool),
    Call(&'static Scalar, Vec<Compiled>),
    /// A higher-order function: `TRANSFORM`, `FILTER` or `REDUCE`, over
    /// its arguments and lambda.
    Lambda(LambdaFunction, Vec<Compiled>, Box<Compiled>),
    Cast(Box<Compiled>, SqlType),
    Case(Vec<(Compiled, Compiled)>, Option<Box<Compiled>>),
    Subscript(Box<Compiled>, Box<Compiled>),
    Field(Box<Compiled>, usize),
    Array(Vec<Compiled>),
    Map(Vec<(Compiled, Compiled)>),
    Struct(Vec<(String, Compiled)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LambdaFunction {
    Transform,
    Filter,
    Reduce,
}

/// What evaluating rows met: each error made an expression NULL.
#[derive(Debug, Default)]
pub struct Eval {
    /// Lambda parameters bound while evaluating, innermost last.
    bindings: Vec<Value>,
    /// Errors met, for the processing log.
    pub errors: Vec<String>,
}

/// Compiles `expr` for rows of `scope`.
pub fn compile(expr: &Expr, scope: &Scope) -> Result<Compiled, SqlError> {
    Compiler { scope, lambdas: Vec::new() }.compile(expr)
}

struct Compiler<'a> {
    scope: &'a Scope,
    /// Lambda parameters in scope, with their types, innermost last.
    lambdas: Vec<(String, SqlType)>,
}

fn literal_value(literal: &Literal) -> Result<(Value, SqlType), SqlError> {
    Ok(match literal {
        Literal::Null => (Value::Null, SqlType::String),
        Literal::Boolean(b) => (Value::Boolean(*b), SqlType::Boolean),
        Literal::Integer(i) => match i32::try_from(*i) {
            Ok(small) => (Value::Int(small), SqlType::Int),
            Err(_) => (Value::Bigint(*i), SqlType::Bigint),
        },
        Literal::Decimal(text) => {
            let d = Decimal::parse(text).ok_or_else(|| SqlError::invalid(format!("bad decimal {text}")))?;
            let digits = text.trim_start_matches('-').replace('.', "").trim_start_matches('0').len().max(1);
            let precision = (digits.max(usize::from(d.scale))).min(38) as u8;
            (Value::Decimal(d), SqlType::Decimal { precision, scale: d.scale })
        }
        Literal::Double(d) => (Value::Double(*d), SqlType::Double),
        Literal::String(s) => (Value::String(s.clone()), SqlType::String),
    })
}

fn compiled(sql_type: SqlType, node: Node) -> Compiled {
    Compiled { sql_type, node }
}

/// The type of a decimal operation's result, by ksqlDB's rules.
fn decimal_result(op: BinaryOp, (p1, s1): (u8, u8), (p2, s2): (u8, u8)) -> SqlType {
    let (p1, s1, p2, s2) = (i32::from(p1), i32::from(s1), i32::from(p2), i32::from(s2));
    let (precision, scale) = match op {
        BinaryOp::Add | BinaryOp::Subtract => {
            let scale = s1.max(s2);
            ((p1 - s1).max(p2 - s2) + scale + 1, scale)
        }
        BinaryOp::Multiply => (p1 + p2 + 1, s1 + s2),
        BinaryOp::Divide => {
            let scale = 6.max(s1 + p2 + 1);
            (p1 - s1 + s2 + scale, scale)
        }
        _ => {
            let scale = s1.max(s2);
            ((p1 - s1).min(p2 - s2) + scale, scale)
        }
    };
    let scale = scale.clamp(0, 38);
    SqlType::Decimal { precision: precision.clamp(scale.max(1), 38) as u8, scale: scale as u8 }
}

fn decimal_shape(ty: &SqlType) -> Option<(u8, u8)> {
    match ty {
        SqlType::Decimal { precision, scale } => Some((*precision, *scale)),
        SqlType::Int => Some((10, 0)),
        SqlType::Bigint => Some((19, 0)),
        _ => None,
    }
}

/// Whether values of the two types can be compared.
fn comparable(a: &SqlType, b: &SqlType) -> bool {
    use SqlType::*;
    a.is_numeric() && b.is_numeric()
        || a == b
        || matches!((a, b), (Timestamp | Date | Time, String) | (String, Timestamp | Date | Time) | (Timestamp, Date) | (Date, Timestamp))
}

impl Compiler<'_> {
    fn compile(&mut self, expr: &Expr) -> Result<Compiled, SqlError> {
        Ok(match expr {
            Expr::Literal(literal) => {
                let (value, ty) = literal_value(literal)?;
                compiled(ty, Node::Const(value))
            }
            Expr::Column { source, name } => {
                if source.is_none() {
                    if let Some(depth) = self.lambdas.iter().rev().position(|(p, _)| p == name) {
                        let ty = self.lambdas[self.lambdas.len() - 1 - depth].1.clone();
                        return Ok(compiled(ty, Node::Variable(depth)));
                    }
                }
                let index = self.scope.resolve(source.as_deref(), name)?;
                compiled(self.scope.columns[index].sql_type.clone(), Node::Column(index))
            }
            Expr::LambdaVariable(name) => {
                let depth = self
                    .lambdas
                    .iter()
                    .rev()
                    .position(|(p, _)| p == name)
                    .ok_or_else(|| SqlError::invalid(format!("the lambda variable {name} is not bound")))?;
                compiled(self.lambdas[self.lambdas.len() - 1 - depth].1.clone(), Node::Variable(depth))
            }
            Expr::Binary { op, left, right } => self.binary(*op, left, right)?,
            Expr::Not(inner) => {
                let inner = self.boolean(inner, "NOT")?;
                compiled(SqlType::Boolean, Node::Not(Box::new(inner)))
            }
            Expr::Negate(inner) => {
                let inner = self.compile(inner)?;
                if !inner.sql_type.is_numeric() {
                    return Err(SqlError::invalid(format!("Cannot negate a value of type {}.", inner.sql_type)));
                }
                compiled(inner.sql_type.clone(), Node::Negate(Box::new(inner)))
            }
            Expr::IsNull { expr, negated } => compiled(SqlType::Boolean, Node::IsNull(Box::new(self.compile(expr)?), *negated)),
            Expr::IsDistinctFrom { left, right, negated } => {
                let (l, r) = (self.compile(left)?, self.compile(right)?);
                self.check_comparable(&l, &r, "IS DISTINCT FROM")?;
                compiled(SqlType::Boolean, Node::IsDistinct(Box::new(l), Box::new(r), *negated))
            }
            Expr::Between { expr, low, high, negated } => {
                let (e, l, h) = (self.compile(expr)?, self.compile(low)?, self.compile(high)?);
                self.check_comparable(&e, &l, "BETWEEN")?;
                self.check_comparable(&e, &h, "BETWEEN")?;
                compiled(SqlType::Boolean, Node::Between(Box::new(e), Box::new(l), Box::new(h), *negated))
            }
            Expr::Like { expr, pattern, escape, negated } => {
                let (e, p) = (self.compile(expr)?, self.compile(pattern)?);
                if e.sql_type != SqlType::String || p.sql_type != SqlType::String {
                    return Err(SqlError::invalid("LIKE compares strings."));
                }
                compiled(SqlType::Boolean, Node::Like(Box::new(e), Box::new(p), *escape, *negated))
            }
            Expr::InList { expr, list, negated } => {
                let e = self.compile(expr)?;
                let list = list.iter().map(|item| self.compile(item)).collect::<Result<Vec<_>, _>>()?;
                for item in &list {
                    self.check_comparable(&e, item, "IN")?;
                }
                compiled(SqlType::Boolean, Node::In(Box::new(e), list, *negated))
            }
            Expr::Function { name, args, star } => self.call(name, args, *star)?,
            Expr::Cast { expr, to } => {
                let inner = self.compile(expr)?;
                if !castable(&inner.sql_type, to) && !is_null_literal(&inner) {
                    return Err(SqlError::invalid(format!("Cast of {} to {to} is not supported", inner.sql_type)));
                }
                compiled(to.clone(), Node::Cast(Box::new(inner), to.clone()))
            }
            Expr::Case { operand, whens, otherwise } => self.case(operand.as_deref(), whens, otherwise.as_deref())?,
            Expr::Subscript { expr, index } => {
                let (e, i) = (self.compile(expr)?, self.compile(index)?);
                let ty = match &e.sql_type {
                    SqlType::Array(item) if matches!(i.sql_type, SqlType::Int | SqlType::Bigint) => (**item).clone(),
                    SqlType::Map(key, value) if comparable(key, &i.sql_type) => (**value).clone(),
                    other => return Err(SqlError::invalid(format!("Cannot subscript a value of type {other} with {}.", i.sql_type))),
                };
                compiled(ty, Node::Subscript(Box::new(e), Box::new(i)))
            }
            Expr::Field { expr, field } => {
                let e = self.compile(expr)?;
                let SqlType::Struct(fields) = &e.sql_type else {
                    return Err(SqlError::invalid(format!("Cannot dereference a value of type {}: only STRUCTs have fields.", e.sql_type)));
                };
                let position = fields
                    .iter()
                    .position(|(name, _)| name == field)
                    .or_else(|| fields.iter().position(|(name, _)| name.eq_ignore_ascii_case(field)))
                    .ok_or_else(|| SqlError::invalid(format!("Could not find field '{field}' in '{}'.", e.sql_type)))?;
                compiled(fields[position].1.clone(), Node::Field(Box::new(e), position))
            }
            Expr::Array(items) => {
                let items = items.iter().map(|item| self.compile(item)).collect::<Result<Vec<_>, _>>()?;
                let item_type = common_type(items.iter())?;
                compiled(SqlType::Array(Box::new(item_type)), Node::Array(items))
            }
            Expr::Map(entries) => {
                let entries = entries.iter().map(|(k, v)| Ok((self.compile(k)?, self.compile(v)?))).collect::<Result<Vec<_>, SqlError>>()?;
                let key = common_type(entries.iter().map(|(k, _)| k))?;
                let value = common_type(entries.iter().map(|(_, v)| v))?;
                compiled(SqlType::Map(Box::new(key), Box::new(value)), Node::Map(entries))
            }
            Expr::Struct(fields) => {
                let fields = fields.iter().map(|(name, e)| Ok((name.clone(), self.compile(e)?))).collect::<Result<Vec<_>, SqlError>>()?;
                let ty = SqlType::Struct(fields.iter().map(|(n, c)| (n.clone(), c.sql_type.clone())).collect());
                compiled(ty, Node::Struct(fields))
            }
            Expr::Lambda { .. } => return Err(SqlError::invalid("A lambda can only be an argument of TRANSFORM, FILTER or REDUCE.")),
        })
    }

    fn boolean(&mut self, expr: &Expr, what: &str) -> Result<Compiled, SqlError> {
        let c = self.compile(expr)?;
        if c.sql_type != SqlType::Boolean && !is_null_literal(&c) {
            return Err(SqlError::invalid(format!("{what} takes a BOOLEAN, not {}.", c.sql_type)));
        }
        Ok(c)
    }

    fn check_comparable(&self, a: &Compiled, b: &Compiled, what: &str) -> Result<(), SqlError> {
        if comparable(&a.sql_type, &b.sql_type) || is_null_literal(a) || is_null_literal(b) {
            Ok(())
        } else {
            Err(SqlError::invalid(format!("Cannot compare {} to {} with {what}.", a.sql_type, b.sql_type)))
        }
    }

    fn binary(&mut self, op: BinaryOp, left: &Expr, right: &Expr) -> Result<Compiled, SqlError> {
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            let (l, r) = (self.boolean(left, &op.to_string())?, self.boolean(right, &op.to_string())?);
            return Ok(compiled(SqlType::Boolean, Node::Binary(op, Box::new(l), Box::new(r))));
        }
        let (l, r) = (self.compile(left)?, self.compile(right)?);
        let ty = match op {
            BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq => {
                self.check_comparable(&l, &r, &op.to_string())?;
                SqlType::Boolean
            }
            BinaryOp::Concat => SqlType::String,
            BinaryOp::Add if l.sql_type == SqlType::String || r.sql_type == SqlType::String => {
                if l.sql_type != r.sql_type {
                    return Err(SqlError::invalid(format!("Cannot add {} and {}.", l.sql_type, r.sql_type)));
                }
                SqlType::String
            }
            _ => match (&l.sql_type, &r.sql_type) {
                (SqlType::Decimal { .. }, _) | (_, SqlType::Decimal { .. }) if l.sql_type != SqlType::Double && r.sql_type != SqlType::Double => {
                    let (a, b) = (decimal_shape(&l.sql_type), decimal_shape(&r.sql_type));
                    match (a, b) {
                        (Some(a), Some(b)) => decimal_result(op, a, b),
                        _ => return Err(SqlError::invalid(format!("Cannot apply {op} to {} and {}.", l.sql_type, r.sql_type))),
                    }
                }
                (a, b) => SqlType::widest(a, b).ok_or_else(|| SqlError::invalid(format!("Cannot apply {op} to {} and {}.", l.sql_type, r.sql_type)))?,
            },
        };
        Ok(compiled(ty, Node::Binary(op, Box::new(l), Box::new(r))))
    }

    fn case(&mut self, operand: Option<&Expr>, whens: &[(Expr, Expr)], otherwise: Option<&Expr>) -> Result<Compiled, SqlError> {
        let operand = operand.map(|o| self.compile(o)).transpose()?;
        let mut branches = Vec::new();
        for (when, then) in whens {
            let condition = match &operand {
                Some(o) => {
                    let w = self.compile(when)?;
                    self.check_comparable(o, &w, "CASE")?;
                    compiled(SqlType::Boolean, Node::Binary(BinaryOp::Eq, Box::new(o.clone()), Box::new(w)))
                }
                None => self.boolean(when, "WHEN")?,
            };
            branches.push((condition, self.compile(then)?));
        }
        let otherwise = otherwise.map(|o| self.compile(o)).transpose()?;
        let ty = common_type(branches.iter().map(|(_, t)| t).chain(otherwise.iter()))?;
        Ok(compiled(ty, Node::Case(branches, otherwise.map(Box::new))))
    }

    fn call(&mut self, name: &str, args: &[Expr], star: bool) -> Result<Compiled, SqlError> {
        if functions::is_aggregate(name) {
            return Err(SqlError::invalid(format!("The aggregate function {name} can only be used in a query with GROUP BY, or in a table query.")));
        }
        if star {
            return Err(SqlError::invalid(format!("{name}(*) is not a function")));
        }
        let lambda_function = match name {
            "TRANSFORM" => Some(LambdaFunction::Transform),
            "FILTER" => Some(LambdaFunction::Filter),
            "REDUCE" => Some(LambdaFunction::Reduce),
            _ => None,
        };
        if let Some(function) = lambda_function {
            return self.lambda_call(name, function, args);
        }
        let scalar = functions::scalar(name).ok_or_else(|| SqlError::NotFound(format!("Can't find any functions with the name '{name}'")))?;
        let args = args.iter().map(|a| self.compile(a)).collect::<Result<Vec<_>, _>>()?;
        // A NULL literal argument takes the type of the call's first other
        // argument, so COALESCE(NULL, 2) is an INT.
        let typed = args.iter().find(|a| !is_null_literal(a)).map(|a| a.sql_type.clone());
        let types: Vec<SqlType> =
            args.iter().map(|a| if is_null_literal(a) { typed.clone().unwrap_or(a.sql_type.clone()) } else { a.sql_type.clone() }).collect();
        let ty = scalar.return_type(&types).map_err(|why| {
            SqlError::invalid(format!(
                "Function '{name}' does not accept parameters ({}): {why}",
                types.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
            ))
        })?;
        Ok(compiled(ty, Node::Call(scalar, args)))
    }

    fn lambda_call(&mut self, name: &str, function: LambdaFunction, args: &[Expr]) -> Result<Compiled, SqlError> {
        let expected_args = if function == LambdaFunction::Reduce { 3 } else { 2 };
        let (Some(Expr::Lambda { params, body }), true) = (args.last(), args.len() == expected_args) else {
            return Err(SqlError::invalid(format!("{name} takes {} arguments, the last a lambda.", expected_args)));
        };
        let inputs = args[..args.len() - 1].iter().map(|a| self.compile(a)).collect::<Result<Vec<_>, _>>()?;
        let element = match &inputs[0].sql_type {
            SqlType::Array(item) => vec![(**item).clone()],
            SqlType::Map(key, value) => vec![(**key).clone(), (**value).clone()],
            other => return Err(SqlError::invalid(format!("{name} takes an ARRAY or a MAP, not {other}."))),
        };
        let param_types = match function {
            LambdaFunction::Reduce => [vec![inputs[1].sql_type.clone()], element.clone()].concat(),
            _ => element.clone(),
        };
        if params.len() != param_types.len() {
            return Err(SqlError::invalid(format!("The lambda of {name} takes {} parameters.", param_types.len())));
        }
        let depth = self.lambdas.len();
        self.lambdas.extend(params.iter().cloned().zip(param_types));
        let body = self.compile(body);
        self.lambdas.truncate(depth);
        let body = body?;
        let ty = match (function, &inputs[0].sql_type) {
            (LambdaFunction::Filter, input) => {
                if body.sql_type != SqlType::Boolean {
                    return Err(SqlError::invalid("The lambda of FILTER must return a BOOLEAN."));
                }
                input.clone()
            }
            (LambdaFunction::Transform, SqlType::Array(_)) => SqlType::Array(Box::new(body.sql_type.clone())),
            (LambdaFunction::Transform, _) => {
                return Err(SqlError::invalid("TRANSFORM of a MAP takes two lambdas; transform its keys or values with MAP_KEYS or MAP_VALUES."))
            }
            (LambdaFunction::Reduce, _) => inputs[1].sql_type.clone(),
        };
        Ok(compiled(ty, Node::Lambda(function, inputs, Box::new(body))))
    }
}

/// Whether a compiled expression is the literal NULL, whose type is
/// whatever its neighbours' is.
fn is_null_literal(c: &Compiled) -> bool {
    matches!(c.node, Node::Const(Value::Null))
}

/// The type several branches or items share, numbers widened; NULL
/// literals take it.
fn common_type<'a>(items: impl Iterator<Item = &'a Compiled>) -> Result<SqlType, SqlError> {
    let mut common: Option<SqlType> = None;
    for ty in items.filter(|c| !is_null_literal(c)).map(|c| &c.sql_type) {
        common = Some(match common {
            None => ty.clone(),
            Some(c) if &c == ty => c,
            Some(c) => SqlType::widest(&c, ty).ok_or_else(|| SqlError::invalid(format!("The types {c} and {ty} do not mix.")))?,
        });
    }
    Ok(common.unwrap_or(SqlType::String))
}

/// Whether `CAST` converts values of `from` to `to`.
pub fn castable(from: &SqlType, to: &SqlType) -> bool {
    use SqlType::*;
    match (from, to) {
        (a, b) if a == b => true,
        (_, String) => !matches!(from, Bytes),
        (String, _) => matches!(to, Boolean | Int | Bigint | Double | Decimal { .. } | Date | Time | Timestamp),
        (a, b) if a.is_numeric() && b.is_numeric() => true,
        (Boolean, Int | Bigint) => false,
        (Timestamp, Date | Time) | (Date, Timestamp) => true,
        (Array(a), Array(b)) => castable(a, b),
        (Map(k1, v1), Map(k2, v2)) => castable(k1, k2) && castable(v1, v2),
        (Struct(a), Struct(b)) => b.iter().all(|(name, ty)| a.iter().find(|(n, _)| n == name).is_none_or(|(_, t)| castable(t, ty))),
        _ => false,
    }
}

/// Converts a value to `to`, as `CAST` does.
pub fn cast(value: Value, to: &SqlType) -> Result<Value, String> {
    use SqlType as T;
    if value.is_null() {
        return Ok(Value::Null);
    }
    let fail = |value: &Value| format!("Cannot cast '{value}' to {to}");
    Ok(match (value, to) {
        (v, T::String) => Value::String(v.to_string()),
        (Value::String(s), T::Boolean) => match s.trim().to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" => Value::Boolean(true),
            "false" | "f" | "no" | "n" => Value::Boolean(false),
            _ => return Err(fail(&Value::String(s))),
        },
        (Value::String(s), T::Int) => Value::Int(s.trim().parse().map_err(|_| fail(&Value::String(s.clone())))?),
        (Value::String(s), T::Bigint) => Value::Bigint(s.trim().parse().map_err(|_| fail(&Value::String(s.clone())))?),
        (Value::String(s), T::Double) => Value::Double(s.trim().parse().map_err(|_| fail(&Value::String(s.clone())))?),
        (Value::String(s), T::Decimal { .. }) => {
            let d = Decimal::parse(&s).ok_or_else(|| fail(&Value::String(s.clone())))?;
            Value::Decimal(d).widen_to(to).ok_or_else(|| fail(&Value::String(s)))?
        }
        (Value::String(s), T::Date) => Value::Date(time::parse_date(&s)?),
        (Value::String(s), T::Time) => Value::Time(time::parse_time(&s)?),
        (Value::String(s), T::Timestamp) => Value::Timestamp(time::parse_timestamp(&s)?),
        (Value::Double(d), T::Int) => Value::Int(d as i32),
        (Value::Double(d), T::Bigint) => Value::Bigint(d as i64),
        (Value::Double(d), T::Decimal { .. }) => {
            let text = format!("{d}");
            Value::Decimal(Decimal::parse(&text).ok_or_else(|| fail(&Value::Double(d)))?).widen_to(to).ok_or_else(|| fail(&Value::Double(d)))?
        }
        // Java's intValue() and longValue(): the fraction is dropped.
        (Value::Decimal(d), T::Int) => Value::Int((d.unscaled / 10i128.pow(u32::from(d.scale))) as i32),
        (Value::Decimal(d), T::Bigint) => Value::Bigint((d.unscaled / 10i128.pow(u32::from(d.scale))) as i64),
        (Value::Bigint(i), T::Int) => Value::Int(i as i32),
        (Value::Timestamp(ms), T::Date) => Value::Date(ms.div_euclid(86_400_000) as i32),
        (Value::Timestamp(ms), T::Time) => Value::Time(ms.rem_euclid(86_400_000)),
        (Value::Date(days), T::Timestamp) => Value::Timestamp(i64::from(days) * 86_400_000),
        (Value::Array(items), T::Array(item)) => Value::Array(items.into_iter().map(|v| cast(v, item)).collect::<Result<_, _>>()?),
        (Value::Map(entries), T::Map(k, v)) => Value::Map(entries.into_iter().map(|(a, b)| Ok((cast(a, k)?, cast(b, v)?))).collect::<Result<_, String>>()?),
        (Value::Struct(fields), T::Struct(types)) => Value::Struct(
            types
                .iter()
                .map(|(name, ty)| Ok((name.clone(), fields.iter().find(|(n, _)| n == name).map_or(Ok(Value::Null), |(_, v)| cast(v.clone(), ty))?)))
                .collect::<Result<_, String>>()?,
        ),
        (v, ty) => v.clone().widen_to(ty).ok_or_else(|| fail(&v))?,
    })
}

/// A SQL `LIKE` match: `%` any run, `_` one character, `escape` quoting
/// the character after it.
pub fn like(text: &str, pattern: &str, escape: Option<char>) -> bool {
    enum Part {
        Any,
        One,
        Char(char),
    }
    let mut parts = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        parts.push(match c {
            c if Some(c) == escape => match chars.next() {
                Some(quoted) => Part::Char(quoted),
                None => break,
            },
            '%' => Part::Any,
            '_' => Part::One,
            c => Part::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Which text positions the pattern so far can end at.
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for part in &parts {
        let mut next = vec![false; text.len() + 1];
        match part {
            Part::Any => {
                let mut seen = false;
                for i in 0..=text.len() {
                    seen |= reachable[i];
                    next[i] = seen;
                }
            }
            Part::One | Part::Char(_) => {
                for i in 0..text.len() {
                    let matches = match part {
                        Part::Char(c) => *c == text[i],
                        _ => true,
                    };
                    if reachable[i] && matches {
                        next[i + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

impl Compiled {
    /// The column it reads, when it is nothing but a column.
    pub fn as_column(&self) -> Option<usize> {
        match self.node {
            Node::Column(i) => Some(i),
            _ => None,
        }
    }

    /// Marks in `read` the columns it reads (marks past the end are
    /// dropped).
    pub fn mark_columns(&self, read: &mut [bool]) {
        let all = |items: &[Compiled], read: &mut [bool]| items.iter().for_each(|item| item.mark_columns(read));
        match &self.node {
            Node::Const(_) | Node::Variable(_) => {}
            Node::Column(i) => {
                if let Some(flag) = read.get_mut(*i) {
                    *flag = true;
                }
            }
            Node::Not(a) | Node::Negate(a) | Node::IsNull(a, _) | Node::Cast(a, _) | Node::Field(a, _) => a.mark_columns(read),
            Node::Binary(_, a, b) | Node::IsDistinct(a, b, _) | Node::Like(a, b, _, _) | Node::Subscript(a, b) => {
                a.mark_columns(read);
                b.mark_columns(read);
            }
            Node::Between(a, b, c, _) => {
                a.mark_columns(read);
                b.mark_columns(read);
                c.mark_columns(read);
            }
            Node::In(a, items, _) => {
                a.mark_columns(read);
                all(items, read);
            }
            Node::Call(_, items) | Node::Array(items) => all(items, read),
            Node::Lambda(_, items, body) => {
                all(items, read);
                body.mark_columns(read);
            }
            Node::Case(branches, otherwise) => {
                for (when, then) in branches {
                    when.mark_columns(read);
                    then.mark_columns(read);
                }
                if let Some(otherwise) = otherwise {
                    otherwise.mark_columns(read);
                }
            }
            Node::Map(entries) => entries.iter().for_each(|(k, v)| {
                k.mark_columns(read);
                v.mark_columns(read);
            }),
            Node::Struct(fields) => fields.iter().for_each(|(_, v)| v.mark_columns(read)),
        }
    }
}

impl Compiled {
    /// The value of the expression for `row`.
    pub fn eval(&self, row: &[Value], ctx: &mut Eval) -> Value {
        match self.try_eval(row, ctx) {
            Ok(value) => value,
            Err(message) => {
                ctx.errors.push(message);
                Value::Null
            }
        }
    }

    fn try_eval(&self, row: &[Value], ctx: &mut Eval) -> Result<Value, String> {
        Ok(match &self.node {
            Node::Const(value) => value.clone(),
            Node::Column(i) => row.get(*i).cloned().unwrap_or(Value::Null),
            Node::Variable(depth) => ctx.bindings.get(ctx.bindings.len().wrapping_sub(1 + depth)).cloned().unwrap_or(Value::Null),
            Node::Binary(BinaryOp::And, l, r) => match (l.eval(row, ctx), r.eval(row, ctx)) {
                (Value::Boolean(false), _) | (_, Value::Boolean(false)) => Value::Boolean(false),
                (Value::Boolean(true), Value::Boolean(true)) => Value::Boolean(true),
                _ => Value::Null,
            },
            Node::Binary(BinaryOp::Or, l, r) => match (l.eval(row, ctx), r.eval(row, ctx)) {
                (Value::Boolean(true), _) | (_, Value::Boolean(true)) => Value::Boolean(true),
                (Value::Boolean(false), Value::Boolean(false)) => Value::Boolean(false),
                _ => Value::Null,
            },
            Node::Binary(op, l, r) => {
                let (a, b) = (l.eval(row, ctx), r.eval(row, ctx));
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                match op {
                    BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq => {
                        let ordering = compare_for_sql(&a, &b).ok_or_else(|| format!("cannot compare {a} and {b}"))?;
                        Value::Boolean(match op {
                            BinaryOp::Eq => ordering == Ordering::Equal,
                            BinaryOp::NotEq => ordering != Ordering::Equal,
                            BinaryOp::Lt => ordering == Ordering::Less,
                            BinaryOp::LtEq => ordering != Ordering::Greater,
                            BinaryOp::Gt => ordering == Ordering::Greater,
                            _ => ordering != Ordering::Less,
                        })
                    }
                    BinaryOp::Concat => Value::String(format!("{a}{b}")),
                    _ => arithmetic(*op, a, b, &self.sql_type)?,
                }
            }
            Node::Not(inner) => match inner.eval(row, ctx) {
                Value::Boolean(b) => Value::Boolean(!b),
                _ => Value::Null,
            },
            Node::Negate(inner) => match inner.eval(row, ctx) {
                Value::Int(i) => Value::Int(i.wrapping_neg()),
                Value::Bigint(i) => Value::Bigint(i.wrapping_neg()),
                Value::Double(d) => Value::Double(-d),
                Value::Decimal(d) => Value::Decimal(Decimal { unscaled: -d.unscaled, scale: d.scale }),
                _ => Value::Null,
            },
            Node::IsNull(inner, negated) => Value::Boolean(inner.eval(row, ctx).is_null() != *negated),
            Node::IsDistinct(l, r, negated) => {
                let (a, b) = (l.eval(row, ctx), r.eval(row, ctx));
                let distinct = match (a.is_null(), b.is_null()) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    _ => compare_for_sql(&a, &b) != Some(Ordering::Equal),
                };
                Value::Boolean(distinct != *negated)
            }
            Node::Between(e, low, high, negated) => {
                let (v, l, h) = (e.eval(row, ctx), low.eval(row, ctx), high.eval(row, ctx));
                if v.is_null() || l.is_null() || h.is_null() {
                    return Ok(Value::Null);
                }
                let inside = compare_for_sql(&v, &l).is_some_and(|o| o != Ordering::Less) && compare_for_sql(&v, &h).is_some_and(|o| o != Ordering::Greater);
                Value::Boolean(inside != *negated)
            }
            Node::Like(e, p, escape, negated) => match (e.eval(row, ctx), p.eval(row, ctx)) {
                (Value::String(text), Value::String(pattern)) => Value::Boolean(like(&text, &pattern, *escape) != *negated),
                _ => Value::Null,
            },
            Node::In(e, list, negated) => {
                let v = e.eval(row, ctx);
                if v.is_null() {
                    return Ok(Value::Null);
                }
                let mut saw_null = false;
                for item in list {
                    let candidate = item.eval(row, ctx);
                    if candidate.is_null() {
                        saw_null = true;
                    } else if compare_for_sql(&v, &candidate) == Some(Ordering::Equal) {
                        return Ok(Value::Boolean(!negated));
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Boolean(*negated)
                }
            }
            Node::Call(scalar, args) => {
                let values: Vec<Value> = args.iter().map(|a| a.eval(row, ctx)).collect();
                scalar.call(&values, &self.sql_type)?
            }
            Node::Lambda(function, inputs, body) => {
                let input = inputs[0].eval(row, ctx);
                let apply = |bound: Vec<Value>, ctx: &mut Eval| {
                    let depth = ctx.bindings.len();
                    ctx.bindings.extend(bound);
                    let out = body.eval(row, ctx);
                    ctx.bindings.truncate(depth);
                    out
                };
                match (function, input) {
                    (_, Value::Null) => Value::Null,
                    (LambdaFunction::Transform, Value::Array(items)) => Value::Array(items.into_iter().map(|v| apply(vec![v], ctx)).collect()),
                    (LambdaFunction::Filter, Value::Array(items)) => {
                        Value::Array(items.into_iter().filter(|v| apply(vec![v.clone()], ctx).is_true()).collect())
                    }
                    (LambdaFunction::Filter, Value::Map(entries)) => {
                        Value::Map(entries.into_iter().filter(|(k, v)| apply(vec![k.clone(), v.clone()], ctx).is_true()).collect())
                    }
                    (LambdaFunction::Reduce, Value::Array(items)) => {
                        let mut state = inputs[1].eval(row, ctx);
                        for item in items {
                            state = apply(vec![state, item], ctx);
                        }
                        state
                    }
                    (LambdaFunction::Reduce, Value::Map(entries)) => {
                        let mut state = inputs[1].eval(row, ctx);
                        for (k, v) in entries {
                            state = apply(vec![state, k, v], ctx);
                        }
                        state
                    }
                    _ => Value::Null,
                }
            }
            Node::Cast(inner, to) => cast(inner.eval(row, ctx), to)?,
            Node::Case(branches, otherwise) => {
                for (condition, then) in branches {
                    if condition.eval(row, ctx).is_true() {
                        return Ok(then.eval(row, ctx).widen_to(&self.sql_type).unwrap_or(Value::Null));
                    }
                }
                otherwise.as_ref().map_or(Value::Null, |o| o.eval(row, ctx).widen_to(&self.sql_type).unwrap_or(Value::Null))
            }
            Node::Subscript(e, i) => match (e.eval(row, ctx), i.eval(row, ctx)) {
                (Value::Array(items), index) => {
                    let Some(index) = index.as_i64() else { return Ok(Value::Null) };
                    let position = if index > 0 { index - 1 } else { items.len() as i64 + index };
                    usize::try_from(position).ok().and_then(|p| items.get(p).cloned()).unwrap_or(Value::Null)
                }
                (Value::Map(entries), key) => entries.into_iter().find(|(k, _)| k.equals(&key)).map_or(Value::Null, |(_, v)| v),
                _ => Value::Null,
            },
            Node::Field(e, position) => match e.eval(row, ctx) {
                Value::Struct(fields) => fields.into_iter().nth(*position).map_or(Value::Null, |(_, v)| v),
                _ => Value::Null,
            },
            Node::Array(items) => {
                let SqlType::Array(item_type) = &self.sql_type else { return Ok(Value::Null) };
                Value::Array(items.iter().map(|i| i.eval(row, ctx).widen_to(item_type).unwrap_or(Value::Null)).collect())
            }
            Node::Map(entries) => {
                let SqlType::Map(key_type, value_type) = &self.sql_type else { return Ok(Value::Null) };
                let mut out: Vec<(Value, Value)> = Vec::new();
                for (k, v) in entries {
                    let key = k.eval(row, ctx).widen_to(key_type).unwrap_or(Value::Null);
                    let value = v.eval(row, ctx).widen_to(value_type).unwrap_or(Value::Null);
                    match out.iter_mut().find(|(existing, _)| existing == &key) {
                        Some(entry) => entry.1 = value,
                        None => out.push((key, value)),
                    }
                }
                Value::Map(out)
            }
            Node::Struct(fields) => Value::Struct(fields.iter().map(|(name, e)| (name.clone(), e.eval(row, ctx))).collect()),
        })
    }
}

/// Compares for SQL, converting a string to a date or time when the other
/// side is one.
fn compare_for_sql(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Timestamp(_), Value::String(s)) => a.compare(&Value::Timestamp(time::parse_timestamp(s).ok()?)),
        (Value::Date(_), Value::String(s)) => a.compare(&Value::Date(time::parse_date(s).ok()?)),
        (Value::Time(_), Value::String(s)) => a.compare(&Value::Time(time::parse_time(s).ok()?)),
        (Value::String(_), Value::Timestamp(_) | Value::Date(_) | Value::Time(_)) => compare_for_sql(b, a).map(Ordering::reverse),
        (Value::Timestamp(t), Value::Date(d)) => t.partial_cmp(&(i64::from(*d) * 86_400_000)),
        (Value::Date(_), Value::Timestamp(_)) => compare_for_sql(b, a).map(Ordering::reverse),
        _ => a.compare(b),
    }
}

/// `+ - * / %` on two non-null values, giving a value of `result`.
fn arithmetic(op: BinaryOp, a: Value, b: Value, result: &SqlType) -> Result<Value, String> {
    match result {
        SqlType::String => Ok(Value::String(format!("{a}{b}"))),
        SqlType::Int => {
            let (x, y) = (a.as_i64().unwrap_or(0) as i32, b.as_i64().unwrap_or(0) as i32);
            Ok(Value::Int(match op {
                BinaryOp::Add => x.wrapping_add(y),
                BinaryOp::Subtract => x.wrapping_sub(y),
                BinaryOp::Multiply => x.wrapping_mul(y),
                BinaryOp::Divide => x.checked_div(y).ok_or("/ by zero")?,
                _ => x.checked_rem(y).ok_or("/ by zero")?,
            }))
        }
        SqlType::Bigint => {
            let (x, y) = (a.as_i64().unwrap_or(0), b.as_i64().unwrap_or(0));
            Ok(Value::Bigint(match op {
                BinaryOp::Add => x.wrapping_add(y),
                BinaryOp::Subtract => x.wrapping_sub(y),
                BinaryOp::Multiply => x.wrapping_mul(y),
                BinaryOp::Divide => x.checked_div(y).ok_or("/ by zero")?,
                _ => x.checked_rem(y).ok_or("/ by zero")?,
            }))
        }
        SqlType::Double => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            Ok(Value::Double(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Subtract => x - y,
                BinaryOp::Multiply => x * y,
                BinaryOp::Divide => x / y,
                _ => x % y,
            }))
        }
        SqlType::Decimal { precision, scale } => {
            let to_decimal = |v: &Value| match v {
                Value::Decimal(d) => Some(*d),
                other => other.as_i64().map(|i| Decimal { unscaled: i128::from(i), scale: 0 }),
            };
            let (x, y) = (to_decimal(&a).ok_or("not a decimal")?, to_decimal(&b).ok_or("not a decimal")?);
            let common = x.scale.max(y.scale);
            let (x, y) = (x.rescale(common).ok_or("decimal overflow")?, y.rescale(common).ok_or("decimal overflow")?);
            let exact = match op {
                BinaryOp::Add => Decimal { unscaled: x.unscaled.checked_add(y.unscaled).ok_or("decimal overflow")?, scale: common },
                BinaryOp::Subtract => Decimal { unscaled: x.unscaled.checked_sub(y.unscaled).ok_or("decimal overflow")?, scale: common },
                BinaryOp::Multiply => Decimal { unscaled: x.unscaled.checked_mul(y.unscaled).ok_or("decimal overflow")?, scale: common * 2 },
                BinaryOp::Divide => {
                    if y.unscaled == 0 {
                        return Err("Division by zero".into());
                    }
                    // Divide at the result's scale plus one digit, then round.
                    let shift = 10i128.checked_pow(u32::from(*scale) + 1).ok_or("decimal overflow")?;
                    let quotient = x.unscaled.checked_mul(shift).and_then(|n| n.checked_div(y.unscaled)).ok_or("decimal overflow")?;
                    Decimal { unscaled: quotient, scale: scale + 1 }
                }
                _ => {
                    if y.unscaled == 0 {
                        return Err("Division by zero".into());
                    }
                    Decimal { unscaled: x.unscaled.checked_rem(y.unscaled).ok_or("decimal overflow")?, scale: common }
                }
            };
            let fitted = exact.rescale(*scale).ok_or("decimal overflow")?;
            if !fitted.fits(*precision) {
                return Err(format!("the result {fitted} does not fit DECIMAL({precision}, {scale})"));
            }
            Ok(Value::Decimal(fitted))
        }
        other => Err(format!("cannot compute {a} {op} {b} as {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_expression;

    fn eval_on(text: &str, scope: &Scope, row: &[Value]) -> Result<(Value, SqlType), SqlError> {
        let compiled = compile(&parse_expression(text)?, scope)?;
        let mut ctx = Eval::default();
        Ok((compiled.eval(row, &mut ctx), compiled.sql_type))
    }

    fn eval(text: &str) -> Value {
        eval_on(text, &Scope::default(), &[]).unwrap().0
    }

    #[test]
    fn arithmetic_follows_ksqldb_types() {
        assert_eq!(eval("1 + 2 * 3"), Value::Int(7));
        assert_eq!(eval("7 / 2"), Value::Int(3));
        assert_eq!(eval("7 / 2.0").to_string(), "3.500000");
        assert_eq!(eval("1.5 + 2.25").to_string(), "3.75");
        assert_eq!(eval("7e0 / 2"), Value::Double(3.5));
        assert_eq!(eval("2147483647 + 1"), Value::Int(-2147483648));
        assert_eq!(eval("'a' + 'b'"), Value::String("ab".into()));
        assert_eq!(eval("1 / 0"), Value::Null);
    }

    #[test]
    fn nulls_and_three_valued_logic() {
        assert_eq!(eval("NULL = 1"), Value::Null);
        assert_eq!(eval("NULL AND FALSE"), Value::Boolean(false));
        assert_eq!(eval("NULL OR TRUE"), Value::Boolean(true));
        assert_eq!(eval("NULL IS NULL"), Value::Boolean(true));
        assert_eq!(eval("1 IN (2, NULL)"), Value::Null);
        assert_eq!(eval("1 IN (2, 1)"), Value::Boolean(true));
        assert_eq!(eval("NULL IS NOT DISTINCT FROM NULL"), Value::Boolean(true));
    }

    #[test]
    fn predicates_and_case() {
        assert_eq!(eval("5 BETWEEN 1 AND 5"), Value::Boolean(true));
        assert_eq!(eval("'JFK Airport' LIKE '%Airport'"), Value::Boolean(true));
        assert_eq!(eval("'a_b' LIKE 'a!_b' ESCAPE '!'"), Value::Boolean(true));
        assert_eq!(eval("'axb' LIKE 'a!_b' ESCAPE '!'"), Value::Boolean(false));
        assert_eq!(eval("CASE WHEN 1 > 2 THEN 'x' WHEN 2 > 1 THEN 'y' END"), Value::String("y".into()));
        assert_eq!(eval("CASE 3 WHEN 1 THEN 10 ELSE 20 END"), Value::Int(20));
        assert_eq!(eval("CASE WHEN FALSE THEN 1 ELSE 2.5 END").to_string(), "2.5");
    }

    #[test]
    fn columns_collections_and_casts() {
        let scope = Scope::of(&[
            ("FARE", SqlType::Double),
            ("TAGS", SqlType::Array(Box::new(SqlType::String))),
            ("STOP", SqlType::Struct(vec![("ZONE".into(), SqlType::Int)])),
        ]);
        let row = [
            Value::Double(9.5),
            Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
            Value::Struct(vec![("ZONE".into(), Value::Int(132))]),
        ];
        assert_eq!(eval_on("fare * 2", &scope, &row).unwrap(), (Value::Double(19.0), SqlType::Double));
        assert_eq!(eval_on("tags[1]", &scope, &row).unwrap().0, Value::String("a".into()));
        assert_eq!(eval_on("tags[-1]", &scope, &row).unwrap().0, Value::String("b".into()));
        assert_eq!(eval_on("tags[5]", &scope, &row).unwrap().0, Value::Null);
        assert_eq!(eval_on("stop->zone", &scope, &row).unwrap(), (Value::Int(132), SqlType::Int));
        assert_eq!(eval("CAST('42' AS INT) + 1"), Value::Int(43));
        assert_eq!(eval("CAST('x' AS INT)"), Value::Null);
        assert_eq!(eval("CAST(1.5e0 AS STRING)"), Value::String("1.5".into()));
        assert_eq!(eval("CAST('2019-01-01 00:37:38' AS TIMESTAMP)"), Value::Timestamp(1_546_303_058_000));
        assert_eq!(eval("MAP('a' := 1, 'b' := 2)['b']"), Value::Int(2));
        assert_eq!(eval("STRUCT(x := 1, y := 'z')->y"), Value::String("z".into()));
        assert_eq!(eval("ARRAY[1, 2.5]").to_string(), "[1.0, 2.5]");
    }

    #[test]
    fn lambdas() {
        assert_eq!(eval("TRANSFORM(ARRAY[1, 2, 3], x => x * 10)").to_string(), "[10, 20, 30]");
        assert_eq!(eval("FILTER(ARRAY[1, 2, 3], x => x > 1)").to_string(), "[2, 3]");
        assert_eq!(eval("REDUCE(ARRAY[1, 2, 3], 0, (s, x) => s + x)"), Value::Int(6));
        assert_eq!(eval("REDUCE(MAP('a' := 2, 'b' := 3), 1, (s, k, v) => s * v)"), Value::Int(6));
    }

    #[test]
    fn bad_expressions_are_refused_when_compiled() {
        let scope = Scope::of(&[("FARE", SqlType::Double)]);
        let refused = |text: &str| eval_on(text, &scope, &[]).unwrap_err().to_string();
        assert_eq!(refused("fair > 1"), "Column 'FAIR' cannot be resolved.");
        assert_eq!(refused("fare AND TRUE"), "AND takes a BOOLEAN, not DOUBLE.");
        assert_eq!(refused("fare = 'x'"), "Cannot compare DOUBLE to STRING with =.");
        assert_eq!(refused("NO_SUCH(1)"), "Can't find any functions with the name 'NO_SUCH'");
        assert_eq!(refused("CAST(TRUE AS INT)"), "Cast of BOOLEAN to INTEGER is not supported");
        assert!(refused("COUNT(*)").contains("aggregate"));
    }
}
