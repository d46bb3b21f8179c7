use super::{parse, print};
use crate::SegmentsError;
use crate::ast::{
    Aggregate, ComputedTrait, Condition, Measure, Op, PropertyFilter, SequenceStep, TimeUnit, Value, Window,
};

/// Every form the language has, in its canonical printing.
const CANONICAL: &[&str] = &[
    r#"trait plan = "pro""#,
    r#"trait plan != "pro""#,
    "trait age < 18",
    "trait age <= 18.5",
    "trait score > -3",
    "trait score >= 0",
    r#"trait country in ("FR", "BE", 3, true)"#,
    r#"trait email contains "@gmail.""#,
    r#"trait name starts_with "Dr ""#,
    "trait phone exists",
    "trait vip = true",
    "trait last_order_at < 30 days ago",
    "trait address.city = \"Lyon\"",
    r#"trait "first name" = "Zoë \"Z\" \\ \n""#,
    r#"trait "and" = 1"#,
    "last_seen < 30 days ago",
    r#"first_seen >= "2026-01-01""#,
    "event_count > 10",
    "revenue >= 99.99",
    r#"first_channel in ("email", "web")"#,
    r#"performed "Order Completed""#,
    r#"performed "Order Completed" within 30 days"#,
    r#"performed "Order Completed" where revenue > 50 count >= 2 within 1 day"#,
    r#"performed "Order Completed" where (revenue > 50 and currency = "EUR") sum(revenue) >= 500 within 12 weeks"#,
    r#"performed "Page Viewed" avg(properties.seconds) < 5 within 90 minutes"#,
    r#"performed "Product Viewed" then "Added To Cart" where sku starts_with "SKU-" then "Order Completed" within 7 days"#,
    "has email",
    "consents to marketing on email",
    "consents to marketing on any channel",
    "used channel web",
    "used device ios",
    r#"in segment "0192f0c4-8b7a-7cc4-9a57-0123456789ab""#,
    r#"trait a = 1 and trait b = 2 or trait c = 3"#,
    r#"trait a = 1 and (trait b = 2 or trait c = 3)"#,
    r#"not (trait a = 1 and trait b = 2)"#,
    r#"not not has email"#,
    r#"not (trait a = 1 or trait b = 2) and (trait c = 3 and trait d = 4)"#,
    r#"(trait a = 1 or trait b = 2) or trait c = 3"#,
];

#[test]
fn canonical_texts_print_back_unchanged() {
    for text in CANONICAL {
        let condition = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&print(&condition), text, "{condition:?}");
    }
}

#[test]
fn trees_survive_text_and_json() {
    for text in CANONICAL {
        let condition = parse(text).expect("parses");
        // Tree → text → tree.
        assert_eq!(parse(&print(&condition)).expect("reparses"), condition, "{text}");
        // Tree → JSON → tree.
        let json = serde_json::to_string(&condition).expect("json");
        assert_eq!(Condition::from_json(&json).expect("from json"), condition, "{json}");
    }
}

#[test]
fn the_text_reads_as_intended() {
    let parsed = parse(
        "trait country = \"FR\" and not performed \"Order Completed\" where revenue > 50 count >= 2 within 30 days\n\
         or performed \"A\" then \"B\" within 7 days",
    )
    .expect("parses");
    let expected = Condition::Or {
        conditions: vec![
            Condition::And {
                conditions: vec![
                    Condition::Trait {
                        name: "country".into(),
                        op: Op::Eq,
                        value: Some(Value::Text("FR".into())),
                    },
                    Condition::Not {
                        condition: Box::new(Condition::Event {
                            name: "Order Completed".into(),
                            filters: vec![PropertyFilter {
                                property: "revenue".into(),
                                op: Op::Gt,
                                value: Some(Value::Number(50.0)),
                            }],
                            measure: Some(Measure {
                                aggregate: Aggregate::Count,
                                property: None,
                                op: Op::Gte,
                                value: 2.0,
                            }),
                            within: Some(Window { amount: 30, unit: TimeUnit::Days }),
                        }),
                    },
                ],
            },
            Condition::Sequence {
                steps: vec![
                    SequenceStep { name: "A".into(), filters: vec![] },
                    SequenceStep { name: "B".into(), filters: vec![] },
                ],
                within: Window { amount: 7, unit: TimeUnit::Days },
            },
        ],
    };
    assert_eq!(parsed, expected);
    // Keywords ignore case, comments and line breaks are free.
    let loose = parse("TRAIT plan = \"pro\" # the paying ones\nAND Last_Seen < 2 Weeks Ago").expect("parses");
    assert_eq!(print(&loose), "trait plan = \"pro\" and last_seen < 2 weeks ago");
    assert!(matches!(loose, Condition::And { ref conditions } if matches!(conditions[1],
        Condition::Computed { name: ComputedTrait::LastSeen, .. })));
}

