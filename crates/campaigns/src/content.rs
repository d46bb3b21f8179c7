//! Marketing content: reusable **blocks** and per-channel **templates**, rendered with a profile's traits.
//!
//! Content is written by marketers in the Jinja language (rendered by minijinja). The module is split so
//! that every concern can be read on its own:
//!
//! - [`variant`]: what a template is made of (one [`Variant`] per channel family);
//! - [`problem`]: the [`ContentProblem`]s a marketer sees when content is not valid;
//! - [`library`]: the [`ContentLibrary`] of blocks, which validates and prepares templates;
//! - [`prepared`]: the [`PreparedTemplate`] compiled once and rendered per send, and its [`RenderError`]s;
//! - `scan` and `engine` (private): how names used in a source are found, and how minijinja is set up.
//!
//! Why validation is so thorough: a template is written once but rendered for every profile a journey
//! reaches. Everything that can be caught when the marketer saves (a typo in a trait name, a missing
//! block, an include cycle) is caught then, so that a send fails only for reasons that depend on the
//! profile itself (a trait this particular profile lacks).
//!
//! The render context is a JSON object with two top-level variables, `profile` (the profile's traits, plus
//! its `id`) and `journey` (`name` and `step`). A JSON `null` is treated exactly like a missing value, so
//! that `default(...)` and `is defined` behave the same for both.

mod engine;
pub mod library;
pub mod prepared;
pub mod problem;
mod scan;
pub mod variant;

#[cfg(test)]
mod tests;

pub use library::{ContentLibrary, TemplateInfo, VariantInfo};
pub use prepared::{PreparedTemplate, RenderError, Rendered};
pub use problem::ContentProblem;
pub use variant::{Template, Variant, VariantKind};

/// Largest accepted source of a template field or of a block, in bytes.
///
/// Content is written by people; anything larger is almost certainly a pasted export or an attack.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// Largest rendered output of one field, in bytes. Loops over profile data could otherwise produce
/// arbitrarily large messages.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;

/// Instructions one field may execute while rendering (minijinja "fuel"). Real templates use a few
/// thousand at most; the limit stops hostile or accidental loops within milliseconds.
pub const FUEL_PER_FIELD: u64 = 100_000;

/// minijinja's recursion budget. Each include costs 10 and each nested `if`/`for` costs 1, so this leaves
/// room for [`MAX_INCLUDE_DEPTH`] nested blocks plus ordinary nesting.
pub const RECURSION_LIMIT: usize = 200;

/// How deeply blocks may include other blocks. Checked when the library is built so that rendering
/// never hits the recursion limit on valid content.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// Longest block name. Names appear in `{% include "..." %}` and in the editor, so they stay short.
pub const MAX_BLOCK_NAME_CHARS: usize = 64;

/// Names the render context provides at the top level (`experiment` holds the person's levels
/// in a multivariate test; which factors exist is checked when a journey is published).
pub const TOP_LEVEL_VARIABLES: [&str; 3] = ["profile", "journey", "experiment"];

/// The only attributes of `journey` a template may use.
pub const JOURNEY_ATTRIBUTES: [&str; 2] = ["name", "step"];
