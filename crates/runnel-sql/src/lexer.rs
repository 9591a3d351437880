//! Tokens of the ksqlDB dialect, each with the line and column it starts
//! at, so every parse error can say where it is.
//!
//! Unquoted identifiers and keywords are upper-cased, as ksqlDB does;
//! back-quoted identifiers keep their case. String literals are
//! single-quoted, with `''` for a quote.

use std::fmt;

use crate::error::{Position, SqlError};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A keyword or an unquoted identifier, upper-cased.
    Word(String),
    /// A back-quoted identifier, as written.
    Quoted(String),
    /// A string literal, unescaped.
    String(String),
    /// A number as written: digits, with a decimal point or an exponent.
    Number(String),
    /// Punctuation or an operator.
    Symbol(&'static str),
    /// A `${name}` variable reference.
    Variable(String),
    /// The end of the input.
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) => write!(f, "'{w}'"),
            Token::Quoted(q) => write!(f, "'`{q}`'"),
            Token::String(s) => write!(f, "'''{s}'''"),
            Token::Number(n) => write!(f, "'{n}'"),
            Token::Symbol(s) => write!(f, "'{s}'"),
            Token::Variable(v) => write!(f, "'${{{v}}}'"),
            Token::End => write!(f, "<EOF>"),
        }
    }
}

/// A token and where it starts; `offset` is its byte offset, so a
/// statement's text can be cut out of a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    /// The token.
    pub token: Token,
    /// Where it starts.
    pub at: Position,
    /// The byte offset where it starts.
    pub offset: usize,
}

/// Operators and punctuation, longest first so `<=` wins over `<`.
const SYMBOLS: [&str; 24] = ["=>", "->", "<=", ">=", "<>", "!=", ":=", "||", "(", ")", ",", ";", ".", "*", "/", "%", "+", "-", "<", ">", "=", "[", "]", ":"];

