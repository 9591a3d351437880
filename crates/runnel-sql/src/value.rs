//! Values of the dialect's types, as rows carry them.

use std::cmp::Ordering;
use std::fmt;

use crate::types::SqlType;

/// A decimal: an unscaled integer and a scale (`123` with scale 2 is
/// `1.23`), as Kafka Connect's and ksqlDB's decimals are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits, as an integer.
    pub unscaled: i128,
    /// How many of the digits are after the point.
    pub scale: u8,
}

impl Decimal {
    /// Parses `-12.340` as unscaled -12340, scale 3.
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) || fraction.len() > 38 {
            return None;
        }
        let unscaled: i128 = format!("{whole}{fraction}").parse().ok()?;
        Some(Decimal { unscaled: if negative { -unscaled } else { unscaled }, scale: fraction.len() as u8 })
    }

    /// The same value at another scale, rounding half up (away from
    /// zero) when digits are dropped.
    pub fn rescale(self, scale: u8) -> Option<Decimal> {
        let unscaled = match scale.cmp(&self.scale) {
            Ordering::Equal => self.unscaled,
            Ordering::Greater => self.unscaled.checked_mul(10i128.checked_pow(u32::from(scale - self.scale))?)?,
            Ordering::Less => {
                let divisor = 10i128.checked_pow(u32::from(self.scale - scale))?;
                let (quotient, remainder) = (self.unscaled / divisor, self.unscaled % divisor);
                if remainder.abs() * 2 >= divisor {
                    quotient + self.unscaled.signum()
                } else {
                    quotient
                }
            }
        };
        Some(Decimal { unscaled, scale })
    }

    /// Whether the value has at most `precision` digits at its scale.
    pub fn fits(self, precision: u8) -> bool {
        self.unscaled.unsigned_abs() < 10u128.pow(u32::from(precision))
    }

    /// The nearest double.
    pub fn to_f64(self) -> f64 {
        self.unscaled as f64 / 10f64.powi(i32::from(self.scale))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.unscaled.unsigned_abs().to_string();
        let sign = if self.unscaled < 0 { "-" } else { "" };
        let scale = usize::from(self.scale);
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

/// A value. `Null` is SQL's NULL, of any type; the other variants hold
/// values of the SQL types of the same names.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum Value {
    Null,
    Boolean(bool),
    Int(i32),
    Bigint(i64),
    Double(f64),
    Decimal(Decimal),
    String(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since midnight.
    Time(i64),
    /// Milliseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
    Array(Vec<Value>),
    /// Entries in insertion order; keys are unique.
    Map(Vec<(Value, Value)>),
    /// Fields in the struct type's order.
    Struct(Vec<(String, Value)>),
}

impl Value {
    /// Whether it is NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a boolean condition: only `TRUE` passes.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Boolean(true))
    }

    /// A whole number as i64 (`INT` and `BIGINT`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(i64::from(*i)),
            Value::Bigint(i) => Some(*i),
            _ => None,
        }
    }

    /// Any number as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(f64::from(*i)),
            Value::Bigint(i) => Some(*i as f64),
            Value::Double(d) => Some(*d),
            Value::Decimal(d) => Some(d.to_f64()),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Compares two non-null values of comparable types (numbers with
    /// numbers, strings with strings, and so on); `None` if they are not.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Int(_) | Bigint(_), Int(_) | Bigint(_)) => Some(self.as_i64()?.cmp(&other.as_i64()?)),
            (Decimal(a), Decimal(b)) => {
                let scale = a.scale.max(b.scale);
                Some(a.rescale(scale)?.unscaled.cmp(&b.rescale(scale)?.unscaled))
            }
            (Decimal(a), Int(_) | Bigint(_)) => Some(a.unscaled.cmp(&(i128::from(other.as_i64()?) * 10i128.pow(u32::from(a.scale))))),
            (Int(_) | Bigint(_), Decimal(_)) => other.compare(self).map(Ordering::reverse),
            (Int(_) | Bigint(_) | Double(_) | Decimal(_), Int(_) | Bigint(_) | Double(_) | Decimal(_)) => self.as_f64()?.partial_cmp(&other.as_f64()?),
            (String(a), String(b)) => Some(a.cmp(b)),
            (Boolean(a), Boolean(b)) => Some(a.cmp(b)),
            (Bytes(a), Bytes(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Time(a), Time(b)) | (Timestamp(a), Timestamp(b)) => Some(a.cmp(b)),
            (Array(a), Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    match x.compare(y)? {
                        Ordering::Equal => {}
                        unequal => return Some(unequal),
                    }
                }
                Some(a.len().cmp(&b.len()))
            }
            _ => None,
        }
    }

    /// SQL equality of two non-null values, numbers across types.
    pub fn equals(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Map(_), Value::Map(_)) | (Value::Struct(_), Value::Struct(_)) => self == other,
            _ => self.compare(other) == Some(Ordering::Equal),
        }
    }

    /// The value in `ty`, if it is of a type that widens to it without
    /// loss (an `INT` in a `BIGINT` column, say); `Null` stays `Null`.
    pub fn widen_to(self, ty: &SqlType) -> Option<Value> {
        Some(match (self, ty) {
            (Value::Null, _) => Value::Null,
            (Value::Int(i), SqlType::Bigint) => Value::Bigint(i64::from(i)),
            (Value::Int(i), SqlType::Double) => Value::Double(f64::from(i)),
            (Value::Bigint(i), SqlType::Double) => Value::Double(i as f64),
            (Value::Int(i), SqlType::Decimal { precision, scale }) => fit_decimal(Decimal { unscaled: i128::from(i), scale: 0 }, *precision, *scale)?,
            (Value::Bigint(i), SqlType::Decimal { precision, scale }) => fit_decimal(Decimal { unscaled: i128::from(i), scale: 0 }, *precision, *scale)?,
            (Value::Decimal(d), SqlType::Decimal { precision, scale }) => fit_decimal(d, *precision, *scale)?,
            (Value::Decimal(d), SqlType::Double) => Value::Double(d.to_f64()),
            (Value::Array(items), SqlType::Array(item)) => Value::Array(items.into_iter().map(|v| v.widen_to(item)).collect::<Option<_>>()?),
            (Value::Map(entries), SqlType::Map(key, value)) => {
                Value::Map(entries.into_iter().map(|(k, v)| Some((k.widen_to(key)?, v.widen_to(value)?))).collect::<Option<_>>()?)
            }
            (v, ty) if v.fits(ty) => v,
            _ => return None,
        })
    }

    /// Whether the value is of type `ty` as it is.
    pub fn fits(&self, ty: &SqlType) -> bool {
        match (self, ty) {
            (Value::Null, _) => true,
            (Value::Boolean(_), SqlType::Boolean)
            | (Value::Int(_), SqlType::Int)
            | (Value::Bigint(_), SqlType::Bigint)
            | (Value::Double(_), SqlType::Double)
            | (Value::String(_), SqlType::String)
            | (Value::Bytes(_), SqlType::Bytes)
            | (Value::Date(_), SqlType::Date)
            | (Value::Time(_), SqlType::Time)
            | (Value::Timestamp(_), SqlType::Timestamp) => true,
            (Value::Decimal(d), SqlType::Decimal { precision, scale }) => d.scale == *scale && d.fits(*precision),
            (Value::Array(items), SqlType::Array(item)) => items.iter().all(|v| v.fits(item)),
            (Value::Map(entries), SqlType::Map(key, value)) => entries.iter().all(|(k, v)| k.fits(key) && v.fits(value)),
            (Value::Struct(fields), SqlType::Struct(types)) => {
                fields.len() == types.len() && fields.iter().zip(types).all(|((name, v), (ty_name, ty))| name == ty_name && v.fits(ty))
            }
            _ => false,
        }
    }
}

