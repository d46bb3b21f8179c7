//! The library of blocks, and the validation and preparation of templates against it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use minijinja::{Environment, ErrorKind};
use serde::Serialize;

use super::engine::{self, Escaping};
use super::prepared::{PreparedField, PreparedTemplate, RenderError, Rendered};
use super::problem::{ContentProblem, Location, codes, template_problem};
use super::scan::{BlockReference, SourceScan, scan_source};
use super::variant::{FieldSource, Template, VariantKind, is_html_field};
use super::{
    JOURNEY_ATTRIBUTES, MAX_BLOCK_NAME_CHARS, MAX_INCLUDE_DEPTH, MAX_SOURCE_BYTES, TOP_LEVEL_VARIABLES,
};

/// A workspace's reusable blocks (a footer, a legal notice, an email layout), compiled and checked.
///
/// Building the library compiles every block twice (once plain, once HTML-escaping, because an
/// included block is escaped according to its own environment, not to the field including it) and
/// rejects anything that would only fail at send time: syntax errors, references to blocks that do not
/// exist, include cycles, blocks nested too deeply, unknown filters or tests, and variables other than
/// `profile.*` and `journey.name`/`journey.step`. Blocks see only those variables: a block cannot rely
/// on a `{% set %}` of the template that includes it, so that every block can be checked on its own.
#[derive(Debug, Clone)]
pub struct ContentLibrary {
    plain_environment: Environment<'static>,
    html_environment: Environment<'static>,
    blocks: BTreeMap<String, BlockAnalysis>,
    /// Global functions (`range`, ...) that minijinja reports as undeclared variables.
    global_names: BTreeSet<String>,
}

/// What validation needs to know about a compiled block.
#[derive(Debug, Clone)]
struct BlockAnalysis {
    source: String,
    /// Blocks this block refers to by name (only those that exist).
    references: Vec<String>,
    /// Variables the block itself uses (dotted paths), without those of the blocks it includes.
    variables: BTreeSet<String>,
}

/// The variables and blocks each variant of a valid template uses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TemplateInfo {
    pub variants: Vec<VariantInfo>,
}

/// The variables (dotted paths such as `profile.address.city`, including those used inside included
/// blocks) and the blocks (transitively) one variant uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VariantInfo {
    pub kind: VariantKind,
    pub variables: BTreeSet<String>,
    pub blocks: BTreeSet<String>,
}

impl TemplateInfo {
    /// The information for one variant, if the template has it.
    pub fn variant(&self, kind: VariantKind) -> Option<&VariantInfo> {
        self.variants.iter().find(|variant| variant.kind == kind)
    }

    /// Every variable any variant uses.
    pub fn variables(&self) -> BTreeSet<&str> {
        self.variants.iter().flat_map(|variant| variant.variables.iter().map(String::as_str)).collect()
    }

    /// The profile traits the template reads, without the `profile.` prefix (e.g. `address.city`), which
    /// is what a caller checks against the workspace's trait definitions.
    pub fn profile_paths(&self) -> BTreeSet<&str> {
        self.variables().into_iter().filter_map(|variable| variable.strip_prefix("profile.")).collect()
    }
}

/// One field after analysis: where it is compiled and which variables it uses.
struct AnalysedField {
    kind: VariantKind,
    name: &'static str,
    template_name: String,
    escaping: Escaping,
    /// Every variable the field uses, including through blocks.
    variables: BTreeSet<String>,
    /// Every block the field includes, directly or not.
    blocks: BTreeSet<String>,
}

/// Everything learnt about a template: the environments holding its compiled fields, and its problems.
struct TemplateAnalysis {
    plain_environment: Environment<'static>,
    html_environment: Environment<'static>,
    fields: Vec<AnalysedField>,
    info: TemplateInfo,
    problems: Vec<ContentProblem>,
}

