//! Content: reusable blocks and templates with one variant per channel family, rendered with
//! a person's traits through minijinja. Rendering is strict: a variable without a value is an
//! error that names it (the send is blocked and recorded), never a blank — unless the template
//! says what to do (`{{ profile.first_name | default("there") }}`, `{% if profile.vip is
//! defined %}`). Publishing checks the variables a template uses against the workspace's
//! traits, so a typo is found before anything is sent.

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

/// A field's template source is at most this long.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// A rendered field is at most this long.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// Instructions one render may run: far more than any real message needs, far less than a
/// hostile loop wants.
const FUEL: u64 = 50_000;
/// Nested includes, loops and calls.
const RECURSION_LIMIT: usize = 32;
/// The variables a template may use at the top level.
const ROOTS: [&str; 2] = ["profile", "journey"];
const JOURNEY_VARIABLES: [&str; 2] = ["journey.name", "journey.step"];
/// The engine's own globals, which static analysis lists like variables.
const ENGINE_GLOBALS: [&str; 7] = ["range", "dict", "namespace", "debug", "cycler", "joiner", "loop"];

/// The channel families content has a variant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VariantKind {
    Email,
    Sms,
    Push,
    Ad,
    CallCenter,
    DirectMail,
    Web,
}

impl VariantKind {
    pub const ALL: [VariantKind; 7] = [
        VariantKind::Email,
        VariantKind::Sms,
        VariantKind::Push,
        VariantKind::Ad,
        VariantKind::CallCenter,
        VariantKind::DirectMail,
        VariantKind::Web,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VariantKind::Email => "email",
            VariantKind::Sms => "sms",
            VariantKind::Push => "push",
            VariantKind::Ad => "ad",
            VariantKind::CallCenter => "call_center",
            VariantKind::DirectMail => "direct_mail",
            VariantKind::Web => "web",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One channel family's version of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Variant {
    Email {
        subject: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        html: Option<String>,
    },
    Sms {
        text: String,
    },
    Push {
        title: String,
        body: String,
    },
    /// A creative reference for ad platforms (an asset id; it may use variables).
    Ad {
        creative: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        headline: Option<String>,
    },
    CallCenter {
        script: String,
    },
    DirectMail {
        body: String,
    },
    /// What an inbound system (website, kiosk, POS) shows.
    Web {
        html: String,
    },
}

impl Variant {
    pub fn kind(&self) -> VariantKind {
        match self {
            Variant::Email { .. } => VariantKind::Email,
            Variant::Sms { .. } => VariantKind::Sms,
            Variant::Push { .. } => VariantKind::Push,
            Variant::Ad { .. } => VariantKind::Ad,
            Variant::CallCenter { .. } => VariantKind::CallCenter,
            Variant::DirectMail { .. } => VariantKind::DirectMail,
            Variant::Web { .. } => VariantKind::Web,
        }
    }

    /// The fields, with whether each is required.
    pub fn fields(&self) -> Vec<(&'static str, Option<&str>, bool)> {
        match self {
            Variant::Email { subject, body, html } => {
                vec![
                    ("subject", Some(subject), true),
                    ("body", Some(body), true),
                    ("html", html.as_deref(), false),
                ]
            }
            Variant::Sms { text } => vec![("text", Some(text), true)],
            Variant::Push { title, body } => vec![("title", Some(title), true), ("body", Some(body), true)],
            Variant::Ad { creative, headline } => {
                vec![("creative", Some(creative), true), ("headline", headline.as_deref(), false)]
            }
            Variant::CallCenter { script } => vec![("script", Some(script), true)],
            Variant::DirectMail { body } => vec![("body", Some(body), true)],
            Variant::Web { html } => vec![("html", Some(html), true)],
        }
    }
}

/// A template: at most one variant per channel family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub variants: Vec<Variant>,
}

