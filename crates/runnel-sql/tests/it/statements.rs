//! Statements as the parser sees them, and where it says they are wrong.

use runnel_sql::ast::*;
use runnel_sql::parser::parse;
use runnel_sql::types::SqlType;

fn one(text: &str) -> Statement {
    let mut parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(parsed.len(), 1, "{text}");
    parsed.remove(0).statement
}

fn error(text: &str) -> String {
    parse(text).map(|p| format!("parsed: {p:?}")).unwrap_or_else(|e| e.to_string())
}

fn column(name: &str) -> Expr {
    Expr::Column { source: None, name: name.into() }
}

/// The course's ksqlDB statements, as its videos type them.
const COURSE: &str = "
CREATE STREAM ride_streams (
    VendorId varchar,
    trip_distance double,
    payment_type varchar
)  WITH (KAFKA_TOPIC='rides',
        VALUE_FORMAT='JSON');

select * from RIDE_STREAMS
EMIT CHANGES;

SELECT VENDORID, count(*) FROM RIDE_STREAMS
GROUP BY VENDORID
EMIT CHANGES;

SELECT payment_type, count(*) FROM RIDE_STREAMS
WHERE payment_type IN ('1', '2')
GROUP BY payment_type
EMIT CHANGES;

CREATE TABLE payment_type_sessions AS
  SELECT payment_type,
         count(*)
  FROM  RIDE_STREAMS
  WINDOW SESSION (60 SECONDS)
  GROUP BY payment_type
  EMIT CHANGES;
";

#[test]
fn the_course_s_statements_parse() {
    let statements = parse(COURSE).unwrap();
    assert_eq!(statements.len(), 5);
    let Statement::CreateSource { kind, name, columns, properties, .. } = &statements[0].statement else { panic!("{:?}", statements[0]) };
    assert_eq!((*kind, name.as_str()), (SourceKind::Stream, "RIDE_STREAMS"));
    assert_eq!(
        columns.iter().map(|c| (c.name.as_str(), c.sql_type.clone())).collect::<Vec<_>>(),
        [("VENDORID", SqlType::String), ("TRIP_DISTANCE", SqlType::Double), ("PAYMENT_TYPE", SqlType::String)]
    );
    assert_eq!(properties, &[("KAFKA_TOPIC".to_string(), Literal::String("rides".into())), ("VALUE_FORMAT".to_string(), Literal::String("JSON".into()))]);
    assert!(statements[1].text.starts_with("select * from RIDE_STREAMS"), "{}", statements[1].text);
    let Statement::Select(query) = &statements[2].statement else { panic!() };
    assert_eq!(query.group_by, [column("VENDORID")]);
    assert_eq!(query.items[1], SelectItem::Expr { expr: Expr::Function { name: "COUNT".into(), args: vec![], star: true }, alias: None });
    assert_eq!(query.emit, Some(Emit::Changes));
    let Statement::Select(query) = &statements[3].statement else { panic!() };
    assert!(matches!(&query.filter, Some(Expr::InList { list, negated: false, .. }) if list.len() == 2));
    let Statement::CreateAs { kind: SourceKind::Table, query, .. } = &statements[4].statement else { panic!() };
    assert_eq!(query.window, Some(WindowSpec { kind: WindowKind::Session { gap_ms: 60_000 }, retention_ms: None, grace_ms: None }));
}

#[test]
fn sources_with_keys_headers_and_every_type() {
    let Statement::CreateSource { kind, columns, or_replace, if_not_exists, source, .. } = one("CREATE OR REPLACE SOURCE TABLE IF NOT EXISTS zones (
            LocationID INT PRIMARY KEY, `Borough` STRING, tags ARRAY<VARCHAR>, attrs MAP<STRING, BIGINT>,
            stop STRUCT<zone INT, name STRING>, fare DECIMAL(10, 2), seen TIMESTAMP, day DATE, at TIME, raw BYTES,
            ok BOOLEAN, headers ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, trace BYTES HEADER('trace-id')
        ) WITH (kafka_topic='zones', value_format='JSON', partitions=3);")
    else {
        panic!()
    };
    assert!(kind == SourceKind::Table && or_replace && if_not_exists && source);
    assert_eq!(columns[0].role, ColumnRole::PrimaryKey);
    assert_eq!(columns[1].name, "Borough");
    assert_eq!(columns[4].sql_type.to_string(), "STRUCT<`ZONE` INTEGER, `NAME` STRING>");
    assert_eq!(columns[5].sql_type, SqlType::Decimal { precision: 10, scale: 2 });
    assert_eq!(columns[11].role, ColumnRole::Headers);
    assert_eq!(columns[12].role, ColumnRole::Header("trace-id".into()));
}

