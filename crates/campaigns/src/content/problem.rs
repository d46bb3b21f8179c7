//! Problems found while validating blocks and templates, worded for the marketer who wrote them.

use std::fmt;

use serde::Serialize;

use super::variant::{VariantKind, field_label};

/// One thing wrong with a block or a template.
///
/// `code` is stable snake_case for programs (the UI highlights by code and location); `message` is a
/// complete sentence for people. Location fields are filled when known:
/// - `variant` and `field` locate a template field (e.g. `email` / `subject`);
/// - `block` names the block the problem is in (alone when validating the library, together with
///   `variant`/`field` when a template uses a block that has the problem);
/// - `line` is 1-based, and relative to `block` when `block` is set, else to the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentProblem {
    pub code: &'static str,
    pub variant: Option<String>,
    pub field: Option<String>,
    pub block: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ContentProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for ContentProblem {}

/// Where a piece of content lives, so that problems can be located and worded ("The email subject").
#[derive(Debug, Clone, Copy)]
pub(crate) enum Location<'a> {
    /// A block of the library, validated on its own.
    Block { block: &'a str },
    /// A template field, possibly through a block it includes (then `block` is that block).
    Field { kind: VariantKind, field: &'static str, block: Option<&'a str> },
}

impl Location<'_> {
    /// The subject of a sentence: `The block "footer"` or `The email subject`.
    pub fn subject(&self) -> String {
        match self {
            Location::Block { block } => format!("The block \"{block}\""),
            Location::Field { kind, field, block: None } => {
                format!("The {} {}", kind.label(), field_label(field))
            }
            Location::Field { kind, field, block: Some(block) } => {
                format!("The {} {} (through the block \"{block}\")", kind.label(), field_label(field))
            }
        }
    }

    /// Builds a problem at this location.
    pub fn problem(&self, code: &'static str, line: Option<usize>, message: String) -> ContentProblem {
        let (variant, field, block) = match *self {
            Location::Block { block } => (None, None, Some(block.to_owned())),
            Location::Field { kind, field, block } => {
                (Some(kind.as_str().to_owned()), Some(field.to_owned()), block.map(str::to_owned))
            }
        };
        ContentProblem { code, variant, field, block, line, message }
    }
}

/// Builds a problem about the template as a whole (no field involved).
pub(crate) fn template_problem(
    code: &'static str,
    kind: Option<VariantKind>,
    message: String,
) -> ContentProblem {
    ContentProblem {
        code,
        variant: kind.map(|kind| kind.as_str().to_owned()),
        field: None,
        block: None,
        line: None,
        message,
    }
}

/// Stable problem codes, in one place so that the UI and the tests agree on them.
pub(crate) mod codes {
    pub const SYNTAX: &str = "syntax";
    pub const DUPLICATE_VARIANT: &str = "duplicate_variant";
    pub const NO_VARIANTS: &str = "no_variants";
    pub const EMPTY_FIELD: &str = "empty_field";
    pub const TOO_LARGE: &str = "too_large";
    pub const UNKNOWN_VARIABLE: &str = "unknown_variable";
    pub const UNKNOWN_BLOCK: &str = "unknown_block";
    pub const UNKNOWN_FILTER: &str = "unknown_filter";
    pub const UNKNOWN_TEST: &str = "unknown_test";
    pub const DYNAMIC_INCLUDE: &str = "dynamic_include";
    pub const INCLUDE_CYCLE: &str = "include_cycle";
    pub const INCLUDE_TOO_DEEP: &str = "include_too_deep";
    pub const INVALID_BLOCK_NAME: &str = "invalid_block_name";
}
