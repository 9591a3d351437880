//! Scalar functions, by name, with their types and ksqlDB's behaviour:
//! most return NULL when an argument is NULL (the exceptions say so).
//! `SHOW FUNCTIONS` and `DESCRIBE FUNCTION` list this table.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use crate::eval::cast;
use crate::time;
use crate::types::SqlType;
use crate::value::{format_double, Decimal, Value};

/// A function's category, as `SHOW FUNCTIONS` groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Category {
    String,
    Math,
    DateTime,
    Json,
    Collections,
    Conditional,
    Other,
}

impl Category {
    /// The heading `SHOW FUNCTIONS` gives it.
    pub fn label(self) -> &'static str {
        match self {
            Category::String => "STRING",
            Category::Math => "MATHEMATICAL",
            Category::DateTime => "DATE / TIME",
            Category::Json => "JSON",
            Category::Collections => "ARRAY / MAP",
            Category::Conditional => "CONDITIONAL",
            Category::Other => "OTHER",
        }
    }
}

type ReturnType = fn(&[SqlType]) -> Result<SqlType, String>;
type Body = fn(&[Value], &SqlType) -> Result<Value, String>;

/// A scalar function.
pub struct Scalar {
    /// Its name, upper case.
    pub name: &'static str,
    /// Its group in `SHOW FUNCTIONS`.
    pub category: Category,
    /// What it does, for `DESCRIBE FUNCTION`.
    pub description: &'static str,
    /// The accepted argument counts.
    pub arity: std::ops::RangeInclusive<usize>,
    return_type: ReturnType,
    body: Body,
    /// Whether a NULL argument makes the result NULL without calling the
    /// body (false for `COALESCE`, `IFNULL`, `CONCAT` and the like).
    null_in_null_out: bool,
}

impl std::fmt::Debug for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl Scalar {
    /// The result type for arguments of these types, or why they do not
    /// fit.
    pub fn return_type(&self, args: &[SqlType]) -> Result<SqlType, String> {
        if !self.arity.contains(&args.len()) {
            let (min, max) = (self.arity.start(), self.arity.end());
            return Err(if min == max { format!("it takes {min} arguments") } else { format!("it takes {min} to {max} arguments") });
        }
        (self.return_type)(args)
    }

    /// Calls the function; `result` is the type compiling worked out.
    pub fn call(&self, args: &[Value], result: &SqlType) -> Result<Value, String> {
        if self.null_in_null_out && args.iter().any(Value::is_null) {
            return Ok(Value::Null);
        }
        (self.body)(args, result)
    }
}

/// The aggregate functions (compiled by the planner, not here).
pub const AGGREGATES: &[(&str, &str)] = &[
    ("COUNT", "Counts rows, or non-NULL values of a column."),
    ("COUNT_DISTINCT", "Counts distinct non-NULL values."),
    ("SUM", "Sums values."),
    ("AVG", "Averages values."),
    ("MIN", "The smallest value."),
    ("MAX", "The largest value."),
    ("LATEST_BY_OFFSET", "The value of the latest row by offset."),
    ("EARLIEST_BY_OFFSET", "The value of the earliest row by offset."),
    ("COLLECT_LIST", "All values, in order."),
    ("COLLECT_SET", "The distinct values, in order of first appearance."),
    ("TOPK", "The K largest values."),
    ("TOPKDISTINCT", "The K largest distinct values."),
    ("HISTOGRAM", "How many times each value appears."),
    ("STDDEV_SAMP", "The sample standard deviation."),
];

/// Whether `name` is an aggregate function.
pub fn is_aggregate(name: &str) -> bool {
    AGGREGATES.iter().any(|(n, _)| *n == name)
}

/// The scalar function called `name` (upper case).
pub fn scalar(name: &str) -> Option<&'static Scalar> {
    static BY_NAME: LazyLock<HashMap<&'static str, &'static Scalar>> = LazyLock::new(|| SCALARS.iter().map(|s| (s.name, s)).collect());
    BY_NAME.get(name).copied()
}

/// Every scalar function, for `SHOW FUNCTIONS`.
pub fn all_scalars() -> &'static [Scalar] {
    &SCALARS
}

// ---- helpers for the table ---------------------------------------------

fn string_arg(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("expected a string, got {v}"))
}

fn int_arg(v: &Value) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("expected an integer, got {v}"))
}

fn f64_arg(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("expected a number, got {v}"))
}

fn all_strings(args: &[SqlType]) -> Result<(), String> {
    match args.iter().find(|t| **t != SqlType::String) {
        Some(other) => Err(format!("expected STRING, got {other}")),
        None => Ok(()),
    }
}

fn returns_string(args: &[SqlType]) -> Result<SqlType, String> {
    all_strings(args).map(|_| SqlType::String)
}

fn numeric(args: &[SqlType]) -> Result<SqlType, String> {
    match args.first() {
        Some(t) if t.is_numeric() => Ok(t.clone()),
        Some(other) => Err(format!("expected a number, got {other}")),
        None => Err("expected a number".into()),
    }
}

fn returns_double(args: &[SqlType]) -> Result<SqlType, String> {
    numeric(args).map(|_| SqlType::Double)
}

fn array_item(args: &[SqlType]) -> Result<SqlType, String> {
    match args.first() {
        Some(SqlType::Array(item)) => Ok((**item).clone()),
        Some(other) => Err(format!("expected an ARRAY, got {other}")),
        None => Err("expected an ARRAY".into()),
    }
}

fn same_array(args: &[SqlType]) -> Result<SqlType, String> {
    array_item(args)?;
    Ok(args[0].clone())
}

fn common_args(args: &[SqlType]) -> Result<SqlType, String> {
    let mut common = args.first().cloned().ok_or("expected arguments")?;
    for ty in &args[1..] {
        if *ty != common {
            common = SqlType::widest(&common, ty).ok_or_else(|| format!("{common} and {ty} do not mix"))?;
        }
    }
    Ok(common)
}

