//! A template compiled once and rendered per send, and the errors a render can end with.

use std::collections::BTreeMap;
use std::io;

use minijinja::{Environment, ErrorKind};
use serde::Serialize;

use super::MAX_RENDERED_BYTES;
use super::engine::{self, Escaping};
use super::library::TemplateInfo;
use super::problem::ContentProblem;
use super::variant::{VariantKind, field_label};

/// A validated template whose fields are compiled, ready to be rendered for many profiles.
///
/// Rendering only looks the compiled field up and runs it: nothing is parsed or compiled per send. The
/// environments are owned (`'static`), so a prepared template can be cached and shared between threads
/// (it is `Send + Sync`; wrap it in an `Arc`).
#[derive(Debug, Clone)]
pub struct PreparedTemplate {
    plain_environment: Environment<'static>,
    html_environment: Environment<'static>,
    fields: Vec<PreparedField>,
    info: TemplateInfo,
}

/// A compiled field and what is needed to explain its failures.
#[derive(Debug, Clone)]
pub(crate) struct PreparedField {
    pub kind: VariantKind,
    pub name: &'static str,
    /// Name of the field's template in its environment (`email.subject`).
    pub template_name: String,
    pub escaping: Escaping,
    /// Every variable the field uses (including through blocks), to name the one a profile lacks.
    pub variables: Vec<String>,
}

/// The rendered fields of one variant (field name → text), e.g. `subject` and `body` for an email.
/// Optional fields the template does not have are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    pub kind: VariantKind,
    pub fields: BTreeMap<&'static str, String>,
}

impl Rendered {
    /// The text of one field, if the variant has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Why a template could not be rendered for a profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template has no content for the requested channel family.
    #[error("the template has no {} version", kind.label())]
    NoVariant { kind: VariantKind },
    /// The profile (or journey) lacks a value the field prints or transforms without a fallback.
    /// `variable` is the dotted path when it can be determined, otherwise a description.
    #[error("the {} {} cannot be rendered for this profile: {variable} is missing", kind.label(), field_label(field))]
    MissingVariable { kind: VariantKind, field: &'static str, variable: String },
    /// The field ran out of fuel or recursion (a loop or nesting far beyond what content needs).
    #[error("the {} {} needs too much work to render; simplify its loops", kind.label(), field_label(field))]
    TooExpensive { kind: VariantKind, field: &'static str },
    /// The rendered field would exceed `limit_bytes`.
    #[error("the {} {} renders to more than {limit_bytes} bytes", kind.label(), field_label(field))]
    TooLarge { kind: VariantKind, field: &'static str, limit_bytes: usize },
    /// Any other template failure (a type error such as adding text to a number, ...).
    #[error("the {} {} cannot be rendered: {message}", kind.label(), field_label(field))]
    Template { kind: VariantKind, field: &'static str, message: String },
    /// The template did not pass validation (only from [`super::ContentLibrary::render`]).
    #[error("the template is not valid: {}", problems.first().map_or("", |problem| problem.message.as_str()))]
    InvalidTemplate { problems: Vec<ContentProblem> },
}

impl RenderError {
    /// A stable snake_case code for programs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::NoVariant { .. } => "no_variant",
            RenderError::MissingVariable { .. } => "missing_variable",
            RenderError::TooExpensive { .. } => "too_expensive",
            RenderError::TooLarge { .. } => "too_large",
            RenderError::Template { .. } => "template_error",
            RenderError::InvalidTemplate { .. } => "invalid_template",
        }
    }
}

impl PreparedTemplate {
    pub(crate) fn new(
        plain_environment: Environment<'static>,
        html_environment: Environment<'static>,
        fields: Vec<PreparedField>,
        info: TemplateInfo,
    ) -> Self {
        PreparedTemplate { plain_environment, html_environment, fields, info }
    }

    /// What the template uses (variables and blocks per variant).
    pub fn info(&self) -> &TemplateInfo {
        &self.info
    }

    /// The channel families the template has content for.
    pub fn kinds(&self) -> impl Iterator<Item = VariantKind> + '_ {
        self.info.variants.iter().map(|variant| variant.kind)
    }

    /// Renders the variant of `kind` with `context` (`{"profile": {...}, "journey": {...}}`).
    ///
    /// Each field is rendered separately, with its own fuel and output limit.
    pub fn render(&self, kind: VariantKind, context: &serde_json::Value) -> Result<Rendered, RenderError> {
        if self.info.variant(kind).is_none() {
            return Err(RenderError::NoVariant { kind });
        }
        let context_value = engine::context_value(context);
        let mut fields = BTreeMap::new();
        for field in self.fields.iter().filter(|field| field.kind == kind) {
            fields.insert(field.name, self.render_field(field, &context_value, context)?);
        }
        Ok(Rendered { kind, fields })
    }

    fn environment(&self, escaping: Escaping) -> &Environment<'static> {
        match escaping {
            Escaping::PlainText => &self.plain_environment,
            Escaping::Html => &self.html_environment,
        }
    }

