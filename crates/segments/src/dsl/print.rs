//! Prints a definition in the text form. Parsing the result gives back the same tree: nested
//! groups of the same kind keep their parentheses, names and texts are quoted when they must be.

use crate::ast::{Condition, Measure, PropertyFilter, SequenceStep, Value};
use std::fmt::Write;

pub fn print(condition: &Condition) -> String {
    let mut out = String::new();
    write_condition(&mut out, condition, Context::Top);
    out
}

/// Where a condition is printed, which decides whether it needs parentheses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    InOr,
    InAnd,
    InNot,
}

fn write_condition(out: &mut String, condition: &Condition, context: Context) {
    match condition {
        Condition::Or { conditions } => {
            let parens = context != Context::Top;
            write_group(out, conditions, " or ", Context::InOr, parens);
        }
        Condition::And { conditions } => {
            let parens = matches!(context, Context::InAnd | Context::InNot);
            write_group(out, conditions, " and ", Context::InAnd, parens);
        }
        Condition::Not { condition } => {
            out.push_str("not ");
            write_condition(out, condition, Context::InNot);
        }
        Condition::Trait { name, op, value } => {
            out.push_str("trait ");
            write_name(out, name);
            write_comparison(out, *op, value.as_ref());
        }
        Condition::Computed { name, op, value } => {
            out.push_str(name.as_str());
            write_comparison(out, *op, value.as_ref());
        }
        Condition::Event { name, filters, measure, within } => {
            out.push_str("performed ");
            write_text(out, name);
            write_filters(out, filters);
            if let Some(measure) = measure {
                write_measure(out, measure);
            }
            if let Some(window) = within {
                let _ = write!(out, " within {window}");
            }
        }
        Condition::Sequence { steps, within } => {
            out.push_str("performed ");
            for (i, SequenceStep { name, filters }) in steps.iter().enumerate() {
                if i > 0 {
                    out.push_str(" then ");
                }
                write_text(out, name);
                write_filters(out, filters);
            }
            let _ = write!(out, " within {within}");
        }
        Condition::Identity { kind } => {
            let _ = write!(out, "has {kind}");
        }
        Condition::Consent { purpose, channel } => {
            let channel = if channel == "*" { "any channel" } else { channel };
            let _ = write!(out, "consents to {purpose} on {channel}");
        }
        Condition::Channel { channel } => {
            let _ = write!(out, "used channel {channel}");
        }
        Condition::Device { device } => {
            out.push_str("used device ");
            write_name(out, device);
        }
        Condition::Segment { id } => {
            let _ = write!(out, "in segment \"{id}\"");
        }
    }
}

fn write_group(out: &mut String, conditions: &[Condition], separator: &str, inner: Context, parens: bool) {
    // A group of one prints as its only member, which parses back as that member; stored
    // definitions are normalised (`Condition::normalized`) so this never loses anything.
    if let [only] = conditions {
        write_condition(out, only, if parens { Context::InNot } else { Context::Top });
        return;
    }
    if parens {
        out.push('(');
    }
    for (i, condition) in conditions.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        write_condition(out, condition, inner);
    }
    if parens {
        out.push(')');
    }
}

fn write_filters(out: &mut String, filters: &[PropertyFilter]) {
    match filters {
        [] => {}
        [only] => {
            out.push_str(" where ");
            write_filter(out, only);
        }
        many => {
            out.push_str(" where (");
            for (i, filter) in many.iter().enumerate() {
                if i > 0 {
                    out.push_str(" and ");
                }
                write_filter(out, filter);
            }
            out.push(')');
        }
    }
}

fn write_filter(out: &mut String, filter: &PropertyFilter) {
    write_name(out, &filter.property);
    write_comparison(out, filter.op, filter.value.as_ref());
}

fn write_measure(out: &mut String, measure: &Measure) {
    out.push(' ');
    out.push_str(measure.aggregate.as_str());
    if let Some(property) = &measure.property {
        out.push('(');
        write_name(out, property);
        out.push(')');
    }
    let _ = write!(out, " {} ", measure.op.symbol());
    write_number(out, measure.value);
}

fn write_comparison(out: &mut String, op: crate::ast::Op, value: Option<&Value>) {
    out.push(' ');
    out.push_str(op.symbol());
    if let Some(value) = value {
        out.push(' ');
        write_value(out, value);
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, *n),
        Value::Text(text) => write_text(out, text),
        Value::Ago { ago } => {
            let _ = write!(out, "{ago} ago");
        }
        Value::List(items) => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(')');
        }
    }
}

fn write_number(out: &mut String, n: f64) {
    // Rust prints the shortest text that reads back as the same f64.
    let _ = write!(out, "{n}");
}

fn write_text(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Words that read as part of the language are quoted when used as names, for the reader's sake.
const KEYWORDS: [&str; 14] = [
    "and",
    "or",
    "not",
    "in",
    "contains",
    "starts_with",
    "exists",
    "true",
    "false",
    "where",
    "then",
    "within",
    "ago",
    "trait",
];

fn write_name(out: &mut String, name: &str) {
    let bare = name.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        && !KEYWORDS.contains(&name.to_ascii_lowercase().as_str());
    if bare {
        out.push_str(name);
    } else {
        write_text(out, name);
    }
}