fn chars_of(s: &str) -> Vec<char> {
    s.chars().collect()
}

/// `SUBSTRING`'s position rules: from 1, negative from the end.
fn substring(s: &str, start: i64, length: Option<i64>) -> String {
    let chars = chars_of(s);
    let n = chars.len() as i64;
    let begin = if start > 0 {
        start - 1
    } else if start < 0 {
        (n + start).max(0)
    } else {
        0
    };
    let end = length.map_or(n, |l| begin.saturating_add(l.max(0)).min(n));
    if begin >= n || begin >= end {
        return String::new();
    }
    chars[begin as usize..end as usize].iter().collect()
}

/// The longest string `LPAD` and `RPAD` make, so a query cannot exhaust
/// memory.
const MAX_PADDED: usize = 1 << 20;

fn pad(s: &str, length: i64, fill: &str, left: bool) -> Option<String> {
    let length = usize::try_from(length).ok().filter(|l| *l <= MAX_PADDED)?;
    if fill.is_empty() {
        return None;
    }
    let chars = chars_of(s);
    if chars.len() >= length {
        return Some(chars[..length].iter().collect());
    }
    let padding: String = fill.chars().cycle().take(length - chars.len()).collect();
    Some(if left { format!("{padding}{s}") } else { format!("{s}{padding}") })
}

/// Standard base64 with padding, as ksqlDB writes BYTES.
pub fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64, padding optional.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

fn json_path_get<'a>(json: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let path = path.strip_prefix('$')?;
    let mut current = json;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            current = current.get(&after[..end])?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let key = after[..end].trim_matches(['"', '\'']);
            current = match key.parse::<usize>() {
                Ok(index) => current.get(index)?,
                Err(_) => current.get(key)?,
            };
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(current)
}

/// Appends a value as JSON, as `TO_JSON_STRING` and the JSON format
/// write it: fields and entries in their order, decimals as numbers,
/// bytes as base64, dates as days and times as milliseconds.
pub fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Bigint(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Double(d) if d.is_finite() && (*d == 0.0 || (1e-3..1e7).contains(&d.abs())) => {
            // `format_double`'s plain form, written in place.
            let start = out.len();
            let _ = write!(out, "{d}");
            if !out[start..].contains('.') {
                out.push_str(".0");
            }
        }
        Value::Double(d) if d.is_finite() => out.push_str(&format_double(*d).replace("E", "e")),
        Value::Double(_) => out.push_str("null"),
        Value::Decimal(d) => out.push_str(&d.to_string()),
        Value::String(s) => write_json_string(s, out),
        Value::Bytes(b) => write_json_string(&base64_encode(b), out),
        Value::Date(d) => out.push_str(&d.to_string()),
        Value::Time(t) | Value::Timestamp(t) => out.push_str(&t.to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(&k.to_string(), out);
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
        Value::Struct(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
    }
}

/// Appends `s` as a JSON string literal. Text with nothing to escape (no
/// quote, backslash or control character) is copied as it is.
pub fn write_json_string(s: &str, out: &mut String) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// The keys of a JSON object, in the order the text has them.
fn json_object_keys(text: &str) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let keys = serde::Deserializer::deserialize_map(&mut deserializer, Keys).ok()?;
    deserializer.end().ok()?;
    Some(keys)
}

