//! Finds what a source refers to by name: blocks (`include`, `extends`, `import`, `from`), filters
//! (`| upper`, `{% filter upper %}`) and tests (`is defined`).
//!
//! Why a scanner of our own: minijinja's stable API reports a template's variables but neither the
//! templates it includes nor the filters it calls (its parser is only public behind the
//! `unstable_machinery` feature, which has no semver guarantee), and it only notices an unknown block or
//! filter when rendering. Those mistakes must be caught when content is saved, not at send time.
//!
//! The scanner follows minijinja's lexer closely enough for that purpose: it skips comments (`{# #}`),
//! raw sections (`{% raw %}...{% endraw %}`) and string literals inside tags, and honours the `-`/`+`
//! whitespace markers. It only runs on sources minijinja has already compiled, so it never has to make
//! sense of malformed input. Filter and test names given as strings (`map("upper")`) are not seen.

/// Statements whose first argument names another template.
const REFERENCING_STATEMENTS: [&str; 4] = ["include", "extends", "import", "from"];

/// A reference from a template or block to a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlockReference {
    /// `{% include "footer" %}`: the name is written in the source.
    Named { name: String, line: usize },
    /// `{% include some_variable %}` or a list of names: cannot be checked before rendering.
    Computed { line: usize },
}

/// A filter or test name used in a source, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameUse {
    pub name: String,
    pub line: usize,
}

/// Everything a source refers to by name, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceScan {
    pub block_references: Vec<BlockReference>,
    pub filters: Vec<NameUse>,
    pub tests: Vec<NameUse>,
}