#[test]
fn queries_with_every_clause() {
    let Statement::Select(query) = one("SELECT r.VendorID AS vendor, z.Borough, WINDOWSTART, COUNT(*) total, AVG(r.fare) FROM rides r
         LEFT JOIN zones AS z ON r.PULocationID = z.LocationID
         WINDOW HOPPING (SIZE 10 MINUTES, ADVANCE BY 1 MINUTE, RETENTION 2 DAYS, GRACE PERIOD 30 SECONDS)
         WHERE r.fare > 10 AND NOT r.cancelled
         GROUP BY r.VendorID, z.Borough
         HAVING COUNT(*) > 2
         EMIT CHANGES LIMIT 10;")
    else {
        panic!()
    };
    assert_eq!(query.items[0], SelectItem::Expr { expr: Expr::Column { source: Some("R".into()), name: "VENDORID".into() }, alias: Some("VENDOR".into()) });
    assert!(matches!(&query.items[3], SelectItem::Expr { alias: Some(a), .. } if a == "TOTAL"));
    let Relation::Join(join) = &query.from else { panic!() };
    assert_eq!(join.kind, JoinKind::Left);
    assert_eq!(join.right, Relation::Source { name: "ZONES".into(), alias: Some("Z".into()) });
    assert_eq!(
        query.window,
        Some(WindowSpec { kind: WindowKind::Hopping { size_ms: 600_000, advance_ms: 60_000 }, retention_ms: Some(172_800_000), grace_ms: Some(30_000) })
    );
    assert_eq!(query.group_by.len(), 2);
    assert!(query.having.is_some());
    assert_eq!(query.limit, Some(10));

    let Statement::Select(query) =
        one("SELECT * FROM a INNER JOIN b WITHIN (1 HOUR, 2 HOURS) GRACE PERIOD 5 MINUTES ON a.id = b.id FULL OUTER JOIN c ON a.id = c.id EMIT CHANGES;")
    else {
        panic!()
    };
    let Relation::Join(outer) = &query.from else { panic!() };
    assert_eq!(outer.kind, JoinKind::Full);
    let Relation::Join(inner) = &outer.left else { panic!() };
    assert_eq!(inner.within, Some(Within { before_ms: 3_600_000, after_ms: 7_200_000, grace_ms: Some(300_000) }));
    let Statement::Select(query) = one("SELECT * FROM rides WINDOW TUMBLING (SIZE 10 SECONDS) PARTITION BY PULocationID, vendor;") else { panic!() };
    assert_eq!(query.partition_by.len(), 2);
    assert_eq!(query.emit, None, "a pull query");
    assert_eq!(
        one("SELECT s.* FROM s;"),
        Statement::Select(Box::new(Query {
            items: vec![SelectItem::AllOf("S".into())],
            from: Relation::Source { name: "S".into(), alias: None },
            window: None,
            filter: None,
            group_by: vec![],
            partition_by: vec![],
            having: None,
            emit: None,
            limit: None,
        }))
    );
}

#[test]
fn every_other_statement() {
    assert!(matches!(
        one("CREATE STREAM big WITH (kafka_topic='big') AS SELECT * FROM rides WHERE fare > 50;"),
        Statement::CreateAs { kind: SourceKind::Stream, .. }
    ));
    assert!(matches!(one("INSERT INTO big SELECT * FROM other EMIT CHANGES;"), Statement::InsertInto { .. }));
    assert_eq!(
        one("INSERT INTO rides (VendorID, fare) VALUES ('2', 9.5);"),
        Statement::InsertValues {
            target: "RIDES".into(),
            columns: vec!["VENDORID".into(), "FARE".into()],
            values: vec![Expr::Literal(Literal::String("2".into())), Expr::Literal(Literal::Decimal("9.5".into()))]
        }
    );
    assert_eq!(
        one("DROP TABLE IF EXISTS counts DELETE TOPIC;"),
        Statement::Drop { kind: SourceKind::Table, name: "COUNTS".into(), if_exists: true, delete_topic: true }
    );
    assert_eq!(one("TERMINATE CTAS_COUNTS_3;"), Statement::Terminate { query: Some("CTAS_COUNTS_3".into()) });
    assert_eq!(one("TERMINATE ALL;"), Statement::Terminate { query: None });
    assert_eq!(one("SHOW TOPICS EXTENDED;"), Statement::Show { what: Listing::Topics, extended: true });
    assert_eq!(one("LIST STREAMS;"), Statement::Show { what: Listing::Streams, extended: false });
    assert_eq!(one("show all topics;"), Statement::Show { what: Listing::Topics, extended: false });
    assert_eq!(one("SHOW FUNCTIONS;"), Statement::Show { what: Listing::Functions, extended: false });
    assert_eq!(one("DESCRIBE rides EXTENDED;"), Statement::Describe { name: "RIDES".into(), extended: true });
    assert_eq!(one("DESCRIBE EXTENDED rides;"), Statement::Describe { name: "RIDES".into(), extended: true });
    assert_eq!(one("DESCRIBE STREAMS;"), Statement::DescribeAll { kind: SourceKind::Stream, extended: false });
    assert_eq!(one("DESCRIBE FUNCTION substring;"), Statement::DescribeFunction { name: "SUBSTRING".into() });
    assert!(matches!(one("EXPLAIN SELECT * FROM rides;"), Statement::Explain(e) if matches!(*e, Explained::Statement(Statement::Select(_)))));
    assert_eq!(one("EXPLAIN CSAS_BIG_1;"), Statement::Explain(Box::new(Explained::Query("CSAS_BIG_1".into()))));
    assert_eq!(one("PRINT 'rides' FROM BEGINNING LIMIT 3;"), Statement::Print { topic: "rides".into(), from_beginning: true, interval: None, limit: Some(3) });
    assert_eq!(one("PRINT rides INTERVAL 2;"), Statement::Print { topic: "RIDES".into(), from_beginning: false, interval: Some(2), limit: None });
    assert_eq!(one("SET 'auto.offset.reset' = 'earliest';"), Statement::Set { property: "auto.offset.reset".into(), value: "earliest".into() });
    assert_eq!(one("UNSET 'auto.offset.reset';"), Statement::Unset { property: "auto.offset.reset".into() });
    assert_eq!(one("DEFINE topic = 'rides';"), Statement::Define { name: "TOPIC".into(), value: "rides".into() });
    assert_eq!(one("UNDEFINE topic;"), Statement::Undefine { name: "TOPIC".into() });
}

#[test]
fn scripts_split_at_semicolons_and_keep_each_statement_s_text() {
    let parsed = parse("-- a comment\nSHOW STREAMS;\n\n  SHOW TABLES ;;SHOW QUERIES").unwrap();
    assert_eq!(parsed.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(), ["SHOW STREAMS;", "SHOW TABLES;", "SHOW QUERIES;"]);
    assert!(parse("  ; -- nothing\n").unwrap().is_empty());
}

#[test]
fn errors_say_where_and_what_was_expected() {
    assert_eq!(error("SELEC * FROM rides;"), "line 1:1: Syntax error: expected a statement (SELECT, CREATE, INSERT, DROP, SHOW, DESCRIBE, ...), found 'SELEC'");
    assert_eq!(error("SELECT * FORM rides;"), "line 1:10: Syntax error: expected FROM, found 'FORM'");
    assert_eq!(error("SELECT *\nFROM rides\nWHERE fare >;"), "line 3:13: Syntax error: expected an expression, found ';'");
    assert_eq!(error("CREATE STREAM s (a WIDGET) WITH (kafka_topic='t');"), "line 1:20: Syntax error: expected a type, found 'WIDGET'");
    assert_eq!(error("CREATE STREAM s (a INT;"), "line 1:23: Syntax error: expected ')', found ';'");
    assert_eq!(
        error("SHOW STREAMZ;"),
        "line 1:6: Syntax error: expected TOPICS, STREAMS, TABLES, QUERIES, PROPERTIES, FUNCTIONS, TYPES or VARIABLES, found 'STREAMZ'"
    );
    assert_eq!(
        error("SELECT * FROM s WINDOW TUMBLING (SIZE 10 FORTNIGHTS);"),
        "line 1:42: Syntax error: expected a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS), found 'FORTNIGHTS'"
    );
    assert_eq!(error("SELECT * FROM s EMIT;"), "line 1:21: Syntax error: expected CHANGES or FINAL, found ';'");
    assert_eq!(error("SELECT * FROM s WHERE a = 1 b;"), "line 1:29: Syntax error: expected ';', found 'B'");
    assert_eq!(error("SELECT * FROM ${missing};"), "line 1:15: Syntax error: the variable 'missing' is not defined");
    assert_eq!(error("CREATE STREAM s (a INT) AS SELECT * FROM t;"), "CREATE STREAM AS SELECT takes its columns from the query; remove the column list");
    assert_eq!(
        error("SELECT * FROM s WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 2 MINUTES);"),
        "a hopping window's advance must be positive and at most its size"
    );
    assert_eq!(
        error("CREATE TABLE t (d DECIMAL(40, 2)) WITH (kafka_topic='t');"),
        "DECIMAL(40, 2): the precision must be 1 to 38 and the scale at most the precision"
    );
    assert_eq!(error("SELECT 'unclosed FROM s;"), "line 1:8: the string is not closed");
    let deep = format!("SELECT {}1{} FROM s;", "(".repeat(10_000), ")".repeat(10_000));
    assert!(error(&deep).contains("expressions nest more than 64 deep"), "a hostile statement is refused, not a stack overflow");
    let negated = format!("SELECT {}1 FROM s;", "- ".repeat(10_000));
    assert!(error(&negated).contains("nest more than"));
    let typed = format!("CREATE STREAM s (a {}INT{}) WITH (kafka_topic='t');", "ARRAY<".repeat(10_000), ">".repeat(10_000));
    assert!(error(&typed).contains("types nest more than 64 deep"));
}