fn sort_values(items: &mut [Value], descending: bool) {
    items.sort_by(|a, b| {
        let ordering = match (a.is_null(), b.is_null()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => a.compare(b).unwrap_or(std::cmp::Ordering::Equal),
        };
        if descending && !a.is_null() && !b.is_null() {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

fn distinct(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if !out.iter().any(|seen| seen == &item) {
            out.push(item);
        }
    }
    out
}

fn regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("bad regular expression: {e}"))
}

macro_rules! scalar {
    ($name:literal, $category:ident, $arity:expr, $description:literal, $return_type:expr, $body:expr) => {
        Scalar {
            name: $name,
            category: Category::$category,
            description: $description,
            arity: $arity,
            return_type: $return_type,
            body: $body,
            null_in_null_out: true,
        }
    };
    ($name:literal, $category:ident, $arity:expr, $description:literal, $return_type:expr, $body:expr, nulls_pass) => {
        Scalar {
            name: $name,
            category: Category::$category,
            description: $description,
            arity: $arity,
            return_type: $return_type,
            body: $body,
            null_in_null_out: false,
        }
    };
}

static SCALARS: LazyLock<Vec<Scalar>> = LazyLock::new(|| {
    vec![
        // ---- strings ----
        scalar!("LCASE", String, 1..=1, "Lower-cases a string.", returns_string, |a, _| Ok(Value::String(string_arg(&a[0])?.to_lowercase()))),
        scalar!("UCASE", String, 1..=1, "Upper-cases a string.", returns_string, |a, _| Ok(Value::String(string_arg(&a[0])?.to_uppercase()))),
        scalar!(
            "LEN",
            String,
            1..=1,
            "The length of a string, in characters, or of bytes.",
            |t| match t[0] {
                SqlType::String | SqlType::Bytes => Ok(SqlType::Int),
                ref other => Err(format!("expected STRING or BYTES, got {other}")),
            },
            |a, _| Ok(Value::Int(match &a[0] {
                Value::Bytes(b) => b.len(),
                v => string_arg(v)?.chars().count(),
            } as i32))
        ),
        scalar!(
            "CONCAT",
            String,
            1..=64,
            "Joins strings; NULLs are skipped.",
            returns_string,
            |a, _| Ok(Value::String(a.iter().filter_map(Value::as_str).collect())),
            nulls_pass
        ),
        scalar!(
            "CONCAT_WS",
            String,
            2..=64,
            "Joins strings with a separator; NULLs are skipped.",
            returns_string,
            |a, _| {
                let Some(separator) = a[0].as_str() else { return Ok(Value::Null) };
                Ok(Value::String(a[1..].iter().filter_map(Value::as_str).collect::<Vec<_>>().join(separator)))
            },
            nulls_pass
        ),
        scalar!(
            "SUBSTRING",
            String,
            2..=3,
            "Part of a string: from a position (1-based, negative from the end), for a length.",
            |t| {
                if t[0] != SqlType::String || t[1..].iter().any(|x| !matches!(x, SqlType::Int | SqlType::Bigint)) {
                    return Err("expected (STRING, INT[, INT])".into());
                }
                Ok(SqlType::String)
            },
            |a, _| Ok(Value::String(substring(string_arg(&a[0])?, int_arg(&a[1])?, a.get(2).map(int_arg).transpose()?)))
        ),
        scalar!("TRIM", String, 1..=1, "Removes leading and trailing whitespace.", returns_string, |a, _| Ok(Value::String(
            string_arg(&a[0])?.trim().to_string()
        ))),
        scalar!("LTRIM", String, 1..=1, "Removes leading whitespace.", returns_string, |a, _| Ok(Value::String(string_arg(&a[0])?.trim_start().to_string()))),
        scalar!("RTRIM", String, 1..=1, "Removes trailing whitespace.", returns_string, |a, _| Ok(Value::String(string_arg(&a[0])?.trim_end().to_string()))),
        scalar!("REPLACE", String, 3..=3, "Replaces every occurrence of a substring.", returns_string, |a, _| Ok(Value::String(
            string_arg(&a[0])?.replace(string_arg(&a[1])?, string_arg(&a[2])?)
        ))),
        scalar!(
            "SPLIT",
            String,
            2..=2,
            "Splits a string at a delimiter into an array.",
            |t| all_strings(t).map(|_| SqlType::Array(Box::new(SqlType::String))),
            |a, _| {
                let (s, delimiter) = (string_arg(&a[0])?, string_arg(&a[1])?);
                let parts: Vec<Value> = if delimiter.is_empty() {
                    s.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    s.split(delimiter).map(|p| Value::String(p.to_string())).collect()
                };
                Ok(Value::Array(parts))
            }
        ),
        scalar!("INSTR", String, 2..=2, "The 1-based position of a substring, or 0.", |t| all_strings(t).map(|_| SqlType::Int), |a, _| {
            let (s, sub) = (string_arg(&a[0])?, string_arg(&a[1])?);
            Ok(Value::Int(s.find(sub).map_or(0, |byte| s[..byte].chars().count() as i32 + 1)))
        }),
        scalar!(
            "LPAD",
            String,
            3..=3,
            "Pads a string on the left to a length.",
            |t| if t[0] == SqlType::String && t[2] == SqlType::String && matches!(t[1], SqlType::Int | SqlType::Bigint) {
                Ok(SqlType::String)
            } else {
                Err("expected (STRING, INT, STRING)".into())
            },
            |a, _| Ok(pad(string_arg(&a[0])?, int_arg(&a[1])?, string_arg(&a[2])?, true).map_or(Value::Null, Value::String))
        ),
        scalar!(
            "RPAD",
            String,
            3..=3,
            "Pads a string on the right to a length.",
            |t| if t[0] == SqlType::String && t[2] == SqlType::String && matches!(t[1], SqlType::Int | SqlType::Bigint) {
                Ok(SqlType::String)
            } else {
                Err("expected (STRING, INT, STRING)".into())
            },
            |a, _| Ok(pad(string_arg(&a[0])?, int_arg(&a[1])?, string_arg(&a[2])?, false).map_or(Value::Null, Value::String))
        ),
        scalar!("INITCAP", String, 1..=1, "Capitalizes each word.", returns_string, |a, _| {
            let mut out = String::new();
            let mut start = true;
            for c in string_arg(&a[0])?.chars() {
                if c.is_whitespace() {
                    start = true;
                    out.push(c);
                } else if start {
                    out.extend(c.to_uppercase());
                    start = false;
                } else {
                    out.extend(c.to_lowercase());
                }
            }
            Ok(Value::String(out))
        }),
        scalar!(
            "REGEXP_EXTRACT",
            String,
            2..=3,
            "The part of a string a regular expression (group) matches.",
            |t| if t[..2].iter().all(|x| *x == SqlType::String) { Ok(SqlType::String) } else { Err("expected (STRING, STRING[, INT])".into()) },
            |a, _| {
                let re = regex(string_arg(&a[0])?)?;
                let group = a.get(2).map(int_arg).transpose()?.unwrap_or(0);
                Ok(re
                    .captures(string_arg(&a[1])?)
                    .and_then(|c| c.get(usize::try_from(group).ok()?))
                    .map_or(Value::Null, |m| Value::String(m.as_str().to_string())))
            }
        ),
        scalar!("REGEXP_REPLACE", String, 3..=3, "Replaces every match of a regular expression.", returns_string, |a, _| Ok(Value::String(
            regex(string_arg(&a[1])?)?.replace_all(string_arg(&a[0])?, string_arg(&a[2])?).into_owned()
        ))),
        scalar!(
            "REGEXP_SPLIT_TO_ARRAY",
            String,
            2..=2,
            "Splits a string at every match of a regular expression.",
            |t| all_strings(t).map(|_| SqlType::Array(Box::new(SqlType::String))),
            |a, _| Ok(Value::Array(regex(string_arg(&a[1])?)?.split(string_arg(&a[0])?).map(|p| Value::String(p.to_string())).collect()))
        ),
        scalar!("MASK", String, 1..=1, "Masks letters (X, x) and digits (n).", returns_string, |a, _| Ok(Value::String(
            string_arg(&a[0])?
                .chars()
                .map(|c| if c.is_uppercase() {
                    'X'
                } else if c.is_lowercase() {
                    'x'
                } else if c.is_ascii_digit() {
                    'n'
                } else {
                    '-'
                })
                .collect()
        ))),
        scalar!(
            "CHR",
            String,
            1..=1,
            "The character of a code point.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) { Ok(SqlType::String) } else { Err("expected INT".into()) },
            |a, _| Ok(u32::try_from(int_arg(&a[0])?).ok().and_then(char::from_u32).map_or(Value::Null, |c| Value::String(c.to_string())))
        ),
        scalar!("UUID", Other, 0..=0, "A random UUID.", |_| Ok(SqlType::String), |_, _| Ok(Value::String(uuid::Uuid::new_v4().to_string()))),
        scalar!("TO_BYTES", String, 2..=2, "A string decoded into bytes by an encoding: hex, utf8, ascii or base64.", returns_string_to_bytes, |a, _| {
            let (s, encoding) = (string_arg(&a[0])?, string_arg(&a[1])?);
            Ok(match encoding.to_lowercase().as_str() {
                "utf8" | "ascii" => Value::Bytes(s.as_bytes().to_vec()),
                "base64" => Value::Bytes(base64_decode(s).ok_or("not base64")?),
                "hex" => Value::Bytes(
                    (0..s.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or("odd hex")?, 16).map_err(|_| "not hex"))
                        .collect::<Result<_, _>>()?,
                ),
                other => return Err(format!("unknown encoding {other}")),
            })
        }),
        scalar!(
            "FROM_BYTES",
            String,
            2..=2,
            "Bytes encoded as a string: hex, utf8, ascii or base64.",
            |t| if t[0] == SqlType::Bytes && t[1] == SqlType::String { Ok(SqlType::String) } else { Err("expected (BYTES, STRING)".into()) },
            |a, _| {
                let Value::Bytes(bytes) = &a[0] else { return Ok(Value::Null) };
                Ok(Value::String(match string_arg(&a[1])?.to_lowercase().as_str() {
                    "utf8" | "ascii" => String::from_utf8_lossy(bytes).into_owned(),
                    "base64" => base64_encode(bytes),
                    "hex" => bytes.iter().map(|b| format!("{b:02X}")).collect(),
                    other => return Err(format!("unknown encoding {other}")),
                }))
            }
        ),
        // ---- math ----
        scalar!("ABS", Math, 1..=1, "The absolute value.", numeric, |a, _| Ok(match &a[0] {
            Value::Int(i) => Value::Int(i.wrapping_abs()),
            Value::Bigint(i) => Value::Bigint(i.wrapping_abs()),
            Value::Double(d) => Value::Double(d.abs()),
            Value::Decimal(d) => Value::Decimal(Decimal { unscaled: d.unscaled.abs(), scale: d.scale }),
            _ => Value::Null,
        })),
        scalar!("CEIL", Math, 1..=1, "Rounds up.", numeric, |a, _| Ok(match &a[0] {
            Value::Double(d) => Value::Double(d.ceil()),
            Value::Decimal(d) => {
                let unit = 10i128.pow(u32::from(d.scale));
                Value::Decimal(Decimal { unscaled: -(-d.unscaled).div_euclid(unit) * unit, scale: d.scale })
            }
            other => other.clone(),
        })),
        scalar!("FLOOR", Math, 1..=1, "Rounds down.", numeric, |a, _| Ok(match &a[0] {
            Value::Double(d) => Value::Double(d.floor()),
            Value::Decimal(d) => {
                let unit = 10i128.pow(u32::from(d.scale));
                Value::Decimal(Decimal { unscaled: d.unscaled.div_euclid(unit) * unit, scale: d.scale })
            }
            other => other.clone(),
        })),
        scalar!(
            "ROUND",
            Math,
            1..=2,
            "Rounds half up, to a number of decimal places.",
            |t| {
                let ty = numeric(t)?;
                Ok(match (ty, t.len()) {
                    (SqlType::Double, 1) => SqlType::Bigint,
                    (SqlType::Decimal { precision, .. }, 1) => SqlType::Decimal { precision, scale: 0 },
                    (ty, _) => ty,
                })
            },
            |a, result| {
                // As ksqlDB: Java's Math.round without places, BigDecimal's
                // HALF_UP with them.
                let places = a.get(1).map(int_arg).transpose()?.unwrap_or(0).clamp(0, 38) as u8;
                Ok(match (&a[0], result) {
                    (Value::Double(d), SqlType::Bigint) => Value::Bigint((d + 0.5).floor() as i64),
                    (Value::Double(d), _) => match Decimal::parse(&format!("{d}")).and_then(|x| x.rescale(places)) {
                        Some(rounded) => Value::Double(rounded.to_f64()),
                        None => Value::Double(*d),
                    },
                    (Value::Decimal(d), SqlType::Decimal { scale, .. }) => {
                        Value::Decimal(d.rescale(places).and_then(|r| r.rescale(*scale)).ok_or("decimal overflow")?)
                    }
                    (other, _) => other.clone(),
                })
            }
        ),
        scalar!("TRUNC", Math, 1..=2, "Truncates towards zero, to a number of decimal places.", numeric, |a, _| {
            let places = a.get(1).map(int_arg).transpose()?.unwrap_or(0) as i32;
            Ok(match &a[0] {
                Value::Double(d) => Value::Double((d * 10f64.powi(places)).trunc() / 10f64.powi(places)),
                other => other.clone(),
            })
        }),
        scalar!("SQRT", Math, 1..=1, "The square root.", returns_double, |a, _| Ok(Value::Double(f64_arg(&a[0])?.sqrt()))),
        scalar!("EXP", Math, 1..=1, "e to the power of the value.", returns_double, |a, _| Ok(Value::Double(f64_arg(&a[0])?.exp()))),
        scalar!("LN", Math, 1..=1, "The natural logarithm.", returns_double, |a, _| Ok(Value::Double(f64_arg(&a[0])?.ln()))),
        scalar!("LOG", Math, 1..=2, "The logarithm, natural or in a base (LOG(base, value)).", returns_double, |a, _| Ok(Value::Double(match a {
            [x] => f64_arg(x)?.ln(),
            [base, x] => f64_arg(x)?.ln() / f64_arg(base)?.ln(),
            _ => return Err("LOG takes 1 or 2 arguments".into()),
        }))),
        scalar!("POWER", Math, 2..=2, "A number to a power.", returns_double, |a, _| Ok(Value::Double(f64_arg(&a[0])?.powf(f64_arg(&a[1])?)))),
        scalar!("SIGN", Math, 1..=1, "-1, 0 or 1.", |t| numeric(t).map(|_| SqlType::Int), |a, _| {
            let x = f64_arg(&a[0])?;
            Ok(Value::Int(if x > 0.0 {
                1
            } else if x < 0.0 {
                -1
            } else {
                0
            }))
        }),
        scalar!("RANDOM", Math, 0..=0, "A random number in [0, 1).", |_| Ok(SqlType::Double), |_, _| Ok(Value::Double(
            f64::from(uuid::Uuid::new_v4().as_u128() as u32) / 4_294_967_296.0
        ))),
        scalar!(
            "GREATEST",
            Math,
            1..=64,
            "The largest argument; NULLs are ignored.",
            common_args,
            |a, result| {
                let best = a.iter().filter(|v| !v.is_null()).max_by(|x, y| x.compare(y).unwrap_or(std::cmp::Ordering::Equal));
                Ok(best.cloned().and_then(|v| v.widen_to(result)).unwrap_or(Value::Null))
            },
            nulls_pass
        ),
        scalar!(
            "LEAST",
            Math,
            1..=64,
            "The smallest argument; NULLs are ignored.",
            common_args,
            |a, result| {
                let best = a.iter().filter(|v| !v.is_null()).min_by(|x, y| x.compare(y).unwrap_or(std::cmp::Ordering::Equal));
                Ok(best.cloned().and_then(|v| v.widen_to(result)).unwrap_or(Value::Null))
            },
            nulls_pass
        ),
        // ---- dates and times ----
        scalar!(
            "UNIX_TIMESTAMP",
            DateTime,
            0..=1,
            "Milliseconds since the epoch: now, or of a timestamp.",
            |t| match t.first() {
                None | Some(SqlType::Timestamp) => Ok(SqlType::Bigint),
                Some(other) => Err(format!("expected TIMESTAMP, got {other}")),
            },
            |a, _| Ok(Value::Bigint(match a.first() {
                Some(Value::Timestamp(ms)) => *ms,
                _ => now_ms(),
            }))
        ),
        scalar!(
            "UNIX_DATE",
            DateTime,
            0..=1,
            "Days since the epoch: today, or of a date.",
            |t| match t.first() {
                None | Some(SqlType::Date) => Ok(SqlType::Int),
                Some(other) => Err(format!("expected DATE, got {other}")),
            },
            |a, _| Ok(Value::Int(match a.first() {
                Some(Value::Date(d)) => *d,
                _ => now_ms().div_euclid(86_400_000) as i32,
            }))
        ),
        scalar!(
            "FROM_UNIXTIME",
            DateTime,
            1..=1,
            "The timestamp of milliseconds since the epoch.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) { Ok(SqlType::Timestamp) } else { Err("expected BIGINT".into()) },
            |a, _| Ok(Value::Timestamp(int_arg(&a[0])?))
        ),
        scalar!(
            "FROM_DAYS",
            DateTime,
            1..=1,
            "The date of days since the epoch.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) { Ok(SqlType::Date) } else { Err("expected INT".into()) },
            |a, _| Ok(Value::Date(int_arg(&a[0])? as i32))
        ),
        scalar!(
            "TIMESTAMPTOSTRING",
            DateTime,
            2..=3,
            "Formats milliseconds since the epoch with a Java pattern.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) && t[1] == SqlType::String {
                Ok(SqlType::String)
            } else {
                Err("expected (BIGINT, STRING[, STRING])".into())
            },
            |a, _| Ok(Value::String(time::format_with_pattern(int_arg(&a[0])?, string_arg(&a[1])?)?))
        ),
        scalar!(
            "STRINGTOTIMESTAMP",
            DateTime,
            2..=3,
            "Parses a string with a Java pattern into milliseconds since the epoch.",
            |t| all_strings(t).map(|_| SqlType::Bigint),
            |a, _| Ok(Value::Bigint(time::parse_with_pattern(string_arg(&a[0])?, string_arg(&a[1])?)?))
        ),
        scalar!(
            "FORMAT_TIMESTAMP",
            DateTime,
            2..=3,
            "Formats a timestamp with a Java pattern.",
            |t| if t[0] == SqlType::Timestamp && t[1] == SqlType::String { Ok(SqlType::String) } else { Err("expected (TIMESTAMP, STRING[, STRING])".into()) },
            |a, _| {
                let Value::Timestamp(ms) = a[0] else { return Ok(Value::Null) };
                Ok(Value::String(time::format_with_pattern(ms, string_arg(&a[1])?)?))
            }
        ),
        scalar!(
            "PARSE_TIMESTAMP",
            DateTime,
            2..=3,
            "Parses a string with a Java pattern into a timestamp.",
            |t| all_strings(t).map(|_| SqlType::Timestamp),
            |a, _| Ok(Value::Timestamp(time::parse_with_pattern(string_arg(&a[0])?, string_arg(&a[1])?)?))
        ),
        scalar!(
            "FORMAT_DATE",
            DateTime,
            2..=2,
            "Formats a date with a Java pattern.",
            |t| if t[0] == SqlType::Date && t[1] == SqlType::String { Ok(SqlType::String) } else { Err("expected (DATE, STRING)".into()) },
            |a, _| {
                let Value::Date(days) = a[0] else { return Ok(Value::Null) };
                Ok(Value::String(time::format_with_pattern(i64::from(days) * 86_400_000, string_arg(&a[1])?)?))
            }
        ),
        scalar!("PARSE_DATE", DateTime, 2..=2, "Parses a string with a Java pattern into a date.", |t| all_strings(t).map(|_| SqlType::Date), |a, _| Ok(
            Value::Date(time::parse_with_pattern(string_arg(&a[0])?, string_arg(&a[1])?)?.div_euclid(86_400_000) as i32)
        )),
        scalar!(
            "FORMAT_TIME",
            DateTime,
            2..=2,
            "Formats a time with a Java pattern.",
            |t| if t[0] == SqlType::Time && t[1] == SqlType::String { Ok(SqlType::String) } else { Err("expected (TIME, STRING)".into()) },
            |a, _| {
                let Value::Time(ms) = a[0] else { return Ok(Value::Null) };
                Ok(Value::String(time::format_with_pattern(ms, string_arg(&a[1])?)?))
            }
        ),
        scalar!("PARSE_TIME", DateTime, 2..=2, "Parses a string with a Java pattern into a time.", |t| all_strings(t).map(|_| SqlType::Time), |a, _| Ok(
            Value::Time(time::parse_with_pattern(string_arg(&a[0])?, string_arg(&a[1])?)?.rem_euclid(86_400_000))
        )),
        scalar!(
            "DATETOSTRING",
            DateTime,
            2..=2,
            "Formats days since the epoch with a Java pattern.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) && t[1] == SqlType::String {
                Ok(SqlType::String)
            } else {
                Err("expected (INT, STRING)".into())
            },
            |a, _| Ok(Value::String(time::format_with_pattern(int_arg(&a[0])? * 86_400_000, string_arg(&a[1])?)?))
        ),
        scalar!(
            "STRINGTODATE",
            DateTime,
            2..=2,
            "Parses a string with a Java pattern into days since the epoch.",
            |t| all_strings(t).map(|_| SqlType::Int),
            |a, _| Ok(Value::Int(time::parse_with_pattern(string_arg(&a[0])?, string_arg(&a[1])?)?.div_euclid(86_400_000) as i32))
        ),
        scalar!("TIMESTAMPADD", DateTime, 3..=3, "Adds an amount of a unit (SECONDS, ...) to a timestamp.", |t| shifted_type(t, SqlType::Timestamp), |a, _| {
            shift(a, 1)
        }),
        scalar!("TIMESTAMPSUB", DateTime, 3..=3, "Subtracts an amount of a unit from a timestamp.", |t| shifted_type(t, SqlType::Timestamp), |a, _| shift(
            a, -1
        )),
        scalar!("DATEADD", DateTime, 3..=3, "Adds an amount of a unit (DAYS, ...) to a date.", |t| shifted_type(t, SqlType::Date), |a, _| shift(a, 1)),
        scalar!("DATESUB", DateTime, 3..=3, "Subtracts an amount of a unit from a date.", |t| shifted_type(t, SqlType::Date), |a, _| shift(a, -1)),
        // ---- JSON ----
        scalar!("EXTRACTJSONFIELD", Json, 2..=2, "The value at a JSON path ($.a.b[0]) of a JSON string, as a string.", returns_string, |a, _| {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(string_arg(&a[0])?) else { return Ok(Value::Null) };
            Ok(match json_path_get(&json, string_arg(&a[1])?) {
                None | Some(serde_json::Value::Null) => Value::Null,
                Some(serde_json::Value::String(s)) => Value::String(s.clone()),
                Some(other) => Value::String(other.to_string()),
            })
        }),
        scalar!("JSON_ARRAY_LENGTH", Json, 1..=1, "The length of a JSON array string.", |t| returns_string(t).map(|_| SqlType::Int), |a, _| Ok(
            match serde_json::from_str::<serde_json::Value>(string_arg(&a[0])?) {
                Ok(serde_json::Value::Array(items)) => Value::Int(items.len() as i32),
                _ => Value::Null,
            }
        )),
        scalar!("IS_JSON_STRING", Json, 1..=1, "Whether a string is valid JSON.", |t| returns_string(t).map(|_| SqlType::Boolean), |a, _| Ok(Value::Boolean(
            serde_json::from_str::<serde_json::Value>(string_arg(&a[0])?).is_ok()
        ))),
        scalar!(
            "JSON_KEYS",
            Json,
            1..=1,
            "The keys of a JSON object string, in order.",
            |t| returns_string(t).map(|_| SqlType::Array(Box::new(SqlType::String))),
            |a, _| Ok(json_object_keys(string_arg(&a[0])?).map_or(Value::Null, |keys| Value::Array(keys.into_iter().map(Value::String).collect())))
        ),
        scalar!(
            "TO_JSON_STRING",
            Json,
            1..=1,
            "Any value as a JSON string.",
            |_| Ok(SqlType::String),
            |a, _| {
                let mut out = String::new();
                write_json(&a[0], &mut out);
                Ok(Value::String(out))
            },
            nulls_pass
        ),
        // ---- arrays and maps ----
        scalar!("ARRAY_LENGTH", Collections, 1..=1, "The number of items of an array.", |t| array_item(t).map(|_| SqlType::Int), |a, _| Ok(match &a[0] {
            Value::Array(items) => Value::Int(items.len() as i32),
            _ => Value::Null,
        })),
        scalar!("ARRAY_CONTAINS", Collections, 2..=2, "Whether an array holds a value.", |t| array_item(t).map(|_| SqlType::Boolean), |a, _| Ok(match &a[0] {
            Value::Array(items) => Value::Boolean(items.iter().any(|v| v.equals(&a[1]))),
            _ => Value::Null,
        })),
        scalar!("ARRAY_DISTINCT", Collections, 1..=1, "An array without repeats, in order.", same_array, |a, _| Ok(match &a[0] {
            Value::Array(items) => Value::Array(distinct(items.clone())),
            _ => Value::Null,
        })),
        scalar!("ARRAY_MAX", Collections, 1..=1, "The largest non-NULL item.", array_item, |a, _| Ok(match &a[0] {
            Value::Array(items) =>
                items.iter().filter(|v| !v.is_null()).max_by(|x, y| x.compare(y).unwrap_or(std::cmp::Ordering::Equal)).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        })),
        scalar!("ARRAY_MIN", Collections, 1..=1, "The smallest non-NULL item.", array_item, |a, _| Ok(match &a[0] {
            Value::Array(items) =>
                items.iter().filter(|v| !v.is_null()).min_by(|x, y| x.compare(y).unwrap_or(std::cmp::Ordering::Equal)).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        })),
        scalar!("ARRAY_SORT", Collections, 1..=2, "An array sorted, ASC or DESC; NULLs last.", same_array, |a, _| Ok(match &a[0] {
            Value::Array(items) => {
                let mut items = items.clone();
                let descending = a.get(1).and_then(Value::as_str).is_some_and(|d| d.eq_ignore_ascii_case("DESC"));
                sort_values(&mut items, descending);
                Value::Array(items)
            }
            _ => Value::Null,
        })),
        scalar!(
            "ARRAY_JOIN",
            Collections,
            1..=2,
            "An array's items joined into a string, with a delimiter (default ',').",
            |t| array_item(t).map(|_| SqlType::String),
            |a, _| Ok(match &a[0] {
                Value::Array(items) => Value::String(
                    items.iter().filter(|v| !v.is_null()).map(|v| v.to_string()).collect::<Vec<_>>().join(a.get(1).and_then(Value::as_str).unwrap_or(","))
                ),
                _ => Value::Null,
            })
        ),
        scalar!(
            "ARRAY_REMOVE",
            Collections,
            2..=2,
            "An array without a value.",
            same_array,
            |a, _| Ok(match &a[0] {
                Value::Array(items) => Value::Array(items.iter().filter(|v| !(v.equals(&a[1]) || v.is_null() && a[1].is_null())).cloned().collect()),
                _ => Value::Null,
            }),
            nulls_pass
        ),
        scalar!("ARRAY_UNION", Collections, 2..=2, "The distinct items of two arrays.", same_array, |a, _| Ok(match (&a[0], &a[1]) {
            (Value::Array(x), Value::Array(y)) => Value::Array(distinct([x.clone(), y.clone()].concat())),
            _ => Value::Null,
        })),
        scalar!("ARRAY_INTERSECT", Collections, 2..=2, "The distinct items in both arrays.", same_array, |a, _| Ok(match (&a[0], &a[1]) {
            (Value::Array(x), Value::Array(y)) => Value::Array(distinct(x.iter().filter(|v| y.contains(v)).cloned().collect())),
            _ => Value::Null,
        })),
        scalar!("ARRAY_EXCEPT", Collections, 2..=2, "The distinct items of the first array not in the second.", same_array, |a, _| Ok(match (&a[0], &a[1]) {
            (Value::Array(x), Value::Array(y)) => Value::Array(distinct(x.iter().filter(|v| !y.contains(v)).cloned().collect())),
            _ => Value::Null,
        })),
        scalar!("SLICE", Collections, 3..=3, "The items from one 1-based position to another, inclusive.", same_array, |a, _| Ok(match &a[0] {
            Value::Array(items) => {
                let (from, to) = (int_arg(&a[1])?.max(1) as usize, (int_arg(&a[2])?.max(0) as usize).min(items.len()));
                Value::Array(if from > to { Vec::new() } else { items[from - 1..to].to_vec() })
            }
            _ => Value::Null,
        })),
        scalar!(
            "GENERATE_SERIES",
            Collections,
            2..=3,
            "The integers from one value to another, by a step.",
            |t| {
                let ty = common_args(t)?;
                if matches!(ty, SqlType::Int | SqlType::Bigint) {
                    Ok(SqlType::Array(Box::new(ty)))
                } else {
                    Err("expected integers".into())
                }
            },
            |a, result| {
                let (from, to, step) =
                    (int_arg(&a[0])?, int_arg(&a[1])?, a.get(2).map(int_arg).transpose()?.unwrap_or(if int_arg(&a[1])? >= int_arg(&a[0])? { 1 } else { -1 }));
                let span = to.checked_sub(from).ok_or("GENERATE_SERIES: the range is too large")?;
                if step == 0 || span.signum() * step.signum() < 0 || span / step > 100_000 {
                    return Err("GENERATE_SERIES: the step must move from the start towards the end, in at most 100000 steps".into());
                }
                let int = *result == SqlType::Array(Box::new(SqlType::Int));
                Ok(Value::Array((0..=(to - from) / step).map(|i| from + i * step).map(|n| if int { Value::Int(n as i32) } else { Value::Bigint(n) }).collect()))
            }
        ),
        scalar!(
            "MAP_KEYS",
            Collections,
            1..=1,
            "The keys of a map.",
            |t| match &t[0] {
                SqlType::Map(key, _) => Ok(SqlType::Array(key.clone())),
                other => Err(format!("expected a MAP, got {other}")),
            },
            |a, _| Ok(match &a[0] {
                Value::Map(entries) => Value::Array(entries.iter().map(|(k, _)| k.clone()).collect()),
                _ => Value::Null,
            })
        ),
        scalar!(
            "MAP_VALUES",
            Collections,
            1..=1,
            "The values of a map.",
            |t| match &t[0] {
                SqlType::Map(_, value) => Ok(SqlType::Array(value.clone())),
                other => Err(format!("expected a MAP, got {other}")),
            },
            |a, _| Ok(match &a[0] {
                Value::Map(entries) => Value::Array(entries.iter().map(|(_, v)| v.clone()).collect()),
                _ => Value::Null,
            })
        ),
        scalar!(
            "AS_MAP",
            Collections,
            2..=2,
            "A map of an array of keys and an array of values.",
            |t| match (&t[0], &t[1]) {
                (SqlType::Array(k), SqlType::Array(v)) => Ok(SqlType::Map(k.clone(), v.clone())),
                _ => Err("expected (ARRAY, ARRAY)".into()),
            },
            |a, _| Ok(match (&a[0], &a[1]) {
                (Value::Array(keys), Value::Array(values)) => Value::Map(keys.iter().cloned().zip(values.iter().cloned()).collect()),
                _ => Value::Null,
            })
        ),
        // ---- conditionals ----
        scalar!(
            "COALESCE",
            Conditional,
            1..=64,
            "The first non-NULL argument.",
            common_args,
            |a, result| Ok(a.iter().find(|v| !v.is_null()).cloned().and_then(|v| v.widen_to(result)).unwrap_or(Value::Null)),
            nulls_pass
        ),
        scalar!(
            "IFNULL",
            Conditional,
            2..=2,
            "The first argument, or the second if it is NULL.",
            common_args,
            |a, result| Ok(if a[0].is_null() { a[1].clone() } else { a[0].clone() }.widen_to(result).unwrap_or(Value::Null)),
            nulls_pass
        ),
        scalar!(
            "NULLIF",
            Conditional,
            2..=2,
            "NULL if the arguments are equal, else the first.",
            common_args,
            |a, result| Ok(if !a[0].is_null() && a[0].equals(&a[1]) { Value::Null } else { a[0].clone().widen_to(result).unwrap_or(Value::Null) }),
            nulls_pass
        ),
        scalar!(
            "ELT",
            Conditional,
            2..=64,
            "The nth of the following strings (1-based), or NULL.",
            |t| if matches!(t[0], SqlType::Int | SqlType::Bigint) {
                all_strings(&t[1..]).map(|_| SqlType::String)
            } else {
                Err("expected (INT, STRING...)".into())
            },
            |a, _| {
                let n = a[0].as_i64().unwrap_or(0);
                Ok(usize::try_from(n).ok().filter(|n| *n >= 1).and_then(|n| a.get(n)).cloned().unwrap_or(Value::Null))
            },
            nulls_pass
        ),
        scalar!(
            "FIELD",
            Conditional,
            2..=64,
            "The 1-based position of the first string among the rest, or 0.",
            |t| all_strings(t).map(|_| SqlType::Int),
            |a, _| Ok(Value::Int(if a[0].is_null() { 0 } else { a[1..].iter().position(|v| v == &a[0]).map_or(0, |p| p as i32 + 1) })),
            nulls_pass
        ),
        // ---- other ----
        scalar!("CAST_TO_STRING", Other, 1..=1, "A value as text (what CAST(x AS STRING) gives).", |_| Ok(SqlType::String), |a, _| cast(
            a[0].clone(),
            &SqlType::String
        )),
        scalar!("DOUBLE_TO_STRING", Other, 1..=1, "A double as Java prints it.", returns_double_string, |a, _| Ok(Value::String(format_double(f64_arg(
            &a[0]
        )?)))),
    ]
});