/// One thing wrong with content, where, and a sentence a marketer understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentProblem {
    pub code: &'static str,
    pub variant: Option<String>,
    pub field: Option<String>,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for ContentProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the content has no variant for this channel")]
    NoVariant,
    #[error("a variable has no value for this person: {0}")]
    MissingVariable(String),
    #[error("the template does too much work")]
    TooExpensive,
    #[error("the rendered text is longer than 256 KB")]
    TooLarge,
    #[error("the template could not be rendered: {0}")]
    Failed(String),
}

impl RenderError {
    pub fn code(&self) -> &'static str {
        match self {
            RenderError::NoVariant => "no_variant",
            RenderError::MissingVariable(_) => "missing_variable",
            RenderError::TooExpensive => "too_expensive",
            RenderError::TooLarge => "too_large",
            RenderError::Failed(_) => "render_failed",
        }
    }
}

/// A rendered variant: field name → text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub fields: BTreeMap<String, String>,
}

/// What validation found out about a template.
#[derive(Debug, Clone, Default)]
pub struct TemplateInfo {
    variables: BTreeSet<String>,
}

impl TemplateInfo {
    /// Every variable path the template (and the blocks it includes) may read.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(String::as_str)
    }
}

/// A workspace's blocks, checked as a whole (names, syntax, includes, no cycles).
#[derive(Debug, Clone)]
pub struct ContentLibrary {
    blocks: BTreeMap<String, String>,
}

impl ContentLibrary {
    pub fn new(blocks: &BTreeMap<String, String>) -> Result<Self, Vec<ContentProblem>> {
        let mut problems = Vec::new();
        for (name, body) in blocks {
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !valid_name {
                problems.push(problem(
                    "invalid_block_name",
                    None,
                    None,
                    None,
                    format!("\"{name}\" is not a block name: use 1 to 64 lowercase letters, digits, - or _."),
                ));
            }
            if body.len() > MAX_FIELD_BYTES {
                problems.push(problem(
                    "too_large",
                    None,
                    None,
                    None,
                    format!("The block \"{name}\" is over 64 KB."),
                ));
            }
        }
        let library = Self { blocks: blocks.clone() };
        let env = library.environment(false);
        for (name, body) in blocks {
            if let Err(error) = env.template_from_named_str(name, body) {
                problems.push(syntax_problem(&format!("block {name}"), None, &error));
                continue;
            }
            for included in includes(body) {
                if !blocks.contains_key(&included) {
                    problems.push(problem(
                        "unknown_block",
                        None,
                        None,
                        None,
                        format!("The block \"{name}\" includes \"{included}\", which does not exist."),
                    ));
                }
            }
        }
        if let Some(cycle) = library.include_cycle() {
            problems.push(problem(
                "include_cycle",
                None,
                None,
                None,
                format!("Blocks include each other in a circle: {}.", cycle.join(" → ")),
            ));
        }
        if problems.is_empty() { Ok(library) } else { Err(problems) }
    }

