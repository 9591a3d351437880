//! Runs `cases/expressions.txt`: each case's type and value, or its
//! error, must be as written. Every mismatch is reported at once.

use runnel_sql::eval::{compile, Eval, Scope};
use runnel_sql::parser::parse_expression;

/// What evaluating `text` on no row gives: `TYPE value`, or `!! error`.
fn outcome(text: &str) -> String {
    let compiled = parse_expression(text).and_then(|expr| compile(&expr, &Scope::default()));
    match compiled {
        Ok(compiled) => {
            let value = compiled.eval(&[], &mut Eval::default());
            format!("=> {} {value}", compiled.sql_type)
        }
        Err(e) => format!("!! {e}"),
    }
}

#[test]
fn every_expression_case_gives_its_type_and_value_or_its_error() {
    let cases = include_str!("cases/expressions.txt");
    let mut failures = Vec::new();
    let mut count = 0;
    for (number, line) in cases.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        // Split at the last separator: lambdas contain " => " too.
        let (text, expected) = match (line.rsplit_once(" !! "), line.rsplit_once(" => ")) {
            (Some((text, error)), _) => (text, format!("!! {error}")),
            (None, Some((text, value))) => (text, format!("=> {value}")),
            _ => panic!("line {}: a case is `expression => TYPE value` or `expression !! error`", number + 1),
        };
        count += 1;
        let got = outcome(text);
        if got != expected {
            failures.push(format!("line {}: {text}\n    expected {expected}\n    got      {got}", number + 1));
        }
    }
    assert!(count >= 200, "only {count} cases");
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), failures.join("\n"));
}