/// One token of a tag, as far as name-finding needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagToken<'a> {
    Identifier(&'a str),
    /// A string literal, without its quotes (escape sequences are left as written).
    StringLiteral(&'a str),
    /// Any other single character (operators, brackets, digits).
    Symbol(char),
}

/// Scans `source` for block references, filters and tests.
pub(crate) fn scan_source(source: &str) -> SourceScan {
    let bytes = source.as_bytes();
    let mut scan = SourceScan::default();
    let mut position = 0;
    while let Some((marker_start, marker)) = find_start_marker(bytes, position) {
        let after_marker = marker_start + 2;
        position = match marker {
            b'#' => find_bytes(bytes, after_marker, b"#}").map_or(bytes.len(), |comment_end| comment_end + 2),
            b'{' => {
                let tag = lex_tag(source, skip_whitespace_marker(bytes, after_marker), "}}");
                collect_filters_and_tests(source, &tag.tokens, &mut scan);
                tag.end
            }
            _ => {
                let tag_start = skip_whitespace_marker(bytes, after_marker);
                if let Some(raw_tag_end) = basic_tag_end(source, tag_start, "raw") {
                    end_of_raw_section(source, raw_tag_end)
                } else {
                    let tag = lex_tag(source, tag_start, "%}");
                    if let Some(reference) = block_reference(source, marker_start, &tag.tokens) {
                        scan.block_references.push(reference);
                    }
                    collect_filters_and_tests(source, &tag.tokens, &mut scan);
                    tag.end
                }
            }
        };
    }
    scan
}

fn line_at(source: &str, position: usize) -> usize {
    1 + source.as_bytes()[..position.min(source.len())].iter().filter(|&&byte| byte == b'\n').count()
}

fn block_reference(
    source: &str,
    tag_start: usize,
    tokens: &[(TagToken<'_>, usize)],
) -> Option<BlockReference> {
    let Some((TagToken::Identifier(statement), _)) = tokens.first() else {
        return None;
    };
    if !REFERENCING_STATEMENTS.contains(statement) {
        return None;
    }
    let line = line_at(source, tag_start);
    Some(match tokens.get(1) {
        Some((TagToken::StringLiteral(name), _)) => BlockReference::Named { name: (*name).to_owned(), line },
        _ => BlockReference::Computed { line },
    })
}

/// Filters follow `|` (or start a `{% filter %}` section); tests follow `is` or `is not`.
fn collect_filters_and_tests(source: &str, tokens: &[(TagToken<'_>, usize)], scan: &mut SourceScan) {
    let name_use =
        |name: &str, position: usize| NameUse { name: name.to_owned(), line: line_at(source, position) };
    for (index, (token, _)) in tokens.iter().enumerate() {
        let next = tokens.get(index + 1);
        match (token, next) {
            (TagToken::Symbol('|'), Some((TagToken::Identifier(name), position))) => {
                scan.filters.push(name_use(name, *position));
            }
            (TagToken::Identifier("filter"), Some((TagToken::Identifier(name), position))) if index == 0 => {
                scan.filters.push(name_use(name, *position));
            }
            (TagToken::Identifier("is"), Some((TagToken::Identifier(name), position))) => {
                match (*name, tokens.get(index + 2)) {
                    ("not", Some((TagToken::Identifier(negated), position))) => {
                        scan.tests.push(name_use(negated, *position));
                    }
                    _ => scan.tests.push(name_use(name, *position)),
                }
            }
            _ => {}
        }
    }
}

/// Finds the next `{{`, `{%` or `{#`, returning its position and the second byte.
fn find_start_marker(bytes: &[u8], from: usize) -> Option<(usize, u8)> {
    let candidates = bytes.get(from..)?;
    candidates.windows(2).enumerate().find_map(|(offset, pair)| match pair {
        [b'{', second @ (b'{' | b'%' | b'#')] => Some((from + offset, *second)),
        _ => None,
    })
}

fn find_bytes(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let haystack = bytes.get(from..)?;
    haystack.windows(needle.len()).position(|window| window == needle).map(|offset| from + offset)
}

/// Skips the optional `-` or `+` right after a start marker.
fn skip_whitespace_marker(bytes: &[u8], position: usize) -> usize {
    match bytes.get(position) {
        Some(b'-' | b'+') => position + 1,
        _ => position,
    }
}

fn skip_ascii_whitespace(bytes: &[u8], mut position: usize) -> usize {
    while bytes.get(position).is_some_and(u8::is_ascii_whitespace) {
        position += 1;
    }
    position
}

/// If a tag body starting at `position` is exactly `<name>` (with optional whitespace and closing
/// whitespace marker) followed by `%}`, returns the position after `%}`. Mirrors minijinja's handling of
/// `raw` and `endraw`, which are recognised before normal tokenisation.
fn basic_tag_end(source: &str, position: usize, name: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut cursor = skip_ascii_whitespace(bytes, position);
    if !source.get(cursor..)?.starts_with(name) {
        return None;
    }
    cursor = skip_ascii_whitespace(bytes, cursor + name.len());
    cursor = skip_whitespace_marker(bytes, cursor);
    source.get(cursor..)?.starts_with("%}").then_some(cursor + 2)
}

/// Returns the position after the `{% endraw %}` closing a raw section (or the end of the source).
fn end_of_raw_section(source: &str, mut position: usize) -> usize {
    let bytes = source.as_bytes();
    while let Some(tag_start) = find_bytes(bytes, position, b"{%") {
        let body_start = skip_whitespace_marker(bytes, tag_start + 2);
        if let Some(end) = basic_tag_end(source, body_start, "endraw") {
            return end;
        }
        position = tag_start + 2;
    }
    bytes.len()
}

struct LexedTag<'a> {
    /// Tokens with their byte positions in the source.
    tokens: Vec<(TagToken<'a>, usize)>,
    /// Position right after the closing marker.
    end: usize,
}

/// Tokenises a tag body up to its closing marker (`%}` or `}}`).
///
/// Like minijinja, a closing marker only counts outside brackets, so `{{ {"a": {"b": 1}} }}` ends at the
/// last `}}`, and string literals are skipped whole, so `{{ "%}" }}` does not end early.
fn lex_tag<'a>(source: &'a str, start: usize, closing_marker: &str) -> LexedTag<'a> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut bracket_depth: usize = 0;
    let mut position = start;
    loop {
        position = skip_ascii_whitespace(bytes, position);
        let rest = source.get(position..).unwrap_or_default();
        if rest.is_empty() {
            return LexedTag { tokens, end: bytes.len() };
        }
        if bracket_depth == 0 {
            let after_whitespace_marker = rest.strip_prefix(['-', '+']).unwrap_or(rest);
            if after_whitespace_marker.starts_with(closing_marker) {
                let end = position + (rest.len() - after_whitespace_marker.len()) + closing_marker.len();
                return LexedTag { tokens, end };
            }
        }
        let (token, length) = next_token(rest);
        match token {
            TagToken::Symbol('(' | '[' | '{') => bracket_depth += 1,
            TagToken::Symbol(')' | ']' | '}') => bracket_depth = bracket_depth.saturating_sub(1),
            _ => {}
        }
        tokens.push((token, position));
        position += length.max(1);
    }
}

/// Reads one token at the start of `rest` (not empty, not starting with whitespace).
/// Returns the token and its length in bytes.
fn next_token(rest: &str) -> (TagToken<'_>, usize) {
    let bytes = rest.as_bytes();
    match bytes.first() {
        Some(&quote @ (b'"' | b'\'')) => {
            let mut escaped = false;
            let closing = bytes.iter().enumerate().skip(1).find_map(|(index, &byte)| {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == quote {
                    return Some(index);
                }
                None
            });
            match closing {
                Some(closing) => (TagToken::StringLiteral(&rest[1..closing]), closing + 1),
                None => (TagToken::Symbol(char::from(quote)), rest.len()),
            }
        }
        Some(first) if first.is_ascii_alphabetic() || *first == b'_' => {
            let length =
                bytes.iter().take_while(|byte| byte.is_ascii_alphanumeric() || **byte == b'_').count();
            (TagToken::Identifier(&rest[..length]), length)
        }
        _ => {
            let character = rest.chars().next().unwrap_or(' ');
            (TagToken::Symbol(character), character.len_utf8())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BlockReference::{Computed, Named};
    use super::*;

    fn named(name: &str, line: usize) -> BlockReference {
        Named { name: name.to_owned(), line }
    }

    fn names(uses: &[NameUse]) -> Vec<&str> {
        uses.iter().map(|name_use| name_use.name.as_str()).collect()
    }

    #[test]
    fn finds_includes_with_both_quotes_and_whitespace_markers() {
        let source =
            "Hi {% include \"header\" %}\n{%- include 'footer' -%}\n{%+ include \"legal\" ignore missing %}";
        assert_eq!(
            scan_source(source).block_references,
            vec![named("header", 1), named("footer", 2), named("legal", 3)]
        );
    }

    #[test]
    fn finds_extends_import_and_from() {
        let source = "{% extends \"layout\" %}{% import \"macros\" as m %}{% from \"buttons\" import b %}";
        assert_eq!(
            scan_source(source).block_references,
            vec![named("layout", 1), named("macros", 1), named("buttons", 1)]
        );
    }

    #[test]
    fn reports_computed_names() {
        let source = "{% include profile.block %}\n{% include [\"a\", \"b\"] %}";
        assert_eq!(scan_source(source).block_references, vec![Computed { line: 1 }, Computed { line: 2 }]);
    }

    #[test]
    fn ignores_comments_raw_sections_and_strings() {
        let source = concat!(
            "{# {% include \"in_comment\" %} {{ x | in_comment }} #}",
            "{% raw %}{% include \"in_raw\" %}{{ x | in_raw }}{% endraw %}",
            "{%- raw -%}{% include \"in_raw_2\" %}{%- endraw -%}",
            "{{ \"{% include 'in_string' %} | in_string\" }}",
            "{{ {'a': {'b': '%}'}} }}",
            "{% set x = \"{% include 'in_set' %}\" %}",
            "{% include \"real\" %}"
        );
        let scan = scan_source(source);
        assert_eq!(scan.block_references, vec![named("real", 1)]);
        assert!(scan.filters.is_empty(), "{:?}", scan.filters);
    }

    #[test]
    fn ignores_other_statements_and_unicode() {
        let source = "Ça marche 🎉 {% if profile.vip %}{{ \"é\" }}{% endif %}{% include \"pied_de_page\" %}";
        assert_eq!(scan_source(source).block_references, vec![named("pied_de_page", 1)]);
    }

    #[test]
    fn include_is_only_a_statement_at_the_start_of_a_tag() {
        let source = "{{ include }}{% set include = 1 %}{% if x %}include \"no\"{% endif %}";
        assert_eq!(scan_source(source).block_references, vec![]);
    }

    #[test]
    fn finds_filters_and_tests_with_lines() {
        let source = concat!(
            "{{ profile.first_name | default('there') | title }}\n",
            "{% if profile.vip is defined and profile.age is not divisibleby(2) %}{% endif %}\n",
            "{% filter upper %}x{% endfilter %}{{ x|uper }}{% for i in items | sort %}{% endfor %}"
        );
        let scan = scan_source(source);
        assert_eq!(names(&scan.filters), vec!["default", "title", "upper", "uper", "sort"]);
        assert_eq!(scan.filters[3].line, 3);
        assert_eq!(names(&scan.tests), vec!["defined", "divisibleby"]);
        assert_eq!(scan.tests[0].line, 2);
    }

    #[test]
    fn closing_markers_with_whitespace_control_end_the_tag() {
        let source = "{{ a -}} {% include \"x\" +%}{{ b | f }}";
        let scan = scan_source(source);
        assert_eq!(scan.block_references, vec![named("x", 1)]);
        assert_eq!(names(&scan.filters), vec!["f"]);
    }
}