fn fit_decimal(d: Decimal, precision: u8, scale: u8) -> Option<Value> {
    let d = d.rescale(scale)?;
    d.fits(precision).then_some(Value::Decimal(d))
}

impl fmt::Display for Value {
    /// As ksqlDB's CLI shows values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Bigint(i) => write!(f, "{i}"),
            Value::Double(d) => f.write_str(&format_double(*d)),
            Value::Decimal(d) => write!(f, "{d}"),
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&crate::functions::base64_encode(b)),
            Value::Date(days) => f.write_str(&crate::time::format_date(*days)),
            Value::Time(ms) => f.write_str(&crate::time::format_time(*ms)),
            Value::Timestamp(ms) => f.write_str(&crate::time::format_timestamp(*ms)),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("}")
            }
            Value::Struct(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A double as Java prints it (`1.0`, `0.5`, `1.0E10`), which is what
/// ksqlDB's string conversions give.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let magnitude = d.abs();
    if d == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let text = format!("{d}");
        return if text.contains('.') { text } else { format!("{text}.0") };
    }
    let text = format!("{d:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
    format!("{mantissa}E{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_print_and_rescale() {
        let d = Decimal::parse("-12.340").unwrap();
        assert_eq!((d.unscaled, d.scale), (-12340, 3));
        assert_eq!(d.to_string(), "-12.340");
        assert_eq!(Decimal::parse("0.05").unwrap().to_string(), "0.05");
        assert_eq!(d.rescale(1).unwrap().to_string(), "-12.3");
        assert_eq!(Decimal::parse("2.25").unwrap().rescale(1).unwrap().to_string(), "2.3");
        assert_eq!(Decimal::parse("7").unwrap().rescale(2).unwrap().to_string(), "7.00");
        assert!(Decimal::parse("1.2.3").is_none() && Decimal::parse("").is_none() && Decimal::parse("x").is_none());
        assert!(!Decimal::parse("123.45").unwrap().fits(4));
    }

    #[test]
    fn numbers_compare_across_types() {
        assert_eq!(Value::Int(3).compare(&Value::Bigint(3)), Some(Ordering::Equal));
        assert_eq!(Value::Decimal(Decimal::parse("2.50").unwrap()).compare(&Value::Int(2)), Some(Ordering::Greater));
        assert_eq!(Value::Double(2.5).compare(&Value::Decimal(Decimal::parse("2.5").unwrap())), Some(Ordering::Equal));
        assert_eq!(Value::String("a".into()).compare(&Value::Int(1)), None);
        assert!(Value::Int(1).equals(&Value::Double(1.0)));
    }

    #[test]
    fn values_widen_to_wider_types_only() {
        assert_eq!(Value::Int(5).widen_to(&SqlType::Bigint), Some(Value::Bigint(5)));
        assert_eq!(Value::Int(5).widen_to(&SqlType::Decimal { precision: 4, scale: 2 }), Some(Value::Decimal(Decimal { unscaled: 500, scale: 2 })));
        assert_eq!(Value::Int(500).widen_to(&SqlType::Decimal { precision: 4, scale: 2 }), None);
        assert_eq!(Value::Double(1.5).widen_to(&SqlType::Int), None);
        assert_eq!(Value::Null.widen_to(&SqlType::Int), Some(Value::Null));
    }

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(format_double(1.0), "1.0");
        assert_eq!(format_double(0.5), "0.5");
        assert_eq!(format_double(52.0), "52.0");
        assert_eq!(format_double(1e10), "1.0E10");
        assert_eq!(format_double(1.5e-5), "1.5E-5");
        assert_eq!(format_double(-3.25), "-3.25");
    }
}