#[test]
fn groups_of_one_normalise_to_their_member() {
    let single = Condition::And { conditions: vec![Condition::Identity { kind: "email".into() }] };
    assert_eq!(print(&single), "has email");
    assert_eq!(parse(&print(&single)).expect("parses"), single.normalized());
}

fn syntax_error(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Err(SegmentsError::Syntax { line, column, message }) => (line, column, message),
        other => panic!("{text}: expected a syntax error, got {other:?}"),
    }
}

#[test]
fn errors_point_at_line_and_column_in_plain_words() {
    let (line, column, message) = syntax_error("trait plan = \"pro\"\nand plan = \"basic\"");
    assert_eq!((line, column), (2, 5));
    assert!(message.contains("write trait plan"), "{message}");

    let (line, column, message) = syntax_error("trait age >= ");
    assert_eq!((line, column), (1, 14));
    assert!(message.contains("expected a value"), "{message}");

    let (line, column, message) = syntax_error("performed Order");
    assert_eq!((line, column), (1, 11));
    assert!(message.contains("in quotes"), "{message}");

    let (_, _, message) = syntax_error("trait plan = \"pro");
    assert!(message.contains("closing quote"), "{message}");

    let (line, column, message) = syntax_error("(has email");
    assert_eq!((line, column), (1, 11));
    assert!(message.contains("`)`"), "{message}");

    let (_, _, message) = syntax_error("performed \"A\" then \"B\"");
    assert!(message.contains("within"), "{message}");

    let (_, _, message) = syntax_error("trait age ~ 3");
    assert!(message.contains("is not allowed"), "{message}");

    let (_, _, message) = syntax_error("trait plan = \"pro\" has email");
    assert!(message.contains("expected `and`, `or`"), "{message}");

    let (_, _, message) = syntax_error("");
    assert!(message.contains("empty"), "{message}");

    let (_, _, message) = syntax_error("performed \"A\" within 3 fortnights");
    assert!(message.contains("minutes, hours, days or weeks"), "{message}");
}

#[test]
fn meaningless_comparisons_are_refused() {
    for (text, expected) in [
        ("trait plan exists 3", "expected `and`"),
        ("trait plan in \"a\"", "expected `(`"),
        ("trait plan contains 3", "looks for a text"),
        ("trait vip < true", "true or false"),
        ("event_count > \"many\"", "holds a number"),
        ("last_seen > \"yesterday\"", "not a date"),
        ("revenue > 3 days ago", "only dates"),
        ("performed \"A\" sum > 3", "sum(revenue)"),
        ("performed \"A\" within 0 days", "whole number"),
        ("trait \"a\\\"b\" = 1", "quotes"),
    ] {
        let error = parse(text).expect_err(text).to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn hostile_input_is_bounded() {
    let deep = format!("{}has email{}", "(".repeat(200), ")".repeat(200));
    assert!(parse(&deep).expect_err("too deep").to_string().contains("deeper"));
    let nots = format!("{}has email", "not ".repeat(200));
    assert!(parse(&nots).expect_err("too deep").to_string().contains("deeper"));
    let wide = vec!["has email"; 300].join(" and ");
    assert!(parse(&wide).expect_err("too many").to_string().contains("more than"));
    let huge = format!("trait a = \"{}\"", "x".repeat(70_000));
    assert!(parse(&huge).expect_err("too long").to_string().contains("at most"));
    // JSON gets the same limits.
    let mut json = serde_json::json!({"type": "identity", "kind": "email"});
    for _ in 0..40 {
        json = serde_json::json!({"type": "not", "condition": json});
    }
    assert!(Condition::from_json(&json.to_string()).expect_err("too deep").to_string().contains("deeper"));
    assert!(
        Condition::from_json(r#"{"type": "trait", "name": "a", "op": "eq", "value": 1, "extra": 2}"#)
            .is_err()
    );
}