    /// Checks a template: one variant per family, required fields filled, sound syntax, known
    /// blocks, and only known variables (`known` is asked about each profile variable's path
    /// without its `profile.` prefix).
    pub fn validate(
        &self,
        template: &Template,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<TemplateInfo, Vec<ContentProblem>> {
        let mut problems = Vec::new();
        let mut info = TemplateInfo::default();
        let mut seen = BTreeSet::new();
        if template.variants.is_empty() {
            problems.push(problem("no_variant", None, None, None, "The content has no variant.".into()));
        }
        let env = self.environment(false);
        for variant in &template.variants {
            let kind = variant.kind().as_str();
            if !seen.insert(variant.kind()) {
                problems.push(problem(
                    "duplicate_variant",
                    Some(kind),
                    None,
                    None,
                    format!("The content has two {kind} variants."),
                ));
            }
            for (field, source, required) in variant.fields() {
                let Some(source) = source else { continue };
                let place = format!("The {} {field}", kind.replace('_', " "));
                if required && source.trim().is_empty() {
                    problems.push(problem(
                        "empty_field",
                        Some(kind),
                        Some(field),
                        None,
                        format!("{place} is empty."),
                    ));
                    continue;
                }
                if source.len() > MAX_FIELD_BYTES {
                    problems.push(problem(
                        "too_large",
                        Some(kind),
                        Some(field),
                        None,
                        format!("{place} is over 64 KB."),
                    ));
                    continue;
                }
                let compiled = match env.template_from_str(source) {
                    Ok(compiled) => compiled,
                    Err(error) => {
                        let mut p = syntax_problem(&place, Some(kind), &error);
                        p.field = Some(field.to_owned());
                        problems.push(p);
                        continue;
                    }
                };
                let mut variables: BTreeSet<String> =
                    compiled.undeclared_variables(true).into_iter().collect();
                for included in includes(source) {
                    match self.blocks.get(&included) {
                        Some(_) => variables.extend(self.block_variables(&included)),
                        None => problems.push(problem(
                            "unknown_block",
                            Some(kind),
                            Some(field),
                            None,
                            format!("{place} includes \"{included}\", which does not exist."),
                        )),
                    }
                }
                for variable in &variables {
                    if let Some(message) = unknown_variable(variable, known) {
                        problems.push(problem(
                            "unknown_variable",
                            Some(kind),
                            Some(field),
                            None,
                            format!("{place} uses \"{variable}\", {message}."),
                        ));
                    }
                }
                info.variables.extend(variables);
            }
        }
        if problems.is_empty() { Ok(info) } else { Err(problems) }
    }

    /// Compiles a template once for many renders.
    pub fn prepare(&self, template: &Template) -> Result<PreparedTemplate, Vec<ContentProblem>> {
        self.validate(template, &|_| true)?;
        let mut text = self.environment(false);
        let mut html = self.environment(true);
        let mut fields: BTreeMap<VariantKind, Vec<(&'static str, String, bool)>> = BTreeMap::new();
        for variant in &template.variants {
            for (field, source, _) in variant.fields() {
                let Some(source) = source else { continue };
                let escaped = field == "html";
                let name = format!("@{}.{field}", variant.kind().as_str());
                let env = if escaped { &mut html } else { &mut text };
                env.add_template_owned(name.clone(), source.to_owned())
                    .map_err(|error| vec![syntax_problem(&name, Some(variant.kind().as_str()), &error)])?;
                fields.entry(variant.kind()).or_default().push((field, name, escaped));
            }
        }
        Ok(PreparedTemplate { text, html, fields })
    }

    /// An environment holding every block: strict about undefined values, bounded in work
    /// and depth, escaping everything for HTML fields and nothing for plain text.
    fn environment(&self, escape_html: bool) -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.set_recursion_limit(RECURSION_LIMIT);
        env.set_auto_escape_callback(move |_| if escape_html { AutoEscape::Html } else { AutoEscape::None });
        for (name, body) in &self.blocks {
            // Syntax errors are reported by `new`; a broken block only fails where included.
            let _ = env.add_template_owned(name.clone(), body.clone());
        }
        env
    }

    fn block_variables(&self, name: &str) -> BTreeSet<String> {
        let env = self.environment(false);
        let mut variables = BTreeSet::new();
        let mut stack = vec![name.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(block) = stack.pop() {
            if !seen.insert(block.clone()) {
                continue;
            }
            if let Ok(template) = env.get_template(&block) {
                variables.extend(template.undeclared_variables(true));
            }
            if let Some(body) = self.blocks.get(&block) {
                stack.extend(includes(body));
            }
        }
        variables
    }

    fn include_cycle(&self) -> Option<Vec<String>> {
        fn visit(
            library: &ContentLibrary,
            block: &str,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) -> Option<Vec<String>> {
            if let Some(start) = path.iter().position(|b| b == block) {
                let mut cycle = path[start..].to_vec();
                cycle.push(block.to_owned());
                return Some(cycle);
            }
            if done.contains(block) {
                return None;
            }
            path.push(block.to_owned());
            for included in library.blocks.get(block).map(|b| includes(b)).unwrap_or_default() {
                if let Some(cycle) = visit(library, &included, path, done) {
                    return Some(cycle);
                }
            }
            path.pop();
            done.insert(block.to_owned());
            None
        }
        let mut done = BTreeSet::new();
        self.blocks.keys().find_map(|block| visit(self, block, &mut Vec::new(), &mut done))
    }
}

/// A template compiled for rendering.
pub struct PreparedTemplate {
    text: Environment<'static>,
    html: Environment<'static>,
    fields: BTreeMap<VariantKind, Vec<(&'static str, String, bool)>>,
}

impl std::fmt::Debug for PreparedTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedTemplate").field("variants", &self.fields.keys().collect::<Vec<_>>()).finish()
    }
}

impl PreparedTemplate {
    pub fn render(&self, kind: VariantKind, context: &serde_json::Value) -> Result<Rendered, RenderError> {
        let fields = self.fields.get(&kind).ok_or(RenderError::NoVariant)?;
        let mut rendered = BTreeMap::new();
        for (field, name, escaped) in fields {
            let env = if *escaped { &self.html } else { &self.text };
            let template = env.get_template(name).map_err(|e| RenderError::Failed(e.to_string()))?;
            let mut out = LimitedWriter::default();
            template
                .render_captured_to(context, &mut out)
                .map(drop)
                .map_err(|error| render_error(&error, &out))?;
            let text = String::from_utf8(out.bytes).map_err(|e| RenderError::Failed(e.to_string()))?;
            rendered.insert((*field).to_owned(), text);
        }
        Ok(Rendered { fields: rendered })
    }
}

/// Collects output and refuses to grow past [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct LimitedWriter {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl Write for LimitedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn render_error(error: &minijinja::Error, out: &LimitedWriter) -> RenderError {
    if out.overflowed {
        return RenderError::TooLarge;
    }
    match error.kind() {
        ErrorKind::OutOfFuel => RenderError::TooExpensive,
        ErrorKind::UndefinedError => {
            let line = error.line().map(|l| format!(" (line {l})")).unwrap_or_default();
            RenderError::MissingVariable(format!("{}{line}", error.detail().unwrap_or("undefined value")))
        }
        _ => RenderError::Failed(error.to_string()),
    }
}