    fn render_field(
        &self,
        field: &PreparedField,
        context_value: &minijinja::Value,
        context: &serde_json::Value,
    ) -> Result<String, RenderError> {
        let environment = self.environment(field.escaping);
        let template = environment.get_template(&field.template_name).map_err(|error| {
            RenderError::Template { kind: field.kind, field: field.name, message: error.to_string() }
        })?;
        let mut output = BoundedOutput { buffer: Vec::new(), limit: MAX_RENDERED_BYTES, exceeded: false };
        match template.render_captured_to(context_value, &mut output) {
            Ok(_) => Ok(output.into_string()),
            Err(_) if output.exceeded => Err(RenderError::TooLarge {
                kind: field.kind,
                field: field.name,
                limit_bytes: MAX_RENDERED_BYTES,
            }),
            Err(error) => Err(classify_error(&error, field, environment, context)),
        }
    }
}

/// An output that refuses to grow beyond `limit`, so a runaway template stops as soon as it passes it
/// (minijinja streams output to the writer as it renders).
struct BoundedOutput {
    buffer: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl BoundedOutput {
    fn into_string(self) -> String {
        // minijinja only writes `str` data, so this never needs the lossy path.
        String::from_utf8(self.buffer)
            .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
    }
}

impl io::Write for BoundedOutput {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + data.len() > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("rendered output is too large"));
        }
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// minijinja wraps an error raised inside an included block in one "bad include" error per level;
/// the innermost one says what actually went wrong.
fn root_cause(error: &minijinja::Error) -> &minijinja::Error {
    let mut current = error;
    while let Some(inner) =
        std::error::Error::source(current).and_then(|source| source.downcast_ref::<minijinja::Error>())
    {
        current = inner;
    }
    current
}

fn classify_error(
    error: &minijinja::Error,
    field: &PreparedField,
    environment: &Environment<'static>,
    context: &serde_json::Value,
) -> RenderError {
    let (kind, field_name) = (field.kind, field.name);
    let root = root_cause(error);
    let detail = root.detail().unwrap_or_default();
    match root.kind() {
        ErrorKind::OutOfFuel => RenderError::TooExpensive { kind, field: field_name },
        // minijinja refuses ranges over 100,000 items before fuel would stop the loop.
        ErrorKind::InvalidOperation
            if detail.contains("recursion limit") || detail.contains("range has too many elements") =>
        {
            RenderError::TooExpensive { kind, field: field_name }
        }
        ErrorKind::UndefinedError => {
            let variable =
                missing_variable(root, field, environment, context).unwrap_or_else(|| match root.line() {
                    Some(line) => format!("a value used on line {line}"),
                    None => "a value".to_owned(),
                });
            RenderError::MissingVariable { kind, field: field_name, variable }
        }
        // e.g. `profile.points + 1` when the profile has no points.
        ErrorKind::InvalidOperation if detail.contains("undefined") => {
            match missing_variable(root, field, environment, context) {
                Some(variable) => RenderError::MissingVariable { kind, field: field_name, variable },
                None => RenderError::Template { kind, field: field_name, message: root.to_string() },
            }
        }
        _ => RenderError::Template { kind, field: field_name, message: root.to_string() },
    }
}

