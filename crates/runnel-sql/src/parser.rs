//! A recursive-descent parser for the ksqlDB dialect. It is written by
//! hand because the dialect is the product: its errors name the line and
//! column and what was expected there, as ksqlDB's do.

use crate::ast::*;
use crate::error::{Position, SqlError};
use crate::lexer::{tokenize, Spanned, Token};
use crate::types::SqlType;

/// Words that end an expression or a clause, so they cannot be aliases
/// written without `AS`.
const RESERVED: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "HAVING",
    "EMIT",
    "LIMIT",
    "WINDOW",
    "PARTITION",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "ON",
    "WITHIN",
    "AND",
    "OR",
    "NOT",
    "AS",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "IN",
    "BETWEEN",
    "LIKE",
    "ESCAPE",
    "CAST",
    "WITH",
    "VALUES",
    "INTO",
    "DISTINCT",
    "GRACE",
];

/// The words that start a type.
const TYPE_NAMES: &[&str] =
    &["BOOLEAN", "INT", "INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "STRING", "BYTES", "DATE", "TIME", "TIMESTAMP", "DECIMAL", "ARRAY", "MAP", "STRUCT"];

/// Parses a script of statements separated by `;`.
pub fn parse(text: &str) -> Result<Vec<Parsed>, SqlError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser { tokens, pos: 0, depth: 0, lambda_scope: Vec::new() };
    let mut statements = Vec::new();
    loop {
        while parser.eat_symbol(";") {}
        if parser.peek() == &Token::End {
            return Ok(statements);
        }
        let start = parser.tokens[parser.pos].offset;
        let statement = parser.statement()?;
        let end = parser.tokens[parser.pos].offset;
        if !parser.eat_symbol(";") && parser.peek() != &Token::End {
            return Err(parser.expected("';'"));
        }
        statements.push(Parsed { statement, text: format!("{};", text[start..end].trim()) });
    }
}

/// Parses one expression (for tests and for `DEFINE`d snippets).
pub fn parse_expression(text: &str) -> Result<Expr, SqlError> {
    let mut parser = Parser { tokens: tokenize(text)?, pos: 0, depth: 0, lambda_scope: Vec::new() };
    let expr = parser.expr()?;
    if parser.peek() != &Token::End {
        return Err(parser.expected("the end of the expression"));
    }
    Ok(expr)
}

/// How deeply expressions may nest, so a hostile statement cannot
/// overflow the parser's stack.
const MAX_DEPTH: usize = 64;