impl ContentLibrary {
    /// Compiles and checks the blocks (name → Jinja source). Returns every problem found, not just the
    /// first, so the marketer can fix them in one pass.
    pub fn new(blocks: &BTreeMap<String, String>) -> Result<Self, Vec<ContentProblem>> {
        let mut plain_environment = engine::new_environment(Escaping::PlainText);
        let mut html_environment = engine::new_environment(Escaping::Html);
        let global_names = engine::global_names(&plain_environment);
        let mut problems = Vec::new();
        let mut compiled: BTreeMap<String, String> = BTreeMap::new();

        for (name, source) in blocks {
            let location = Location::Block { block: name };
            if !is_valid_block_name(name) {
                problems.push(location.problem(
                    codes::INVALID_BLOCK_NAME,
                    None,
                    format!(
                        "The block name \"{name}\" is not valid: use 1 to {MAX_BLOCK_NAME_CHARS} lowercase \
                         letters, digits, \"_\" or \"-\"."
                    ),
                ));
                continue;
            }
            if let Some(problem) = size_problem(&location, source) {
                problems.push(problem);
                continue;
            }
            let compiled_plain = plain_environment.add_template_owned(name.clone(), source.clone());
            let compiled_html = html_environment.add_template_owned(name.clone(), source.clone());
            match compiled_plain.and(compiled_html) {
                Ok(()) => {
                    compiled.insert(name.clone(), source.clone());
                }
                Err(error) => problems.push(syntax_problem(&location, &error)),
            }
        }

        let mut analysed_blocks = BTreeMap::new();
        for (name, source) in compiled {
            let location = Location::Block { block: &name };
            let scan = scan_source(&source);
            problems.extend(unknown_filter_and_test_problems(&plain_environment, &scan, &location));
            let mut references = Vec::new();
            for reference in scan.block_references {
                match reference {
                    BlockReference::Named { name: referenced, .. } if blocks.contains_key(&referenced) => {
                        if !references.contains(&referenced) {
                            references.push(referenced);
                        }
                    }
                    reference => problems.push(reference_problem(&location, &reference)),
                }
            }
            let variables = undeclared_variables(&plain_environment, &name, &global_names);
            problems.extend(
                variables.iter().filter_map(|variable| check_variable(variable, &location, &source, None)),
            );
            analysed_blocks.insert(name.clone(), BlockAnalysis { source, references, variables });
        }
        problems.extend(include_graph_problems(&analysed_blocks));

        if problems.is_empty() {
            Ok(ContentLibrary { plain_environment, html_environment, blocks: analysed_blocks, global_names })
        } else {
            Err(problems)
        }
    }

    /// A library without blocks.
    pub fn empty() -> Self {
        let plain_environment = engine::new_environment(Escaping::PlainText);
        let global_names = engine::global_names(&plain_environment);
        ContentLibrary {
            plain_environment,
            html_environment: engine::new_environment(Escaping::Html),
            blocks: BTreeMap::new(),
            global_names,
        }
    }

    /// The names of the blocks, sorted.
    pub fn block_names(&self) -> impl Iterator<Item = &str> {
        self.blocks.keys().map(String::as_str)
    }