/// Splits `text` into tokens, ending with [`Token::End`].
pub fn tokenize(text: &str) -> Result<Vec<Spanned>, SqlError> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let (mut i, mut line, mut column) = (0usize, 1usize, 1usize);
    let advance = |i: &mut usize, line: &mut usize, column: &mut usize, n: usize| {
        for _ in 0..n {
            if chars.get(*i).is_some_and(|(_, c)| *c == '\n') {
                *line += 1;
                *column = 1;
            } else {
                *column += 1;
            }
            *i += 1;
        }
    };
    let rest_starts = |i: usize, s: &str| s.chars().enumerate().all(|(k, c)| chars.get(i + k).is_some_and(|(_, d)| *d == c));
    while i < chars.len() {
        let (offset, c) = chars[i];
        let at = Position { line, column };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut column, 1);
        } else if rest_starts(i, "--") {
            while i < chars.len() && chars[i].1 != '\n' {
                advance(&mut i, &mut line, &mut column, 1);
            }
        } else if rest_starts(i, "/*") {
            advance(&mut i, &mut line, &mut column, 2);
            while i < chars.len() && !rest_starts(i, "*/") {
                advance(&mut i, &mut line, &mut column, 1);
            }
            if i >= chars.len() {
                return Err(SqlError::parse(at, "the comment is not closed"));
            }
            advance(&mut i, &mut line, &mut column, 2);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].1.is_alphanumeric() || chars[i].1 == '_') {
                advance(&mut i, &mut line, &mut column, 1);
            }
            let word: String = chars[start..i].iter().map(|(_, c)| c).collect();
            tokens.push(Spanned { token: Token::Word(word.to_uppercase()), at, offset });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].1.is_ascii_digit() {
                advance(&mut i, &mut line, &mut column, 1);
            }
            if i < chars.len() && chars[i].1 == '.' && chars.get(i + 1).is_some_and(|(_, d)| d.is_ascii_digit()) {
                advance(&mut i, &mut line, &mut column, 1);
                while i < chars.len() && chars[i].1.is_ascii_digit() {
                    advance(&mut i, &mut line, &mut column, 1);
                }
            }
            if i < chars.len() && matches!(chars[i].1, 'e' | 'E') {
                let sign = usize::from(chars.get(i + 1).is_some_and(|(_, d)| matches!(d, '+' | '-')));
                if chars.get(i + 1 + sign).is_some_and(|(_, d)| d.is_ascii_digit()) {
                    advance(&mut i, &mut line, &mut column, 1 + sign);
                    while i < chars.len() && chars[i].1.is_ascii_digit() {
                        advance(&mut i, &mut line, &mut column, 1);
                    }
                }
            }
            let number: String = chars[start..i].iter().map(|(_, c)| c).collect();
            tokens.push(Spanned { token: Token::Number(number), at, offset });
        } else if c == '\'' || c == '`' || c == '"' {
            let quote = c;
            advance(&mut i, &mut line, &mut column, 1);
            let mut value = String::new();
            loop {
                let Some((_, d)) = chars.get(i) else {
                    let what = if quote == '\'' { "the string" } else { "the quoted identifier" };
                    return Err(SqlError::parse(at, &format!("{what} is not closed")));
                };
                if *d == quote {
                    if chars.get(i + 1).is_some_and(|(_, e)| *e == quote) {
                        value.push(quote);
                        advance(&mut i, &mut line, &mut column, 2);
                        continue;
                    }
                    advance(&mut i, &mut line, &mut column, 1);
                    break;
                }
                value.push(*d);
                advance(&mut i, &mut line, &mut column, 1);
            }
            let token = if quote == '\'' { Token::String(value) } else { Token::Quoted(value) };
            tokens.push(Spanned { token, at, offset });
        } else if rest_starts(i, "${") {
            advance(&mut i, &mut line, &mut column, 2);
            let start = i;
            while i < chars.len() && chars[i].1 != '}' {
                advance(&mut i, &mut line, &mut column, 1);
            }
            if i >= chars.len() {
                return Err(SqlError::parse(at, "the variable reference is not closed"));
            }
            let name: String = chars[start..i].iter().map(|(_, c)| c).collect();
            advance(&mut i, &mut line, &mut column, 1);
            tokens.push(Spanned { token: Token::Variable(name), at, offset });
        } else if let Some(symbol) = SYMBOLS.iter().find(|s| rest_starts(i, s)) {
            advance(&mut i, &mut line, &mut column, symbol.chars().count());
            tokens.push(Spanned { token: Token::Symbol(symbol), at, offset });
        } else {
            return Err(SqlError::parse(at, &format!("unexpected character '{c}'")));
        }
    }
    tokens.push(Spanned { token: Token::End, at: Position { line, column }, offset: text.len() });
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Token> {
        tokenize(text).unwrap().into_iter().map(|t| t.token).collect()
    }

    #[test]
    fn words_are_upper_cased_and_quoted_names_kept() {
        assert_eq!(
            kinds("select `VendorID`, fare_amount from rides;"),
            [
                Token::Word("SELECT".into()),
                Token::Quoted("VendorID".into()),
                Token::Symbol(","),
                Token::Word("FARE_AMOUNT".into()),
                Token::Word("FROM".into()),
                Token::Word("RIDES".into()),
                Token::Symbol(";"),
                Token::End
            ]
        );
    }

    #[test]
    fn literals_operators_and_comments() {
        assert_eq!(
            kinds("x >= 1.5e3 -- note\n AND s = 'it''s' /* c */ || a->b"),
            [
                Token::Word("X".into()),
                Token::Symbol(">="),
                Token::Number("1.5e3".into()),
                Token::Word("AND".into()),
                Token::Word("S".into()),
                Token::Symbol("="),
                Token::String("it's".into()),
                Token::Symbol("||"),
                Token::Word("A".into()),
                Token::Symbol("->"),
                Token::Word("B".into()),
                Token::End
            ]
        );
    }

    #[test]
    fn positions_count_lines_and_columns() {
        let tokens = tokenize("SELECT *\n  FROM rides").unwrap();
        assert_eq!(tokens[2].at, Position { line: 2, column: 3 });
        assert_eq!(tokens[2].offset, 11);
    }

    #[test]
    fn unclosed_strings_and_strange_characters_are_errors() {
        assert_eq!(tokenize("SELECT 'abc").unwrap_err().to_string(), "line 1:8: the string is not closed");
        assert_eq!(tokenize("SELECT #").unwrap_err().to_string(), "line 1:8: unexpected character '#'");
    }
}