/// Why a variable cannot be used, or `None` when it can.
fn unknown_variable(variable: &str, known: &dyn Fn(&str) -> bool) -> Option<String> {
    let root = variable.split('.').next().unwrap_or(variable);
    if ENGINE_GLOBALS.contains(&root) {
        return None;
    }
    if !ROOTS.contains(&root) {
        return Some("which does not exist (variables start with profile. or journey.)".into());
    }
    if root == "journey" {
        return (!JOURNEY_VARIABLES.contains(&variable))
            .then(|| "which does not exist (journey.name, journey.step)".into());
    }
    match variable.strip_prefix("profile.") {
        Some(path) if known(path) => None,
        Some(_) => Some("which no profile has".into()),
        // `profile` itself (a loop over all traits): fine.
        None => None,
    }
}

/// The blocks a template includes by name (`{% include "footer" %}`).
fn includes(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("%}") else { break };
        let tag = after[..end].trim().trim_start_matches('-').trim();
        if let Some(argument) = tag.strip_prefix("include") {
            let argument = argument.trim();
            for quote in ['"', '\''] {
                if let Some(inner) = argument.strip_prefix(quote)
                    && let Some(close) = inner.find(quote)
                {
                    found.push(inner[..close].to_owned());
                }
            }
        }
        rest = &after[end + 2..];
    }
    found
}

fn syntax_problem(place: &str, variant: Option<&str>, error: &minijinja::Error) -> ContentProblem {
    let detail = error.detail().unwrap_or("the template cannot be read");
    let line = error.line();
    let at = line.map(|l| format!(" on line {l}")).unwrap_or_default();
    problem("syntax", variant, None, line, format!("{place} has a mistake{at}: {detail}."))
}