fn returns_string_to_bytes(args: &[SqlType]) -> Result<SqlType, String> {
    all_strings(args).map(|_| SqlType::Bytes)
}

fn returns_double_string(args: &[SqlType]) -> Result<SqlType, String> {
    numeric(args).map(|_| SqlType::String)
}

/// `TIMESTAMPADD`'s and `DATEADD`'s arguments: a unit, an amount, and the
/// timestamp or date to move, whose type the result has.
fn shifted_type(args: &[SqlType], moved: SqlType) -> Result<SqlType, String> {
    if args[2] == moved && matches!(args[1], SqlType::Int | SqlType::Bigint) {
        Ok(moved)
    } else {
        Err(format!("expected (unit, INT, {moved})"))
    }
}

/// A timestamp or date (the third argument) moved by an amount (second)
/// of a unit (first), forwards (`sign` 1) or back (-1).
fn shift(a: &[Value], sign: i64) -> Result<Value, String> {
    let span = span_ms(&a[1], &a[0])?.checked_mul(sign).ok_or("the interval is too long")?;
    match a[2] {
        Value::Timestamp(ms) => Ok(Value::Timestamp(ms.checked_add(span).ok_or("the timestamp is out of range")?)),
        Value::Date(days) => Ok(Value::Date(i32::try_from(i64::from(days) + span / 86_400_000).map_err(|_| "the date is out of range")?)),
        _ => Ok(Value::Null),
    }
}

/// `amount` of `unit` in milliseconds, refusing overflow.
fn span_ms(amount: &Value, unit: &Value) -> Result<i64, String> {
    int_arg(amount)?.checked_mul(unit_ms(string_arg(unit)?)?).ok_or_else(|| "the interval is too long".to_string())
}

fn unit_ms(unit: &str) -> Result<i64, String> {
    Ok(match unit.to_uppercase().trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => 86_400_000,
        other => return Err(format!("unknown time unit {other}")),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_there_are_enough() {
        let mut names: Vec<&str> = SCALARS.iter().map(|s| s.name).chain(AGGREGATES.iter().map(|(n, _)| *n)).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a function is listed twice");
        assert!(SCALARS.len() + 3 >= 60, "{} scalar functions (with CAST, CASE and the lambda functions)", SCALARS.len());
    }

    #[test]
    fn base64_round_trips() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\x00\x10"] {
            assert_eq!(base64_decode(&base64_encode(bytes)).unwrap(), bytes);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn substrings_count_from_one_and_from_the_end() {
        assert_eq!(substring("runnel", 2, Some(3)), "unn");
        assert_eq!(substring("runnel", -3, None), "nel");
        assert_eq!(substring("runnel", 10, None), "");
    }
}
