//! The dialect's types.

use std::fmt;

/// A column's or expression's type; the variants are the SQL types of
/// the same names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum SqlType {
    Boolean,
    Int,
    Bigint,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    String,
    Bytes,
    Date,
    Time,
    Timestamp,
    Array(Box<SqlType>),
    /// ksqlDB's maps: keys of any primitive type, usually `STRING`.
    Map(Box<SqlType>, Box<SqlType>),
    Struct(Vec<(String, SqlType)>),
}

impl SqlType {
    /// Whether values of the type are numbers.
    pub fn is_numeric(&self) -> bool {
        matches!(self, SqlType::Int | SqlType::Bigint | SqlType::Double | SqlType::Decimal { .. })
    }

    /// The type a number of each of two numeric types widens to
    /// (`INT` < `BIGINT` < `DECIMAL` < `DOUBLE`).
    pub fn widest(a: &SqlType, b: &SqlType) -> Option<SqlType> {
        use SqlType::*;
        Some(match (a, b) {
            (Int, Int) => Int,
            (Int | Bigint, Int | Bigint) => Bigint,
            (Double, _) | (_, Double) => Double,
            (Decimal { precision: p1, scale: s1 }, Decimal { precision: p2, scale: s2 }) => {
                let scale = (*s1).max(*s2);
                let whole = (p1 - s1).max(p2 - s2);
                Decimal { precision: (whole + scale).min(38), scale }
            }
            (Decimal { precision, scale }, Int) | (Int, Decimal { precision, scale }) => {
                Decimal { precision: (*precision).max(10 + scale).min(38), scale: *scale }
            }
            (Decimal { precision, scale }, Bigint) | (Bigint, Decimal { precision, scale }) => {
                Decimal { precision: (*precision).max(19 + scale).min(38), scale: *scale }
            }
            _ => return None,
        })
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => f.write_str("BOOLEAN"),
            SqlType::Int => f.write_str("INTEGER"),
            SqlType::Bigint => f.write_str("BIGINT"),
            SqlType::Double => f.write_str("DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::String => f.write_str("STRING"),
            SqlType::Bytes => f.write_str("BYTES"),
            SqlType::Date => f.write_str("DATE"),
            SqlType::Time => f.write_str("TIME"),
            SqlType::Timestamp => f.write_str("TIMESTAMP"),
            SqlType::Array(item) => write!(f, "ARRAY<{item}>"),
            SqlType::Map(key, value) => write!(f, "MAP<{key}, {value}>"),
            SqlType::Struct(fields) => {
                f.write_str("STRUCT<")?;
                for (i, (name, ty)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "`{name}` {ty}")?;
                }
                f.write_str(">")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_print_as_ksqldb_describes_them() {
        let ty = SqlType::Struct(vec![("zone".into(), SqlType::Int), ("tags".into(), SqlType::Array(Box::new(SqlType::String)))]);
        assert_eq!(ty.to_string(), "STRUCT<`zone` INTEGER, `tags` ARRAY<STRING>>");
        assert_eq!(SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::Decimal { precision: 10, scale: 2 })).to_string(), "MAP<STRING, DECIMAL(10, 2)>");
    }

    #[test]
    fn numbers_widen() {
        assert_eq!(SqlType::widest(&SqlType::Int, &SqlType::Bigint), Some(SqlType::Bigint));
        assert_eq!(SqlType::widest(&SqlType::Bigint, &SqlType::Double), Some(SqlType::Double));
        assert_eq!(
            SqlType::widest(&SqlType::Decimal { precision: 4, scale: 2 }, &SqlType::Decimal { precision: 5, scale: 1 }),
            Some(SqlType::Decimal { precision: 6, scale: 2 })
        );
        assert_eq!(SqlType::widest(&SqlType::String, &SqlType::Int), None);
    }
}