struct Parser {
    tokens: Vec<Spanned>,
    pos: usize,
    /// How deeply the expression being parsed nests.
    depth: usize,
    /// The parameters of the lambdas being parsed, innermost last.
    lambda_scope: Vec<String>,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos].token
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].token
    }

    fn at(&self) -> Position {
        self.tokens[self.pos].at
    }

    fn next(&mut self) -> Token {
        let token = self.tokens[self.pos].token.clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn expected(&self, what: &str) -> SqlError {
        let found = match self.peek() {
            Token::Variable(name) => return SqlError::parse(self.at(), &format!("Syntax error: the variable '{name}' is not defined")),
            token => token.to_string(),
        };
        SqlError::parse(self.at(), &format!("Syntax error: expected {what}, found {found}"))
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Token::Word(w) if w == word)
    }

    fn at_word_ahead(&self, ahead: usize, word: &str) -> bool {
        matches!(self.peek_at(ahead), Token::Word(w) if w == word)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let found = self.at_word(word);
        if found {
            self.next();
        }
        found
    }

    fn expect_word(&mut self, word: &str) -> Result<(), SqlError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.expected(word))
        }
    }

    fn at_symbol(&self, symbol: &str) -> bool {
        matches!(self.peek(), Token::Symbol(s) if *s == symbol)
    }

    fn eat_symbol(&mut self, symbol: &str) -> bool {
        let found = self.at_symbol(symbol);
        if found {
            self.next();
        }
        found
    }

    fn expect_symbol(&mut self, symbol: &str) -> Result<(), SqlError> {
        if self.eat_symbol(symbol) {
            Ok(())
        } else {
            Err(self.expected(&format!("'{symbol}'")))
        }
    }

    /// An identifier: an unquoted word (upper-cased) or a back-quoted name.
    fn identifier(&mut self) -> Result<String, SqlError> {
        match self.peek().clone() {
            Token::Word(w) if !RESERVED.contains(&w.as_str()) => {
                self.next();
                Ok(w)
            }
            Token::Quoted(q) => {
                self.next();
                Ok(q)
            }
            _ => Err(self.expected("an identifier")),
        }
    }

    fn string(&mut self) -> Result<String, SqlError> {
        match self.peek().clone() {
            Token::String(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.expected("a string")),
        }
    }

    fn integer(&mut self) -> Result<u64, SqlError> {
        match self.peek().clone() {
            Token::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => {
                let value = n.parse().map_err(|_| SqlError::parse(self.at(), &format!("the number {n} is too large")))?;
                self.next();
                Ok(value)
            }
            _ => Err(self.expected("an integer")),
        }
    }

    // ---- statements ----------------------------------------------------

    fn statement(&mut self) -> Result<Statement, SqlError> {
        match self.peek() {
            Token::Word(w) => match w.as_str() {
                "SELECT" => Ok(Statement::Select(Box::new(self.query()?))),
                "CREATE" => self.create(),
                "INSERT" => self.insert(),
                "DROP" => self.drop_source(),
                "TERMINATE" => {
                    self.next();
                    if self.eat_word("ALL") {
                        Ok(Statement::Terminate { query: None })
                    } else {
                        Ok(Statement::Terminate { query: Some(self.identifier()?) })
                    }
                }
                "SHOW" | "LIST" => self.show(),
                "DESCRIBE" => self.describe(),
                "EXPLAIN" => {
                    self.next();
                    let explained = if matches!(self.peek(), Token::Word(w) if ["SELECT", "CREATE", "INSERT"].contains(&w.as_str())) {
                        Explained::Statement(self.statement()?)
                    } else {
                        Explained::Query(self.identifier()?)
                    };
                    Ok(Statement::Explain(Box::new(explained)))
                }
                "PRINT" => self.print(),
                "SET" => {
                    self.next();
                    let property = self.string()?;
                    self.expect_symbol("=")?;
                    Ok(Statement::Set { property, value: self.string()? })
                }
                "UNSET" => {
                    self.next();
                    Ok(Statement::Unset { property: self.string()? })
                }
                "DEFINE" => {
                    self.next();
                    let name = self.identifier()?;
                    self.expect_symbol("=")?;
                    Ok(Statement::Define { name, value: self.string()? })
                }
                "UNDEFINE" => {
                    self.next();
                    Ok(Statement::Undefine { name: self.identifier()? })
                }
                _ => Err(self.expected("a statement (SELECT, CREATE, INSERT, DROP, SHOW, DESCRIBE, ...)")),
            },
            _ => Err(self.expected("a statement (SELECT, CREATE, INSERT, DROP, SHOW, DESCRIBE, ...)")),
        }
    }

    fn source_kind(&mut self) -> Result<SourceKind, SqlError> {
        if self.eat_word("STREAM") {
            Ok(SourceKind::Stream)
        } else if self.eat_word("TABLE") {
            Ok(SourceKind::Table)
        } else {
            Err(self.expected("STREAM or TABLE"))
        }
    }

    fn create(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("CREATE")?;
        let or_replace = self.eat_word("OR");
        if or_replace {
            self.expect_word("REPLACE")?;
        }
        let source = self.eat_word("SOURCE");
        let kind = self.source_kind()?;
        let if_not_exists = self.eat_word("IF");
        if if_not_exists {
            self.expect_word("NOT")?;
            self.expect_word("EXISTS")?;
        }
        let name = self.identifier()?;
        let columns = if self.at_symbol("(") { self.column_defs()? } else { Vec::new() };
        let properties = if self.eat_word("WITH") { self.properties()? } else { Vec::new() };
        if self.eat_word("AS") {
            if !columns.is_empty() {
                return Err(SqlError::invalid(format!("CREATE {kind} AS SELECT takes its columns from the query; remove the column list")));
            }
            if source {
                return Err(SqlError::invalid(format!("CREATE SOURCE {kind} cannot be AS SELECT")));
            }
            let query = Box::new(self.query()?);
            return Ok(Statement::CreateAs { kind, name, or_replace, if_not_exists, properties, query });
        }
        Ok(Statement::CreateSource { kind, name, or_replace, if_not_exists, source, columns, properties })
    }

    fn column_defs(&mut self) -> Result<Vec<ColumnDef>, SqlError> {
        self.expect_symbol("(")?;
        let mut columns = Vec::new();
        loop {
            let name = self.identifier()?;
            let sql_type = self.sql_type()?;
            let role = if self.eat_word("KEY") {
                ColumnRole::Key
            } else if self.eat_word("PRIMARY") {
                self.expect_word("KEY")?;
                ColumnRole::PrimaryKey
            } else if self.eat_word("HEADERS") {
                ColumnRole::Headers
            } else if self.eat_word("HEADER") {
                self.expect_symbol("(")?;
                let key = self.string()?;
                self.expect_symbol(")")?;
                ColumnRole::Header(key)
            } else {
                ColumnRole::Value
            };
            columns.push(ColumnDef { name, sql_type, role });
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_symbol(")")?;
        Ok(columns)
    }

    fn properties(&mut self) -> Result<Vec<(String, Literal)>, SqlError> {
        self.expect_symbol("(")?;
        let mut properties = Vec::new();
        loop {
            let name = match self.peek().clone() {
                Token::Word(w) => w,
                Token::Quoted(q) | Token::String(q) => q.to_uppercase(),
                _ => return Err(self.expected("a property name")),
            };
            self.next();
            self.expect_symbol("=")?;
            let value = match self.primary()? {
                Expr::Literal(literal) => literal,
                Expr::Negate(inner) => match *inner {
                    Expr::Literal(Literal::Integer(i)) => Literal::Integer(-i),
                    _ => return Err(SqlError::invalid(format!("the property {name} takes a literal"))),
                },
                _ => return Err(SqlError::invalid(format!("the property {name} takes a literal"))),
            };
            properties.push((name, value));
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_symbol(")")?;
        Ok(properties)
    }

    fn insert(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("INSERT")?;
        self.expect_word("INTO")?;
        let target = self.identifier()?;
        let mut columns = Vec::new();
        if self.eat_symbol("(") {
            loop {
                columns.push(self.identifier()?);
                if !self.eat_symbol(",") {
                    break;
                }
            }
            self.expect_symbol(")")?;
        }
        if self.eat_word("VALUES") {
            self.expect_symbol("(")?;
            let mut values = Vec::new();
            if !self.at_symbol(")") {
                loop {
                    values.push(self.expr()?);
                    if !self.eat_symbol(",") {
                        break;
                    }
                }
            }
            self.expect_symbol(")")?;
            return Ok(Statement::InsertValues { target, columns, values });
        }
        if !columns.is_empty() {
            return Err(self.expected("VALUES"));
        }
        let properties = if self.eat_word("WITH") { self.properties()? } else { Vec::new() };
        if !self.at_word("SELECT") {
            return Err(self.expected("VALUES or SELECT"));
        }
        Ok(Statement::InsertInto { target, properties, query: Box::new(self.query()?) })
    }

    fn drop_source(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("DROP")?;
        let kind = self.source_kind()?;
        let if_exists = self.eat_word("IF");
        if if_exists {
            self.expect_word("EXISTS")?;
        }
        let name = self.identifier()?;
        let delete_topic = self.eat_word("DELETE");
        if delete_topic {
            self.expect_word("TOPIC")?;
        }
        Ok(Statement::Drop { kind, name, if_exists, delete_topic })
    }

    fn show(&mut self) -> Result<Statement, SqlError> {
        self.next();
        self.eat_word("ALL");
        let what = match self.peek() {
            Token::Word(w) => match w.as_str() {
                "TOPICS" => Listing::Topics,
                "STREAMS" => Listing::Streams,
                "TABLES" => Listing::Tables,
                "QUERIES" => Listing::Queries,
                "PROPERTIES" => Listing::Properties,
                "FUNCTIONS" => Listing::Functions,
                "TYPES" => Listing::Types,
                "VARIABLES" => Listing::Variables,
                _ => return Err(self.expected("TOPICS, STREAMS, TABLES, QUERIES, PROPERTIES, FUNCTIONS, TYPES or VARIABLES")),
            },
            _ => return Err(self.expected("TOPICS, STREAMS, TABLES, QUERIES, PROPERTIES, FUNCTIONS, TYPES or VARIABLES")),
        };
        self.next();
        Ok(Statement::Show { what, extended: self.eat_word("EXTENDED") })
    }

    fn describe(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("DESCRIBE")?;
        if self.eat_word("FUNCTION") {
            return Ok(Statement::DescribeFunction { name: self.identifier()? });
        }
        let mut extended = self.eat_word("EXTENDED");
        for (word, kind) in [("STREAMS", SourceKind::Stream), ("TABLES", SourceKind::Table)] {
            if self.at_word(word) && matches!(self.peek_at(1), Token::End | Token::Symbol(";")) || self.at_word(word) && self.at_word_ahead(1, "EXTENDED") {
                self.next();
                extended |= self.eat_word("EXTENDED");
                return Ok(Statement::DescribeAll { kind, extended });
            }
        }
        let name = self.identifier()?;
        extended |= self.eat_word("EXTENDED");
        Ok(Statement::Describe { name, extended })
    }

    fn print(&mut self) -> Result<Statement, SqlError> {
        self.expect_word("PRINT")?;
        let topic = match self.peek().clone() {
            Token::String(s) => {
                self.next();
                s
            }
            Token::Word(w) => {
                self.next();
                w
            }
            Token::Quoted(q) => {
                self.next();
                q
            }
            _ => return Err(self.expected("a topic name")),
        };
        let from_beginning = self.eat_word("FROM");
        if from_beginning {
            self.expect_word("BEGINNING")?;
        }
        let interval = if self.eat_word("INTERVAL") || self.eat_word("SAMPLE") { Some(self.integer()?) } else { None };
        let limit = if self.eat_word("LIMIT") { Some(self.integer()?) } else { None };
        Ok(Statement::Print { topic, from_beginning, interval, limit })
    }

    // ---- queries -------------------------------------------------------

    fn query(&mut self) -> Result<Query, SqlError> {
        self.expect_word("SELECT")?;
        let mut items = Vec::new();
        loop {
            items.push(self.select_item()?);
            if !self.eat_symbol(",") {
                break;
            }
        }
        self.expect_word("FROM")?;
        let from = self.relation()?;
        let window = if self.eat_word("WINDOW") { Some(self.window()?) } else { None };
        let filter = if self.eat_word("WHERE") { Some(self.expr()?) } else { None };
        let mut group_by = Vec::new();
        if self.eat_word("GROUP") {
            self.expect_word("BY")?;
            group_by = self.expr_list()?;
        }
        let mut partition_by = Vec::new();
        if self.eat_word("PARTITION") {
            self.expect_word("BY")?;
            partition_by = self.expr_list()?;
        }
        let having = if self.eat_word("HAVING") { Some(self.expr()?) } else { None };
        let emit = if self.eat_word("EMIT") {
            if self.eat_word("CHANGES") {
                Some(Emit::Changes)
            } else if self.eat_word("FINAL") {
                Some(Emit::Final)
            } else {
                return Err(self.expected("CHANGES or FINAL"));
            }
        } else {
            None
        };
        let limit = if self.eat_word("LIMIT") { Some(self.integer()?) } else { None };
        Ok(Query { items, from, window, filter, group_by, partition_by, having, emit, limit })
    }

    /// Expressions separated by commas, optionally in parentheses.
    fn expr_list(&mut self) -> Result<Vec<Expr>, SqlError> {
        let mut list = Vec::new();
        loop {
            list.push(self.expr()?);
            if !self.eat_symbol(",") {
                return Ok(list);
            }
        }
    }

    fn select_item(&mut self) -> Result<SelectItem, SqlError> {
        if self.eat_symbol("*") {
            return Ok(SelectItem::All);
        }
        if matches!(self.peek(), Token::Word(_) | Token::Quoted(_))
            && matches!(self.peek_at(1), Token::Symbol("."))
            && matches!(self.peek_at(2), Token::Symbol("*"))
        {
            let source = self.identifier()?;
            self.next();
            self.next();
            return Ok(SelectItem::AllOf(source));
        }
        let expr = self.expr()?;
        let alias = self.alias()?;
        Ok(SelectItem::Expr { expr, alias })
    }

    /// An alias: `AS name`, or a name that is not a reserved word.
    fn alias(&mut self) -> Result<Option<String>, SqlError> {
        let unreserved = matches!(self.peek(), Token::Word(w) if !RESERVED.contains(&w.as_str())) || matches!(self.peek(), Token::Quoted(_));
        if self.eat_word("AS") || unreserved {
            return Ok(Some(self.identifier()?));
        }
        Ok(None)
    }

    fn aliased_source(&mut self) -> Result<Relation, SqlError> {
        let name = self.identifier()?;
        let alias = self.alias()?;
        Ok(Relation::Source { name, alias })
    }

    fn relation(&mut self) -> Result<Relation, SqlError> {
        let mut relation = self.aliased_source()?;
        loop {
            let kind = if self.eat_word("JOIN") {
                JoinKind::Inner
            } else if self.at_word("INNER") {
                self.next();
                self.expect_word("JOIN")?;
                JoinKind::Inner
            } else if let Some(kind) =
                [("LEFT", JoinKind::Left), ("RIGHT", JoinKind::Right), ("FULL", JoinKind::Full)].into_iter().find(|(w, _)| self.at_word(w)).map(|(_, k)| k)
            {
                self.next();
                self.eat_word("OUTER");
                self.expect_word("JOIN")?;
                kind
            } else {
                return Ok(relation);
            };
            let right = self.aliased_source()?;
            let within = if self.eat_word("WITHIN") { Some(self.within()?) } else { None };
            self.expect_word("ON")?;
            let on = self.expr()?;
            relation = Relation::Join(Box::new(Join { left: relation, right, kind, within, on }));
        }
    }

    fn within(&mut self) -> Result<Within, SqlError> {
        let (before_ms, after_ms) = if self.eat_symbol("(") {
            let before = self.duration()?;
            self.expect_symbol(",")?;
            let after = self.duration()?;
            self.expect_symbol(")")?;
            (before, after)
        } else {
            let both = self.duration()?;
            (both, both)
        };
        let grace_ms = self.grace()?;
        Ok(Within { before_ms, after_ms, grace_ms })
    }

    fn grace(&mut self) -> Result<Option<i64>, SqlError> {
        if self.eat_word("GRACE") {
            self.expect_word("PERIOD")?;
            return Ok(Some(self.duration()?));
        }
        Ok(None)
    }

    /// `n UNIT`, in milliseconds.
    fn duration(&mut self) -> Result<i64, SqlError> {
        let amount = self.integer()? as i64;
        let unit_ms = match self.peek() {
            Token::Word(w) => match w.trim_end_matches('S') {
                "MILLISECOND" => 1,
                "SECOND" => 1_000,
                "MINUTE" => 60_000,
                "HOUR" => 3_600_000,
                "DAY" => 86_400_000,
                _ => return Err(self.expected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")),
            },
            _ => return Err(self.expected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")),
        };
        self.next();
        amount.checked_mul(unit_ms).ok_or_else(|| SqlError::invalid("the duration is too long"))
    }

    fn window(&mut self) -> Result<WindowSpec, SqlError> {
        let kind_word = match self.peek() {
            Token::Word(w) if ["TUMBLING", "HOPPING", "SESSION"].contains(&w.as_str()) => w.clone(),
            _ => return Err(self.expected("TUMBLING, HOPPING or SESSION")),
        };
        self.next();
        self.expect_symbol("(")?;
        let kind = match kind_word.as_str() {
            "TUMBLING" => {
                self.expect_word("SIZE")?;
                WindowKind::Tumbling { size_ms: self.duration()? }
            }
            "HOPPING" => {
                self.expect_word("SIZE")?;
                let size_ms = self.duration()?;
                self.expect_symbol(",")?;
                self.expect_word("ADVANCE")?;
                self.expect_word("BY")?;
                WindowKind::Hopping { size_ms, advance_ms: self.duration()? }
            }
            _ => WindowKind::Session { gap_ms: self.duration()? },
        };
        let (mut retention_ms, mut grace_ms) = (None, None);
        while self.eat_symbol(",") {
            if self.eat_word("RETENTION") {
                retention_ms = Some(self.duration()?);
            } else if self.at_word("GRACE") {
                grace_ms = self.grace()?;
            } else {
                return Err(self.expected("RETENTION or GRACE PERIOD"));
            }
        }
        self.expect_symbol(")")?;
        if let WindowKind::Hopping { size_ms, advance_ms } = kind {
            if advance_ms <= 0 || advance_ms > size_ms {
                return Err(SqlError::invalid("a hopping window's advance must be positive and at most its size"));
            }
        }
        Ok(WindowSpec { kind, retention_ms, grace_ms })
    }

    // ---- types ---------------------------------------------------------

    fn sql_type(&mut self) -> Result<SqlType, SqlError> {
        self.depth += 1;
        let result = self.nested_type();
        self.depth -= 1;
        result
    }

    fn nested_type(&mut self) -> Result<SqlType, SqlError> {
        if self.depth > MAX_DEPTH {
            return Err(SqlError::parse(self.at(), &format!("Syntax error: types nest more than {MAX_DEPTH} deep")));
        }
        let word = match self.peek() {
            Token::Word(w) if TYPE_NAMES.contains(&w.as_str()) => w.clone(),
            _ => return Err(self.expected("a type")),
        };
        self.next();
        Ok(match word.as_str() {
            "BOOLEAN" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Int,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "VARCHAR" | "STRING" => SqlType::String,
            "BYTES" => SqlType::Bytes,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            "TIMESTAMP" => SqlType::Timestamp,
            "DECIMAL" => {
                self.expect_symbol("(")?;
                let precision = self.integer()?;
                self.expect_symbol(",")?;
                let scale = self.integer()?;
                self.expect_symbol(")")?;
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(SqlError::invalid(format!("DECIMAL({precision}, {scale}): the precision must be 1 to 38 and the scale at most the precision")));
                }
                SqlType::Decimal { precision: precision as u8, scale: scale as u8 }
            }
            "ARRAY" => {
                self.expect_symbol("<")?;
                let item = self.sql_type()?;
                self.expect_symbol(">")?;
                SqlType::Array(Box::new(item))
            }
            "MAP" => {
                self.expect_symbol("<")?;
                let key = self.sql_type()?;
                self.expect_symbol(",")?;
                let value = self.sql_type()?;
                self.expect_symbol(">")?;
                SqlType::Map(Box::new(key), Box::new(value))
            }
            "STRUCT" => {
                self.expect_symbol("<")?;
                let mut fields = Vec::new();
                if !self.at_symbol(">") {
                    loop {
                        let name = self.identifier()?;
                        fields.push((name, self.sql_type()?));
                        if !self.eat_symbol(",") {
                            break;
                        }
                    }
                }
                self.expect_symbol(">")?;
                SqlType::Struct(fields)
            }
            _ => unreachable!("TYPE_NAMES lists the words matched here"),
        })
    }

    // ---- expressions -----------------------------------------------------

    fn expr(&mut self) -> Result<Expr, SqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SqlError::parse(self.at(), &format!("Syntax error: expressions nest more than {MAX_DEPTH} deep")));
        }
        let result = self.or();
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and()?;
        while self.eat_word("OR") {
            left = Expr::Binary { op: BinaryOp::Or, left: Box::new(left), right: Box::new(self.and()?) };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not()?;
        while self.eat_word("AND") {
            left = Expr::Binary { op: BinaryOp::And, left: Box::new(left), right: Box::new(self.not()?) };
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.eat_word("NOT") {
            self.depth += 1;
            let inner = self.not();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, SqlError> {
        let left = self.additive()?;
        let comparison = [
            ("=", BinaryOp::Eq),
            ("<>", BinaryOp::NotEq),
            ("!=", BinaryOp::NotEq),
            ("<=", BinaryOp::LtEq),
            (">=", BinaryOp::GtEq),
            ("<", BinaryOp::Lt),
            (">", BinaryOp::Gt),
        ]
        .into_iter()
        .find(|(s, _)| self.at_symbol(s));
        if let Some((_, op)) = comparison {
            self.next();
            return Ok(Expr::Binary { op, left: Box::new(left), right: Box::new(self.additive()?) });
        }
        if self.eat_word("IS") {
            let negated = self.eat_word("NOT");
            if self.eat_word("NULL") {
                return Ok(Expr::IsNull { expr: Box::new(left), negated });
            }
            self.expect_word("DISTINCT")?;
            self.expect_word("FROM")?;
            return Ok(Expr::IsDistinctFrom { left: Box::new(left), right: Box::new(self.additive()?), negated });
        }
        let negated = self.at_word("NOT") && (self.at_word_ahead(1, "BETWEEN") || self.at_word_ahead(1, "LIKE") || self.at_word_ahead(1, "IN"));
        if negated {
            self.next();
        }
        if self.eat_word("BETWEEN") {
            let low = self.additive()?;
            self.expect_word("AND")?;
            let high = self.additive()?;
            return Ok(Expr::Between { expr: Box::new(left), low: Box::new(low), high: Box::new(high), negated });
        }
        if self.eat_word("LIKE") {
            let pattern = self.additive()?;
            let escape = if self.eat_word("ESCAPE") {
                let escape = self.string()?;
                let mut chars = escape.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Some(c),
                    _ => return Err(SqlError::invalid("the LIKE escape must be one character")),
                }
            } else {
                None
            };
            return Ok(Expr::Like { expr: Box::new(left), pattern: Box::new(pattern), escape, negated });
        }
        if self.eat_word("IN") {
            self.expect_symbol("(")?;
            let list = self.expr_list()?;
            self.expect_symbol(")")?;
            return Ok(Expr::InList { expr: Box::new(left), list, negated });
        }
        Ok(left)
    }

    fn additive(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.eat_symbol("+") {
                BinaryOp::Add
            } else if self.eat_symbol("-") {
                BinaryOp::Subtract
            } else if self.eat_symbol("||") {
                BinaryOp::Concat
            } else {
                return Ok(left);
            };
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(self.multiplicative()?) };
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat_symbol("*") {
                BinaryOp::Multiply
            } else if self.eat_symbol("/") {
                BinaryOp::Divide
            } else if self.eat_symbol("%") {
                BinaryOp::Modulo
            } else {
                return Ok(left);
            };
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(self.unary()?) };
        }
    }

    fn unary(&mut self) -> Result<Expr, SqlError> {
        if self.depth > MAX_DEPTH {
            return Err(SqlError::parse(self.at(), &format!("Syntax error: expressions nest more than {MAX_DEPTH} deep")));
        }
        if self.eat_symbol("-") {
            self.depth += 1;
            let inner = self.unary();
            self.depth -= 1;
            return Ok(match inner? {
                Expr::Literal(Literal::Integer(i)) => Expr::Literal(Literal::Integer(-i)),
                Expr::Literal(Literal::Decimal(d)) => Expr::Literal(Literal::Decimal(format!("-{d}"))),
                Expr::Literal(Literal::Double(d)) => Expr::Literal(Literal::Double(-d)),
                other => Expr::Negate(Box::new(other)),
            });
        }
        if self.eat_symbol("+") {
            self.depth += 1;
            let inner = self.unary();
            self.depth -= 1;
            return inner;
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, SqlError> {
        let mut expr = self.primary()?;
        loop {
            if self.eat_symbol("[") {
                let index = self.expr()?;
                self.expect_symbol("]")?;
                expr = Expr::Subscript { expr: Box::new(expr), index: Box::new(index) };
            } else if self.eat_symbol("->") {
                let field = self.identifier()?;
                expr = Expr::Field { expr: Box::new(expr), field };
            } else {
                return Ok(expr);
            }
        }
    }

    /// Whether a lambda starts here: `x =>` or `(x, y) =>`.
    fn at_lambda(&self) -> bool {
        if matches!(self.peek(), Token::Word(_) | Token::Quoted(_)) && matches!(self.peek_at(1), Token::Symbol("=>")) {
            return true;
        }
        if !self.at_symbol("(") {
            return false;
        }
        let mut ahead = 1;
        loop {
            if !matches!(self.peek_at(ahead), Token::Word(_) | Token::Quoted(_)) {
                return false;
            }
            match self.peek_at(ahead + 1) {
                Token::Symbol(",") => ahead += 2,
                Token::Symbol(")") => return matches!(self.peek_at(ahead + 2), Token::Symbol("=>")),
                _ => return false,
            }
        }
    }

    fn lambda(&mut self) -> Result<Expr, SqlError> {
        let mut params = Vec::new();
        if self.eat_symbol("(") {
            loop {
                params.push(self.identifier()?);
                if !self.eat_symbol(",") {
                    break;
                }
            }
            self.expect_symbol(")")?;
        } else {
            params.push(self.identifier()?);
        }
        self.expect_symbol("=>")?;
        let depth = self.lambda_scope.len();
        self.lambda_scope.extend(params.iter().cloned());
        let body = self.expr();
        self.lambda_scope.truncate(depth);
        Ok(Expr::Lambda { params, body: Box::new(body?) })
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        if self.at_lambda() {
            return self.lambda();
        }
        let at = self.at();
        match self.peek().clone() {
            Token::Number(n) => {
                self.next();
                let literal = if n.contains(['e', 'E']) {
                    Literal::Double(n.parse().map_err(|_| SqlError::parse(at, &format!("bad number {n}")))?)
                } else if n.contains('.') {
                    Literal::Decimal(n)
                } else {
                    Literal::Integer(n.parse().map_err(|_| SqlError::parse(at, &format!("the number {n} does not fit a BIGINT")))?)
                };
                Ok(Expr::Literal(literal))
            }
            Token::String(s) => {
                self.next();
                Ok(Expr::Literal(Literal::String(s)))
            }
            Token::Symbol("(") => {
                self.next();
                let expr = self.expr()?;
                self.expect_symbol(")")?;
                Ok(expr)
            }
            Token::Word(w) => match w.as_str() {
                "TRUE" | "FALSE" => {
                    self.next();
                    Ok(Expr::Literal(Literal::Boolean(w == "TRUE")))
                }
                "NULL" => {
                    self.next();
                    Ok(Expr::Literal(Literal::Null))
                }
                "CAST" if matches!(self.peek_at(1), Token::Symbol("(")) => {
                    self.next();
                    self.next();
                    let expr = self.expr()?;
                    self.expect_word("AS")?;
                    let to = self.sql_type()?;
                    self.expect_symbol(")")?;
                    Ok(Expr::Cast { expr: Box::new(expr), to })
                }
                "CASE" => self.case(),
                "ARRAY" if matches!(self.peek_at(1), Token::Symbol("[")) => {
                    self.next();
                    self.next();
                    let items = if self.at_symbol("]") { Vec::new() } else { self.expr_list()? };
                    self.expect_symbol("]")?;
                    Ok(Expr::Array(items))
                }
                "MAP" if matches!(self.peek_at(1), Token::Symbol("(")) => {
                    self.next();
                    self.next();
                    let mut entries = Vec::new();
                    if !self.at_symbol(")") {
                        loop {
                            let key = self.expr()?;
                            self.expect_symbol(":=")?;
                            entries.push((key, self.expr()?));
                            if !self.eat_symbol(",") {
                                break;
                            }
                        }
                    }
                    self.expect_symbol(")")?;
                    Ok(Expr::Map(entries))
                }
                "STRUCT" if matches!(self.peek_at(1), Token::Symbol("(")) => {
                    self.next();
                    self.next();
                    let mut fields = Vec::new();
                    if !self.at_symbol(")") {
                        loop {
                            let name = self.identifier()?;
                            self.expect_symbol(":=")?;
                            fields.push((name, self.expr()?));
                            if !self.eat_symbol(",") {
                                break;
                            }
                        }
                    }
                    self.expect_symbol(")")?;
                    Ok(Expr::Struct(fields))
                }
                _ => self.name_or_call(),
            },
            Token::Quoted(_) => self.name_or_call(),
            _ => Err(self.expected("an expression")),
        }
    }

    fn case(&mut self) -> Result<Expr, SqlError> {
        self.expect_word("CASE")?;
        let operand = if self.at_word("WHEN") { None } else { Some(Box::new(self.expr()?)) };
        let mut whens = Vec::new();
        while self.eat_word("WHEN") {
            let when = self.expr()?;
            self.expect_word("THEN")?;
            whens.push((when, self.expr()?));
        }
        if whens.is_empty() {
            return Err(self.expected("WHEN"));
        }
        let otherwise = if self.eat_word("ELSE") { Some(Box::new(self.expr()?)) } else { None };
        self.expect_word("END")?;
        Ok(Expr::Case { operand, whens, otherwise })
    }

    /// A column (qualified or not), a lambda variable, or a function call.
    fn name_or_call(&mut self) -> Result<Expr, SqlError> {
        let name = self.identifier()?;
        if self.eat_symbol("(") {
            if self.eat_symbol("*") {
                self.expect_symbol(")")?;
                return Ok(Expr::Function { name, args: Vec::new(), star: true });
            }
            let args = if self.at_symbol(")") { Vec::new() } else { self.expr_list()? };
            self.expect_symbol(")")?;
            return Ok(Expr::Function { name, args, star: false });
        }
        if self.lambda_scope.contains(&name) {
            return Ok(Expr::LambdaVariable(name));
        }
        if self.at_symbol(".") && matches!(self.peek_at(1), Token::Word(_) | Token::Quoted(_)) {
            self.next();
            let column = self.identifier()?;
            return Ok(Expr::Column { source: Some(name), name: column });
        }
        Ok(Expr::Column { source: None, name })
    }
}
