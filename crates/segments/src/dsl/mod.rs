//! The text form of a segment definition, for people:
//!
//! ```text
//! trait country = "FR" and trait lifetime_value >= 500
//! and not performed "Order Completed" within 30 days
//! and consents to marketing on email and has email
//! ```
//!
//! [`parse`] reads it into the tree of [`crate::ast`]; [`print`] writes a tree back. The two are
//! inverse: `parse(print(c)) == c` for every normalised definition.

mod lex;
mod parse;
mod print;

pub use parse::{MAX_TEXT_BYTES, parse};
pub use print::print;

#[cfg(test)]
mod tests;