/// Names the variable behind an undefined-value error.
///
/// minijinja's error does not carry the variable, only the source range of the failing expression (and,
/// for filters, just the filter's name). So: among the variables the field uses, take those absent from
/// this context, and pick the one written in the failing tag, preferring one inside the error's range.
/// Failing that (e.g. a loop variable such as `item.price`), take the dotted path at the error's range.
fn missing_variable(
    root: &minijinja::Error,
    field: &PreparedField,
    environment: &Environment<'static>,
    context: &serde_json::Value,
) -> Option<String> {
    let template = environment.get_template(root.name()?).ok()?;
    let source = template.source();
    let range = root.range().filter(|range| range.end <= source.len() && range.start <= range.end)?;
    let (tag_start, tag_end) = enclosing_tag(source, range.start, range.end);
    let tag = source.get(tag_start..tag_end)?;

    let best_candidate = field
        .variables
        .iter()
        .filter(|variable| engine::is_missing_from_context(context, variable))
        .filter_map(|variable| {
            let offset = tag_start + path_occurrences(tag, variable).next()?;
            let inside_range = (range.start..range.end).contains(&offset);
            // Inside the range first, then the leftmost (evaluated first), then the longest path.
            Some(((!inside_range, offset, usize::MAX - variable.len()), variable))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, variable)| variable.clone());
    best_candidate.or_else(|| path_at(source, range.start))
}

/// The `{{ ... }}` or `{% ... %}` tag around a byte range (or the range itself if none is found).
fn enclosing_tag(source: &str, start: usize, end: usize) -> (usize, usize) {
    let before = source.get(..start).unwrap_or_default();
    let after = source.get(end..).unwrap_or_default();
    let tag_start = [before.rfind("{{"), before.rfind("{%")].into_iter().flatten().max().unwrap_or(start);
    let tag_end = [after.find("}}"), after.find("%}")]
        .into_iter()
        .flatten()
        .min()
        .map_or(end, |offset| end + offset + 2);
    (tag_start, tag_end)
}

fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Offsets where `path` appears as a whole dotted path (not as the tail or middle of a longer name).
fn path_occurrences<'a>(text: &'a str, path: &'a str) -> impl Iterator<Item = usize> + 'a {
    let bytes = text.as_bytes();
    text.match_indices(path).map(|(offset, _)| offset).filter(move |&offset| {
        let end = offset + path.len();
        let starts_path = offset == 0 || !(is_path_byte(bytes[offset - 1]) || bytes[offset - 1] == b'.');
        let ends_path = bytes.get(end).is_none_or(|&byte| !is_path_byte(byte));
        starts_path && ends_path
    })
}

/// The dotted path (e.g. `item.price`) covering a byte range, if the range is on one.
fn path_at(source: &str, start: usize) -> Option<String> {
    let bytes = source.as_bytes();
    let is_path_or_dot = |byte: &u8| is_path_byte(*byte) || *byte == b'.';
    let path_start = start - bytes[..start].iter().rev().take_while(|byte| is_path_or_dot(byte)).count();
    let path_end = start + bytes[start..].iter().take_while(|byte| is_path_or_dot(byte)).count();
    let path = source.get(path_start..path_end)?.trim_matches('.');
    let is_identifier = |segment: &str| {
        segment.bytes().next().is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
            && segment.bytes().all(is_path_byte)
    };
    (!path.is_empty() && path.split('.').all(is_identifier)).then(|| path.to_owned())
}