fn problem(
    code: &'static str,
    variant: Option<&str>,
    field: Option<&str>,
    line: Option<usize>,
    message: String,
) -> ContentProblem {
    ContentProblem {
        code,
        variant: variant.map(str::to_owned),
        field: field.map(str::to_owned),
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(value: serde_json::Value) -> Template {
        serde_json::from_value(value).unwrap()
    }

    fn library(blocks: &[(&str, &str)]) -> ContentLibrary {
        ContentLibrary::new(&blocks.iter().map(|(n, b)| ((*n).to_owned(), (*b).to_owned())).collect())
            .unwrap()
    }

    fn codes(problems: &[ContentProblem]) -> Vec<&'static str> {
        problems.iter().map(|p| p.code).collect()
    }

    fn context() -> serde_json::Value {
        json!({"profile": {"id": "p1", "first_name": "Ada", "address": {"city": "Paris"}, "vip": true},
               "journey": {"name": "Welcome", "step": "s1"}})
    }

    #[test]
    fn every_variant_renders_with_traits_and_blocks() {
        let library =
            library(&[("footer", "-- {{ journey.name }} team"), ("sig", "{% include \"footer\" %}!")]);
        let t = template(json!({"variants": [
            {"kind": "email", "subject": "Hi {{ profile.first_name }}", "body": "From {{ profile.address.city }} {% include 'sig' %}",
             "html": "<p>{{ profile.first_name ~ ' & co' }}</p>"},
            {"kind": "sms", "text": "Hi {{ profile.first_name }}"},
            {"kind": "push", "title": "T", "body": "B {{ journey.step }}"},
            {"kind": "ad", "creative": "asset-{{ profile.id }}"},
            {"kind": "call_center", "script": "Ask for {{ profile.first_name }}"},
            {"kind": "direct_mail", "body": "Dear {{ profile.first_name }}"},
            {"kind": "web", "html": "<b>{{ '<x>' }}</b>"}]}));
        let prepared = library.prepare(&t).unwrap();
        let email = prepared.render(VariantKind::Email, &context()).unwrap();
        assert_eq!(email.fields["subject"], "Hi Ada");
        assert_eq!(email.fields["body"], "From Paris -- Welcome team!");
        assert_eq!(email.fields["html"], "<p>Ada &amp; co</p>", "html fields are escaped");
        assert_eq!(prepared.render(VariantKind::Sms, &context()).unwrap().fields["text"], "Hi Ada");
        assert_eq!(prepared.render(VariantKind::Ad, &context()).unwrap().fields["creative"], "asset-p1");
        assert_eq!(prepared.render(VariantKind::Web, &context()).unwrap().fields["html"], "<b>&lt;x&gt;</b>");
        let sms = template(json!({"variants": [{"kind": "sms", "text": "a & b < c"}]}));
        assert_eq!(
            library.prepare(&sms).unwrap().render(VariantKind::Sms, &context()).unwrap().fields["text"],
            "a & b < c"
        );
        assert_eq!(
            library.prepare(&sms).unwrap().render(VariantKind::Push, &context()),
            Err(RenderError::NoVariant)
        );
    }

    #[test]
    fn a_missing_value_is_an_error_unless_the_template_handles_it() {
        let library = library(&[]);
        let strict = template(json!({"variants": [{"kind": "sms", "text": "Hi {{ profile.nickname }}"}]}));
        let error = library.prepare(&strict).unwrap().render(VariantKind::Sms, &context()).unwrap_err();
        assert_eq!(error.code(), "missing_variable");
        let handled = template(json!({"variants": [{"kind": "sms",
            "text": "Hi {{ profile.nickname | default('there') }}{% if profile.vip_level is defined %}!{% endif %}"}]}));
        let rendered = library.prepare(&handled).unwrap().render(VariantKind::Sms, &context()).unwrap();
        assert_eq!(rendered.fields["text"], "Hi there");
    }

    #[test]
    fn validation_finds_every_problem() {
        let library = library(&[]);
        let known = |path: &str| path == "first_name" || path.starts_with("address");
        let bad = template(json!({"variants": [
            {"kind": "sms", "text": "Hi {{ profile.frist_name }} {{ account.id }} {{ journey.secret }}"},
            {"kind": "sms", "text": "again"},
            {"kind": "push", "title": " ", "body": "{% if %}"},
            {"kind": "email", "subject": "{{ profile.address.city }}", "body": "{% include 'nope' %}"}]}));
        let problems = library.validate(&bad, &known).unwrap_err();
        let found = codes(&problems);
        for code in ["unknown_variable", "duplicate_variant", "empty_field", "syntax", "unknown_block"] {
            assert!(found.contains(&code), "{code} in {problems:?}");
        }
        assert_eq!(found.iter().filter(|c| **c == "unknown_variable").count(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("profile.frist_name") && p.message.contains("no profile has"))
        );
        let good = template(
            json!({"variants": [{"kind": "sms", "text": "{{ profile.first_name }} {{ profile.address.city }}"}]}),
        );
        let info = library.validate(&good, &known).unwrap();
        assert_eq!(info.variables().collect::<Vec<_>>(), vec!["profile.address.city", "profile.first_name"]);
        let huge = template(json!({"variants": [{"kind": "sms", "text": "x".repeat(MAX_FIELD_BYTES + 1)}]}));
        assert_eq!(codes(&library.validate(&huge, &known).unwrap_err()), vec!["too_large"]);
        assert_eq!(
            codes(&library.validate(&template(json!({"variants": []})), &known).unwrap_err()),
            vec!["no_variant"]
        );
    }

    #[test]
    fn blocks_are_checked_as_a_library_and_their_variables_count() {
        let blocks = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(n, b)| ((*n).to_owned(), (*b).to_owned())).collect()
        };
        let cycle = ContentLibrary::new(&blocks(&[("a", "{% include 'b' %}"), ("b", "{% include 'a' %}")]))
            .unwrap_err();
        assert!(codes(&cycle).contains(&"include_cycle"), "{cycle:?}");
        let unknown = ContentLibrary::new(&blocks(&[("a", "{% include 'zzz' %}")])).unwrap_err();
        assert_eq!(codes(&unknown), vec!["unknown_block"]);
        let bad_name = ContentLibrary::new(&blocks(&[("Bad Name", "x")])).unwrap_err();
        assert_eq!(codes(&bad_name), vec!["invalid_block_name"]);
        let broken = ContentLibrary::new(&blocks(&[("a", "{{ oops")])).unwrap_err();
        assert_eq!(codes(&broken), vec!["syntax"]);
        let library = library(&[("footer", "{{ profile.plan }}")]);
        let uses_block = template(json!({"variants": [{"kind": "sms", "text": "{% include 'footer' %}"}]}));
        let problems = library.validate(&uses_block, &|path| path == "first_name").unwrap_err();
        assert!(problems[0].message.contains("profile.plan"), "{problems:?}");
    }

    #[test]
    fn hostile_templates_are_bounded() {
        let library = library(&[]);
        let endless = template(
            json!({"variants": [{"kind": "sms", "text": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"}]}),
        );
        let error = library.prepare(&endless).unwrap().render(VariantKind::Sms, &context()).unwrap_err();
        assert_eq!(error, RenderError::TooExpensive);
        let wide = template(
            json!({"variants": [{"kind": "sms", "text": "{% for i in range(300) %}{{ 'x' * 1000 }}{% endfor %}"}]}),
        );
        let error = library.prepare(&wide).unwrap().render(VariantKind::Sms, &context()).unwrap_err();
        assert_eq!(error, RenderError::TooLarge);
    }

    #[test]
    fn unicode_and_many_renders() {
        let library = library(&[]);
        let t = template(
            json!({"variants": [{"kind": "sms", "text": "Bonjour {{ profile.first_name }} ☀️ — à bientôt"}]}),
        );
        let prepared = library.prepare(&t).unwrap();
        let ctx = json!({"profile": {"first_name": "Zoë"}});
        for _ in 0..10_000 {
            assert_eq!(
                prepared.render(VariantKind::Sms, &ctx).unwrap().fields["text"],
                "Bonjour Zoë ☀️ — à bientôt"
            );
        }
    }
}