    /// Checks a template completely, as when a marketer saves it.
    ///
    /// `known` is asked about every profile variable the template uses, with the `profile.` prefix
    /// removed (`first_name`, `address.city`); it says whether the workspace defines such a trait, so
    /// that a typo like `profile.frist_name` is reported now instead of failing every send.
    pub fn validate(
        &self,
        template: &Template,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<TemplateInfo, Vec<ContentProblem>> {
        let analysis = self.analyse(template, Some(known));
        if analysis.problems.is_empty() { Ok(analysis.info) } else { Err(analysis.problems) }
    }

    /// Compiles a template once for many renders.
    ///
    /// Performs every check of [`ContentLibrary::validate`] except asking about profile traits (done at
    /// save time; traits may be deleted later, in which case the affected profiles fail with
    /// [`RenderError::MissingVariable`] rather than the whole template being refused).
    pub fn prepare(&self, template: &Template) -> Result<PreparedTemplate, Vec<ContentProblem>> {
        let analysis = self.analyse(template, None);
        if !analysis.problems.is_empty() {
            return Err(analysis.problems);
        }
        let fields = analysis
            .fields
            .into_iter()
            .map(|field| PreparedField {
                kind: field.kind,
                name: field.name,
                template_name: field.template_name,
                escaping: field.escaping,
                variables: field.variables.into_iter().collect(),
            })
            .collect();
        Ok(PreparedTemplate::new(
            analysis.plain_environment,
            analysis.html_environment,
            fields,
            analysis.info,
        ))
    }

    /// Prepares and renders in one go. Convenient for previews and tests; for sends, prepare once and
    /// call [`PreparedTemplate::render`] for each profile.
    pub fn render(
        &self,
        template: &Template,
        kind: VariantKind,
        context: &serde_json::Value,
    ) -> Result<Rendered, RenderError> {
        let prepared =
            self.prepare(template).map_err(|problems| RenderError::InvalidTemplate { problems })?;
        prepared.render(kind, context)
    }

    fn analyse(&self, template: &Template, known: Option<&dyn Fn(&str) -> bool>) -> TemplateAnalysis {
        let mut analysis = TemplateAnalysis {
            plain_environment: self.plain_environment.clone(),
            html_environment: self.html_environment.clone(),
            fields: Vec::new(),
            info: TemplateInfo::default(),
            problems: Vec::new(),
        };
        if template.variants.is_empty() {
            analysis.problems.push(template_problem(
                codes::NO_VARIANTS,
                None,
                "The template has no content yet; add at least one channel (for example an email or an SMS)."
                    .to_owned(),
            ));
        }
        let mut seen_kinds = BTreeSet::new();
        for variant in &template.variants {
            let kind = variant.kind();
            if !seen_kinds.insert(kind) {
                analysis.problems.push(template_problem(
                    codes::DUPLICATE_VARIANT,
                    Some(kind),
                    format!("The template has more than one {} version; keep only one.", kind.label()),
                ));
                continue;
            }
            let mut variant_info = VariantInfo { kind, variables: BTreeSet::new(), blocks: BTreeSet::new() };
            for field in variant.field_sources() {
                if let Some(analysed) = self.analyse_field(kind, field, known, &mut analysis) {
                    variant_info.variables.extend(analysed.variables.iter().cloned());
                    variant_info.blocks.extend(analysed.blocks.iter().cloned());
                    analysis.fields.push(analysed);
                }
            }
            analysis.info.variants.push(variant_info);
        }
        analysis
    }

    /// Checks and compiles one field into the analysis' environments. Returns `None` when the field
    /// cannot be compiled (its problems are recorded in the analysis either way).
    fn analyse_field(
        &self,
        kind: VariantKind,
        field: FieldSource<'_>,
        known: Option<&dyn Fn(&str) -> bool>,
        analysis: &mut TemplateAnalysis,
    ) -> Option<AnalysedField> {
        let location = Location::Field { kind, field: field.name, block: None };
        let problems = &mut analysis.problems;
        if field.source.trim().is_empty() {
            let advice = if field.required { "" } else { "; remove it or write some content" };
            problems.push(location.problem(
                codes::EMPTY_FIELD,
                None,
                format!("{} is empty{advice}.", location.subject()),
            ));
            return None;
        }
        if let Some(problem) = size_problem(&location, field.source) {
            problems.push(problem);
            return None;
        }
        let escaping = if is_html_field(field.name) { Escaping::Html } else { Escaping::PlainText };
        let environment = match escaping {
            Escaping::Html => &mut analysis.html_environment,
            Escaping::PlainText => &mut analysis.plain_environment,
        };
        // Block names cannot contain a dot, so field templates never collide with blocks.
        let template_name = format!("{kind}.{}", field.name);
        if let Err(error) = environment.add_template_owned(template_name.clone(), field.source.to_owned()) {
            problems.push(syntax_problem(&location, &error));
            return None;
        }

        let scan = scan_source(field.source);
        problems.extend(unknown_filter_and_test_problems(environment, &scan, &location));
        let mut included_blocks = Vec::new();
        for reference in scan.block_references {
            match reference {
                BlockReference::Named { name, .. } if self.blocks.contains_key(&name) => {
                    included_blocks.push(name);
                }
                reference => problems.push(reference_problem(&location, &reference)),
            }
        }

        let own_variables = undeclared_variables(environment, &template_name, &self.global_names);
        problems.extend(
            own_variables
                .iter()
                .filter_map(|variable| check_variable(variable, &location, field.source, known)),
        );
        let (block_variables, blocks) = self.transitive_block_contents(included_blocks);
        // Blocks were checked when the library was built; only the question about traits remains.
        if known.is_some() {
            for (variable, block) in
                block_variables.iter().filter(|(variable, _)| !own_variables.contains(*variable))
            {
                let block_location = Location::Field { kind, field: field.name, block: Some(block) };
                let block_source = self.blocks.get(block).map_or("", |block| block.source.as_str());
                problems.extend(check_variable(variable, &block_location, block_source, known));
            }
        }

        let mut variables = own_variables;
        variables.extend(block_variables.into_keys());
        Some(AnalysedField { kind, name: field.name, template_name, escaping, variables, blocks })
    }

    /// Follows includes from `roots`: returns each variable used in those blocks (and the blocks they
    /// include) with the first block using it, and the set of blocks reached.
    fn transitive_block_contents(&self, roots: Vec<String>) -> (BTreeMap<String, String>, BTreeSet<String>) {
        let mut variables = BTreeMap::new();
        let mut reached = BTreeSet::new();
        let mut queue: VecDeque<String> = roots.into();
        while let Some(name) = queue.pop_front() {
            let Some(block) = self.blocks.get(&name) else { continue };
            if !reached.insert(name.clone()) {
                continue;
            }
            for variable in &block.variables {
                variables.entry(variable.clone()).or_insert_with(|| name.clone());
            }
            queue.extend(block.references.iter().cloned());
        }
        (variables, reached)
    }
}

impl Default for ContentLibrary {
    fn default() -> Self {
        ContentLibrary::empty()
    }
}

fn is_valid_block_name(name: &str) -> bool {
    (1..=MAX_BLOCK_NAME_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-".contains(&byte))
}

fn size_problem(location: &Location<'_>, source: &str) -> Option<ContentProblem> {
    (source.len() > MAX_SOURCE_BYTES).then(|| {
        location.problem(
            codes::TOO_LARGE,
            None,
            format!(
                "{} is {} KB long; the limit is {} KB.",
                location.subject(),
                source.len().div_ceil(1024),
                MAX_SOURCE_BYTES / 1024
            ),
        )
    })
}

fn syntax_problem(location: &Location<'_>, error: &minijinja::Error) -> ContentProblem {
    let detail = error.detail().unwrap_or("the template cannot be read");
    let line = error.line();
    let place = line.map(|line| format!(" on line {line}")).unwrap_or_default();
    location.problem(
        codes::SYNTAX,
        line,
        format!("{} has a template error{place}: {}.", location.subject(), detail.trim_end_matches('.')),
    )
}

fn reference_problem(location: &Location<'_>, reference: &BlockReference) -> ContentProblem {
    match reference {
        BlockReference::Named { name, line } => location.problem(
            codes::UNKNOWN_BLOCK,
            Some(*line),
            format!("{} uses the block \"{name}\", which does not exist.", location.subject()),
        ),
        BlockReference::Computed { line } => location.problem(
            codes::DYNAMIC_INCLUDE,
            Some(*line),
            format!(
                "{} chooses a block with an expression; write the block's name in quotes instead, \
                 for example {{% include \"footer\" %}}.",
                location.subject()
            ),
        ),
    }
}

/// Filters and tests that do not exist (a typo such as `| uper`): minijinja only notices them when
/// rendering, so each name is tried on a throwaway expression in the same environment.
fn unknown_filter_and_test_problems(
    environment: &Environment<'static>,
    scan: &SourceScan,
    location: &Location<'_>,
) -> Vec<ContentProblem> {
    let mut problems = Vec::new();
    let mut checked = BTreeSet::new();
    let kinds =
        [(&scan.filters, "filter", ErrorKind::UnknownFilter), (&scan.tests, "test", ErrorKind::UnknownTest)];
    for (uses, what, unknown_kind) in kinds {
        for name_use in uses {
            if !checked.insert((what, name_use.name.as_str())) {
                continue;
            }
            // Names come from the scanner as identifiers, so they are safe to splice into an expression.
            let probe = match what {
                "filter" => format!("none | {}", name_use.name),
                _ => format!("none is {}", name_use.name),
            };
            let exists = match environment.compile_expression_owned(probe) {
                Ok(expression) => expression
                    .eval(BTreeMap::<String, String>::new())
                    .map_or_else(|error| error.kind() != unknown_kind, |_| true),
                Err(error) => error.kind() != unknown_kind,
            };
            if !exists {
                let code = if what == "filter" { codes::UNKNOWN_FILTER } else { codes::UNKNOWN_TEST };
                problems.push(location.problem(
                    code,
                    Some(name_use.line),
                    format!(
                        "{} uses the {what} \"{}\", which does not exist.",
                        location.subject(),
                        name_use.name
                    ),
                ));
            }
        }
    }
    problems
}

/// The variables a compiled template uses, as dotted paths, minus global functions.
fn undeclared_variables(
    environment: &Environment<'_>,
    template_name: &str,
    global_names: &BTreeSet<String>,
) -> BTreeSet<String> {
    let Ok(template) = environment.get_template(template_name) else {
        return BTreeSet::new();
    };
    template
        .undeclared_variables(true)
        .into_iter()
        .filter(|variable| !global_names.contains(root_of(variable)))
        .collect()
}

fn root_of(variable: &str) -> &str {
    variable.split_once('.').map_or(variable, |(root, _)| root)
}

/// Checks one variable path: it must start with `profile` or `journey`, a journey variable must be one
/// the journey provides, and (when `known` is given) a profile variable must be a trait of the workspace.
fn check_variable(
    variable: &str,
    location: &Location<'_>,
    source: &str,
    known: Option<&dyn Fn(&str) -> bool>,
) -> Option<ContentProblem> {
    let (root, attribute) = match variable.split_once('.') {
        Some((root, attribute)) => (root, Some(attribute)),
        None => (variable, None),
    };
    let subject = location.subject();
    let message = match (root, attribute) {
        ("profile", Some(trait_path)) => match known {
            Some(known) if !known(trait_path) => {
                format!("{subject} uses \"{variable}\", which no profile has.")
            }
            _ => return None,
        },
        ("journey", Some(journey_attribute)) if !JOURNEY_ATTRIBUTES.contains(&journey_attribute) => {
            format!(
                "{subject} uses \"{variable}\", but a journey only provides \"journey.name\" and \
                 \"journey.step\"."
            )
        }
        (root, _) if TOP_LEVEL_VARIABLES.contains(&root) => return None,
        _ => format!(
            "{subject} uses \"{variable}\", which does not exist. Variables start with \"profile.\" \
             (for example \"profile.first_name\"), \"journey.\" (for example \"journey.name\") or \
             \"experiment.\" (a multivariate factor, for example \"experiment.subject\")."
        ),
    };
    Some(location.problem(codes::UNKNOWN_VARIABLE, line_of_first_use(source, variable), message))
}

/// The line where `variable` first appears as a whole path, to point the marketer at it.
/// minijinja does not report positions of variables, so this is a textual search (best effort).
fn line_of_first_use(source: &str, variable: &str) -> Option<usize> {
    let is_path_byte = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_';
    let bytes = source.as_bytes();
    source.match_indices(variable).find_map(|(start, _)| {
        let end = start + variable.len();
        let starts_path = start == 0 || !(is_path_byte(bytes[start - 1]) || bytes[start - 1] == b'.');
        let ends_path = bytes.get(end).is_none_or(|&byte| !is_path_byte(byte));
        (starts_path && ends_path).then(|| 1 + bytes[..start].iter().filter(|&&byte| byte == b'\n').count())
    })
}

/// Include cycles and over-deep nesting among blocks, found with one depth-first traversal.
fn include_graph_problems(blocks: &BTreeMap<String, BlockAnalysis>) -> Vec<ContentProblem> {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Visit {
        InProgress,
        Done,
    }
    let mut visits: BTreeMap<&str, Visit> = BTreeMap::new();
    // Longest include chain starting at each finished block (the block itself counts as 1).
    let mut depths: BTreeMap<&str, usize> = BTreeMap::new();
    let mut cycles: BTreeSet<Vec<&str>> = BTreeSet::new();

    for root in blocks.keys() {
        if visits.contains_key(root.as_str()) {
            continue;
        }
        // Explicit stack of (block, index of the next reference to follow): blocks are user data and
        // an include chain could be long, so no recursion.
        let mut stack: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        visits.insert(root.as_str(), Visit::InProgress);
        while let Some((name, next_reference)) = stack.last().copied() {
            let references = blocks.get(name).map_or(&[][..], |block| block.references.as_slice());
            if let Some(referenced) = references.get(next_reference) {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                match visits.get(referenced.as_str()) {
                    None => {
                        visits.insert(referenced.as_str(), Visit::InProgress);
                        stack.push((referenced.as_str(), 0));
                    }
                    Some(Visit::InProgress) => {
                        let cycle_start =
                            stack.iter().position(|(on_stack, _)| *on_stack == referenced).unwrap_or(0);
                        let mut cycle: Vec<&str> =
                            stack[cycle_start..].iter().map(|(block, _)| *block).collect();
                        // Rotate so the same cycle found from another block is reported once.
                        let smallest =
                            cycle.iter().enumerate().min_by_key(|(_, block)| **block).map_or(0, |(i, _)| i);
                        cycle.rotate_left(smallest);
                        cycles.insert(cycle);
                    }
                    Some(Visit::Done) => {}
                }
            } else {
                let depth = 1 + references
                    .iter()
                    .filter_map(|referenced| depths.get(referenced.as_str()))
                    .max()
                    .copied()
                    .unwrap_or(0);
                depths.insert(name, depth);
                visits.insert(name, Visit::Done);
                stack.pop();
            }
        }
    }

    let mut problems: Vec<ContentProblem> = cycles
        .into_iter()
        .map(|cycle| {
            let first = cycle.first().copied().unwrap_or_default();
            let location = Location::Block { block: first };
            let message = if cycle.len() == 1 {
                format!("{} includes itself.", location.subject())
            } else {
                let path: Vec<String> =
                    cycle.iter().chain([&first]).map(|block| format!("\"{block}\"")).collect();
                format!("{} includes itself through other blocks: {}.", location.subject(), path.join(" → "))
            };
            location.problem(codes::INCLUDE_CYCLE, None, message)
        })
        .collect();
    if problems.is_empty() {
        problems.extend(depths.into_iter().filter(|(_, depth)| *depth > MAX_INCLUDE_DEPTH).map(
            |(block, depth)| {
                let location = Location::Block { block };
                location.problem(
                    codes::INCLUDE_TOO_DEEP,
                    None,
                    format!(
                        "{} nests blocks {depth} levels deep; the limit is {MAX_INCLUDE_DEPTH}.",
                        location.subject()
                    ),
                )
            },
        ));
    }
    problems
}
