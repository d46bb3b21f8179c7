//! How minijinja is configured for marketing content, in one place.
//!
//! The guiding rule is that a message must never go out with a blank where a value should be
//! ("Hi ,"). A missing value is an error at render time unless the template says what to do about it
//! (`default(...)`, `is defined`, `if`).

use std::collections::{BTreeMap, BTreeSet};

use minijinja::value::{Rest, StringInput};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value, filters};

use super::{FUEL_PER_FIELD, RECURSION_LIMIT};

/// Semi-strict rather than strict: printing, iterating or transforming a missing value fails, but
/// testing it in a condition (`{% if profile.vip %}`) is simply false. Profiles routinely lack optional
/// traits, and failing a send because a condition looked at one would punish the careful template.
/// Printing is what must never produce a blank, and semi-strict refuses that just like strict does.
const UNDEFINED_BEHAVIOR: UndefinedBehavior = UndefinedBehavior::SemiStrict;

/// Whether an environment auto-escapes HTML. Decided per environment rather than per template name
/// because an included block is escaped according to *its own* name in minijinja, not according to the
/// template that includes it; so every block is compiled twice, once in each environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escaping {
    PlainText,
    Html,
}

/// Builds an environment with the content rules but no templates.
pub(crate) fn new_environment(escaping: Escaping) -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UNDEFINED_BEHAVIOR);
    environment.set_fuel(Some(FUEL_PER_FIELD));
    environment.set_recursion_limit(RECURSION_LIMIT);
    // The `debug` feature is enabled only for `Error::range` (used to name a missing variable); the debug
    // *mode* would copy the template source and variables into every error, so it stays off.
    environment.set_debug(false);
    // Text channels are whitespace-sensitive: a `{% if %}` on its own line must not leave an empty line.
    environment.set_trim_blocks(true);
    environment.set_lstrip_blocks(true);
    match escaping {
        Escaping::PlainText => environment.set_auto_escape_callback(|_| AutoEscape::None),
        Escaping::Html => environment.set_auto_escape_callback(|_| AutoEscape::Html),
    }
    environment.set_formatter(|output, state, value| {
        if value.is_none() {
            return Err(Error::new(ErrorKind::InvalidOperation, "an empty value (none) cannot be printed"));
        }
        minijinja::escape_formatter(output, state, value)
    });
    install_strict_filters(&mut environment);
    environment
}

/// Replaces the few built-in filters that turn a missing value into an empty string without complaint
/// (found by probing minijinja 2.24: `join`, `escape`/`e` and `format` accept undefined values, and
/// `pprint` prints the word "undefined").
fn install_strict_filters(environment: &mut Environment<'static>) {
    environment.add_filter("escape", strict_escape);
    environment.add_filter("e", strict_escape);
    environment.add_filter("join", strict_join);
    environment.add_filter("format", strict_format);
    environment.remove_filter("pprint");
}

fn refuse_undefined(value: &Value) -> Result<(), Error> {
    if value.is_undefined() { Err(Error::from(ErrorKind::UndefinedError)) } else { Ok(()) }
}

fn strict_escape(state: &State, value: &Value) -> Result<Value, Error> {
    refuse_undefined(value)?;
    filters::escape(state, value)
}

fn strict_join(state: &State, value: &Value, joiner: Option<StringInput<'_>>) -> Result<Value, Error> {
    refuse_undefined(value)?;
    if value.as_str().is_none() {
        for item in value.try_iter()? {
            refuse_undefined(&item)?;
        }
    }
    filters::join(state, value, joiner)
}

fn strict_format(state: &State, format_string: &Value, arguments: Rest<Value>) -> Result<Value, Error> {
    refuse_undefined(format_string)?;
    for argument in arguments.iter() {
        refuse_undefined(argument)?;
    }
    filters::format(state, format_string, arguments)
}

/// Names of the environment's global functions (`range`, `dict`, `namespace`): minijinja reports them
/// among a template's undeclared variables, but they are not variables a marketer has to provide.
pub(crate) fn global_names(environment: &Environment<'_>) -> BTreeSet<String> {
    environment.globals().map(|(name, _)| name.to_owned()).collect()
}

/// Converts the caller's JSON context into a template value, dropping `null` object members so that a
/// trait set to null behaves exactly like a missing trait (minijinja would otherwise print "none").
pub(crate) fn context_value(json: &serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(boolean) => Value::from(*boolean),
        serde_json::Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Value::from(integer)
            } else if let Some(unsigned) = number.as_u64() {
                Value::from(unsigned)
            } else {
                number.as_f64().map_or_else(|| Value::from(number.to_string()), Value::from)
            }
        }
        serde_json::Value::String(text) => Value::from(text.as_str()),
        serde_json::Value::Array(items) => Value::from(items.iter().map(context_value).collect::<Vec<_>>()),
        serde_json::Value::Object(members) => Value::from(
            members
                .iter()
                .filter(|(_, member)| !member.is_null())
                .map(|(name, member)| (name.clone(), context_value(member)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Whether a dotted variable path is absent from the JSON context (null counts as absent).
/// A path that goes through a non-object (a list, a string) cannot be judged and counts as present.
pub(crate) fn is_missing_from_context(context: &serde_json::Value, path: &str) -> bool {
    let mut current = context;
    for segment in path.split('.') {
        match current {
            serde_json::Value::Object(members) => match members.get(segment) {
                Some(member) if !member.is_null() => current = member,
                _ => return true,
            },
            _ => return false,
        }
    }
    false
}
