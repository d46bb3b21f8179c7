#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use super::*;

// ---------------------------------------------------------------------------------------------------
// Helpers

fn library(blocks: &[(&str, &str)]) -> ContentLibrary {
    ContentLibrary::new(&block_map(blocks)).expect("blocks are valid")
}

fn block_map(blocks: &[(&str, &str)]) -> BTreeMap<String, String> {
    blocks.iter().map(|(name, source)| ((*name).to_owned(), (*source).to_owned())).collect()
}

fn library_problems(blocks: &[(&str, &str)]) -> Vec<ContentProblem> {
    ContentLibrary::new(&block_map(blocks)).expect_err("blocks are invalid")
}

fn template(variants: Vec<Variant>) -> Template {
    Template { variants }
}

fn email(subject: &str, body: &str, html: Option<&str>) -> Variant {
    Variant::Email { subject: subject.into(), body: body.into(), html: html.map(Into::into) }
}

fn sms(text: &str) -> Variant {
    Variant::Sms { text: text.into() }
}

const TRAITS: [&str; 7] = ["id", "first_name", "last_name", "vip", "address.city", "points", "bio"];

fn known_trait(path: &str) -> bool {
    TRAITS.contains(&path)
}

fn ada() -> Json {
    json!({
        "profile": {"id": "p-1", "first_name": "Ada", "last_name": "Lovelace", "address": {"city": "Paris"}},
        "journey": {"name": "Welcome", "step": "first-email"}
    })
}

fn render(library: &ContentLibrary, variants: Vec<Variant>, kind: VariantKind, context: &Json) -> Rendered {
    library.render(&template(variants), kind, context).expect("renders")
}

fn render_error(
    library: &ContentLibrary,
    variants: Vec<Variant>,
    kind: VariantKind,
    context: &Json,
) -> RenderError {
    library.render(&template(variants), kind, context).expect_err("fails to render")
}

fn validation_problems(library: &ContentLibrary, variants: Vec<Variant>) -> Vec<ContentProblem> {
    library.validate(&template(variants), &known_trait).expect_err("template is invalid")
}

fn codes_of(problems: &[ContentProblem]) -> Vec<&'static str> {
    problems.iter().map(|problem| problem.code).collect()
}

fn only_problem(problems: Vec<ContentProblem>) -> ContentProblem {
    assert_eq!(problems.len(), 1, "expected exactly one problem: {problems:#?}");
    problems.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------------------------------
// Variants and serde

#[test]
fn variant_kinds_round_trip_through_their_names() {
    for kind in VariantKind::ALL {
        assert_eq!(VariantKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(VariantKind::parse("Email"), None);
    assert_eq!(VariantKind::parse("fax"), None);
}

#[test]
fn variants_deserialize_from_tagged_json() {
    let parsed: Template = serde_json::from_value(json!({"variants": [
        {"kind": "email", "subject": "S", "body": "B"},
        {"kind": "sms", "text": "T"},
        {"kind": "push", "title": "T", "body": "B"},
        {"kind": "ad", "creative": "asset-{{ profile.id }}", "headline": "H"},
        {"kind": "call_center", "script": "S"},
        {"kind": "direct_mail", "body": "B"},
        {"kind": "web", "html": "<p>H</p>"}
    ]}))
    .unwrap();
    let kinds: Vec<VariantKind> = parsed.variants.iter().map(Variant::kind).collect();
    assert_eq!(kinds, VariantKind::ALL.to_vec());
    assert_eq!(parsed.variants[0], email("S", "B", None));
    assert_eq!(parsed.variants[3].fields(), vec![("creative", "asset-{{ profile.id }}"), ("headline", "H")]);
    assert!(parsed.variant(VariantKind::Web).is_some());

    let round_tripped: Template = serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
    assert_eq!(round_tripped, parsed);
}

#[test]
fn variants_reject_unknown_fields_and_kinds() {
    let unknown_field =
        serde_json::from_value::<Variant>(json!({"kind": "sms", "text": "T", "subject": "S"}));
    assert!(unknown_field.is_err());
    let unknown_kind = serde_json::from_value::<Variant>(json!({"kind": "fax", "text": "T"}));
    assert!(unknown_kind.is_err());
    let missing_field = serde_json::from_value::<Variant>(json!({"kind": "push", "title": "T"}));
    assert!(missing_field.is_err());
    let unknown_template_field = serde_json::from_value::<Template>(json!({"variants": [], "name": "x"}));
    assert!(unknown_template_field.is_err());
}

#[test]
fn fields_list_present_fields_in_order() {
    assert_eq!(email("S", "B", None).fields(), vec![("subject", "S"), ("body", "B")]);
    assert_eq!(email("S", "B", Some("H")).fields(), vec![("subject", "S"), ("body", "B"), ("html", "H")]);
    assert_eq!(Variant::Ad { creative: "C".into(), headline: None }.fields(), vec![("creative", "C")]);
    assert_eq!(Variant::Web { html: "W".into() }.fields(), vec![("html", "W")]);
}

// ---------------------------------------------------------------------------------------------------
// Rendering every kind

#[test]
fn renders_every_variant_kind() {
    let library = library(&[("signature", "The {{ journey.name }} team")]);
    let variants = vec![
        email(
            "Hello {{ profile.first_name }}",
            "Dear {{ profile.first_name }},\n{% include \"signature\" %}",
            Some("<p>Dear {{ profile.first_name }}</p>"),
        ),
        sms("Hi {{ profile.first_name }}, step {{ journey.step }}"),
        Variant::Push {
            title: "{{ profile.first_name }}!".into(),
            body: "From {{ profile.address.city }}".into(),
        },
        Variant::Ad {
            creative: "asset-{{ profile.id }}".into(),
            headline: Some("Hi {{ profile.last_name }}".into()),
        },
        Variant::CallCenter { script: "Ask for {{ profile.first_name }} {{ profile.last_name }}.".into() },
        Variant::DirectMail { body: "{{ profile.first_name }}\n{{ profile.address.city }}".into() },
        Variant::Web { html: "<h1>Welcome back, {{ profile.first_name }}</h1>".into() },
    ];
    let prepared = library.prepare(&template(variants)).unwrap();
    let context = ada();
    let field = |kind: VariantKind, name: &str| {
        let rendered = prepared.render(kind, &context).unwrap();
        assert_eq!(rendered.kind, kind);
        rendered.field(name).map(str::to_owned)
    };

    assert_eq!(field(VariantKind::Email, "subject").as_deref(), Some("Hello Ada"));
    assert_eq!(field(VariantKind::Email, "body").as_deref(), Some("Dear Ada,\nThe Welcome team"));
    assert_eq!(field(VariantKind::Email, "html").as_deref(), Some("<p>Dear Ada</p>"));
    assert_eq!(field(VariantKind::Sms, "text").as_deref(), Some("Hi Ada, step first-email"));
    assert_eq!(field(VariantKind::Push, "title").as_deref(), Some("Ada!"));
    assert_eq!(field(VariantKind::Push, "body").as_deref(), Some("From Paris"));
    assert_eq!(field(VariantKind::Ad, "creative").as_deref(), Some("asset-p-1"));
    assert_eq!(field(VariantKind::Ad, "headline").as_deref(), Some("Hi Lovelace"));
    assert_eq!(field(VariantKind::CallCenter, "script").as_deref(), Some("Ask for Ada Lovelace."));
    assert_eq!(field(VariantKind::DirectMail, "body").as_deref(), Some("Ada\nParis"));
    assert_eq!(field(VariantKind::Web, "html").as_deref(), Some("<h1>Welcome back, Ada</h1>"));

    let kinds: Vec<VariantKind> = prepared.kinds().collect();
    assert_eq!(kinds, VariantKind::ALL.to_vec());
}

#[test]
fn optional_fields_that_are_absent_are_not_rendered() {
    let rendered = render(&ContentLibrary::empty(), vec![email("S", "B", None)], VariantKind::Email, &ada());
    assert_eq!(rendered.fields.keys().copied().collect::<Vec<_>>(), vec!["body", "subject"]);
    assert_eq!(rendered.field("html"), None);
}

#[test]
fn a_kind_without_variant_is_an_error() {
    let error = render_error(&ContentLibrary::empty(), vec![sms("Hi")], VariantKind::Email, &ada());
    assert_eq!(error, RenderError::NoVariant { kind: VariantKind::Email });
    assert_eq!(error.code(), "no_variant");
}

#[test]
fn blocks_include_blocks() {
    let library = library(&[
        ("footer", "-- {% include \"legal\" %} --"),
        ("legal", "{% include \"company\" %}, {{ profile.address.city }}"),
        ("company", "ACME for {{ profile.first_name }}"),
        ("unused", "{{ profile.vip }}"),
    ]);
    let variants = vec![sms("Hi{% include \"footer\" %}")];
    let rendered = render(&library, variants.clone(), VariantKind::Sms, &ada());
    assert_eq!(rendered.field("text"), Some("Hi-- ACME for Ada, Paris --"));

    let info = library.validate(&template(variants), &known_trait).unwrap();
    let sms_info = info.variant(VariantKind::Sms).unwrap();
    let expected_variables: BTreeSet<String> =
        ["profile.address.city", "profile.first_name"].into_iter().map(String::from).collect();
    assert_eq!(sms_info.variables, expected_variables);
    let expected_blocks: BTreeSet<String> =
        ["company", "footer", "legal"].into_iter().map(String::from).collect();
    assert_eq!(sms_info.blocks, expected_blocks);
    assert_eq!(library.block_names().collect::<Vec<_>>(), vec!["company", "footer", "legal", "unused"]);
}

#[test]
fn templates_can_extend_a_layout_block() {
    let library = library(&[(
        "layout",
        "<html>{% block content %}{% endblock %}<footer>{{ journey.name }}</footer></html>",
    )]);
    let html = "{% extends \"layout\" %}{% block content %}<p>Hi {{ profile.first_name }}</p>{% endblock %}";
    let rendered = render(&library, vec![email("S", "B", Some(html))], VariantKind::Email, &ada());
    assert_eq!(rendered.field("html"), Some("<html><p>Hi Ada</p><footer>Welcome</footer></html>"));
}

// ---------------------------------------------------------------------------------------------------
// Escaping

#[test]
fn html_is_escaped_only_in_html_fields_including_through_blocks() {
    let library = library(&[("greeting", "Hello {{ profile.first_name }}")]);
    let context = json!({"profile": {"first_name": "<b>Tom & \"Jerry\"</b>"}, "journey": {}});
    let variants = vec![
        email(
            "{{ profile.first_name }}",
            "{% include \"greeting\" %}",
            Some("<p>{% include \"greeting\" %}</p><i>{{ profile.first_name }}</i>"),
        ),
        sms("{{ profile.first_name }}"),
        Variant::Web { html: "<div>{{ profile.first_name }}</div>{{ '<br>' | safe }}".into() },
    ];

    let rendered_email = render(&library, variants.clone(), VariantKind::Email, &context);
    assert_eq!(rendered_email.field("subject"), Some("<b>Tom & \"Jerry\"</b>"));
    assert_eq!(rendered_email.field("body"), Some("Hello <b>Tom & \"Jerry\"</b>"));
    assert_eq!(
        rendered_email.field("html"),
        Some(
            "<p>Hello &lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;&#x2f;b&gt;</p>\
             <i>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;&#x2f;b&gt;</i>"
        )
    );

    let rendered_sms = render(&library, variants.clone(), VariantKind::Sms, &context);
    assert_eq!(rendered_sms.field("text"), Some("<b>Tom & \"Jerry\"</b>"));

    let rendered_web = render(&library, variants, VariantKind::Web, &context);
    assert_eq!(
        rendered_web.field("html"),
        Some("<div>&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;&#x2f;b&gt;</div><br>")
    );
}

#[test]
fn explicit_escape_filter_still_works_in_text_and_does_not_double_escape_html() {
    let context = json!({"profile": {"first_name": "<Ada>"}});
    let variants =
        vec![email("{{ profile.first_name | e }}", "B", Some("{{ profile.first_name | escape }}"))];
    let rendered = render(&ContentLibrary::empty(), variants, VariantKind::Email, &context);
    assert_eq!(rendered.field("subject"), Some("&lt;Ada&gt;"));
    assert_eq!(rendered.field("html"), Some("&lt;Ada&gt;"));
}

// ---------------------------------------------------------------------------------------------------
// Missing values: strict by default, explicit fallbacks work

#[test]
fn a_missing_trait_is_an_error_naming_the_variable_never_a_blank() {
    let library = ContentLibrary::empty();
    let context = json!({"profile": {"id": "p-2"}, "journey": {"name": "Welcome"}});
    let error = render_error(&library, vec![sms("Hi {{ profile.first_name }}!")], VariantKind::Sms, &context);
    assert_eq!(
        error,
        RenderError::MissingVariable {
            kind: VariantKind::Sms,
            field: "text",
            variable: "profile.first_name".to_owned()
        }
    );
    assert_eq!(error.code(), "missing_variable");
    assert_eq!(
        error.to_string(),
        "the SMS text cannot be rendered for this profile: profile.first_name is missing"
    );
}

#[test]
fn missing_variables_are_named_in_various_positions() {
    let library = library(&[("footer", "Bye {{ profile.last_name }}")]);
    let context =
        json!({"profile": {"first_name": "Ada", "address": {}, "items": [{"name": "x"}]}, "journey": {}});
    let cases = [
        ("{{ profile.address.city }}", "profile.address.city"),
        ("{{ profile.zip.code }}", "profile.zip.code"),
        ("{{ profile.last_name | upper }}", "profile.last_name"),
        ("{{ profile.first_name | lower }} {{ profile.last_name|title }}", "profile.last_name"),
        ("{{ 'Hi ' ~ profile.last_name }}", "profile.last_name"),
        ("{{ profile.points + 1 }}", "profile.points"),
        ("Hi {% include \"footer\" %}", "profile.last_name"),
        ("{% for item in profile.items %}{{ item.price }}{% endfor %}", "item.price"),
        ("{% for tag in profile.tags %}{{ tag }}{% endfor %}", "profile.tags"),
        ("{{ journey.step }}", "journey.step"),
        ("{{ profile.last_name | join(', ') }}", "profile.last_name"),
        ("{{ 'Hi %s' | format(profile.last_name) }}", "profile.last_name"),
    ];
    for (source, expected_variable) in cases {
        let error = render_error(&library, vec![sms(source)], VariantKind::Sms, &context);
        match error {
            RenderError::MissingVariable { variable, .. } => {
                assert_eq!(variable, expected_variable, "for {source}");
            }
            other => panic!("expected a missing variable for {source}, got {other:?}"),
        }
    }
}

#[test]
fn default_filter_and_is_defined_handle_missing_traits() {
    let library = library(&[("vip_note", "{% if profile.vip is defined %}VIP{% else %}regular{% endif %}")]);
    let variants = vec![sms(concat!(
        "Hi {{ profile.first_name | default(\"there\") }}",
        "{% if profile.vip is defined %} (VIP){% endif %}",
        "{% if profile.vip is not defined %} (not VIP){% endif %}",
        "{% if profile.vip %} [vip]{% endif %}",
        " {{ profile.address.city | default(\"your city\") }}",
        " {{ profile.nickname | d(profile.first_name | default(\"friend\")) }}",
        " {% include \"vip_note\" %}"
    ))];
    let without_traits = json!({"profile": {"id": "p-3", "address": {}}, "journey": {}});
    assert_eq!(
        render(&library, variants.clone(), VariantKind::Sms, &without_traits).field("text"),
        Some("Hi there (not VIP) your city friend regular")
    );
    let with_traits = json!({"profile": {"first_name": "Ada", "vip": true, "address": {"city": "Paris"}}});
    assert_eq!(
        render(&library, variants, VariantKind::Sms, &with_traits).field("text"),
        Some("Hi Ada (VIP) [vip] Paris Ada VIP")
    );
}

/// minijinja (like Jinja2 in strict mode) fails on an attribute of a missing object before `default` or
/// `is defined` can run: a nested fallback needs its parent object, or a test on the parent.
#[test]
fn fallbacks_on_nested_traits_need_the_parent_object() {
    let library = ContentLibrary::empty();
    let context = json!({"profile": {"id": "p-3"}});
    let naive = sms("{{ profile.address.city | default('your city') }}");
    let error = render_error(&library, vec![naive], VariantKind::Sms, &context);
    assert_eq!(
        error,
        RenderError::MissingVariable {
            kind: VariantKind::Sms,
            field: "text",
            variable: "profile.address.city".to_owned()
        }
    );
    let guarded = sms(concat!(
        "{% if profile.address is defined %}{{ profile.address.city | default('your city') }}",
        "{% else %}your city{% endif %} {{ (profile.address | default({})).city | default('anywhere') }}"
    ));
    assert_eq!(
        render(&library, vec![guarded], VariantKind::Sms, &context).field("text"),
        Some("your city anywhere")
    );
}

#[test]
fn null_traits_behave_like_missing_traits() {
    let context =
        json!({"profile": {"first_name": null, "address": {"city": null}}, "journey": {"name": null}});
    let library = ContentLibrary::empty();
    let fallback = sms("{{ profile.first_name | default('there') }} {{ profile.address.city is defined }}");
    assert_eq!(
        render(&library, vec![fallback], VariantKind::Sms, &context).field("text"),
        Some("there False")
    );
    let error = render_error(&library, vec![sms("{{ journey.name }}")], VariantKind::Sms, &context);
    assert_eq!(error.code(), "missing_variable");
}

#[test]
fn printing_none_is_refused() {
    let error = render_error(&ContentLibrary::empty(), vec![sms("[{{ none }}]")], VariantKind::Sms, &ada());
    assert_eq!(error.code(), "template_error");
}

// ---------------------------------------------------------------------------------------------------
// Hostile templates

#[test]
fn huge_loops_are_too_expensive() {
    let library = ContentLibrary::empty();
    let huge_range = sms("{% for i in range(100000000) %}x{% endfor %}");
    let error = render_error(&library, vec![huge_range], VariantKind::Sms, &ada());
    assert_eq!(error, RenderError::TooExpensive { kind: VariantKind::Sms, field: "text" });
    assert_eq!(error.code(), "too_expensive");

    let nested = sms("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}");
    let error = render_error(&library, vec![nested], VariantKind::Sms, &ada());
    assert_eq!(error.code(), "too_expensive");
}

#[test]
fn deep_recursion_is_too_expensive() {
    let mut tree = json!({"name": "leaf", "children": []});
    for depth in 0..300 {
        tree = json!({"name": format!("n{depth}"), "children": [tree]});
    }
    let context = json!({"profile": {"tree": [tree]}});
    let source =
        "{% for node in profile.tree recursive %}{{ node.name }}{{ loop(node.children) }}{% endfor %}";
    let error = render_error(&ContentLibrary::empty(), vec![sms(source)], VariantKind::Sms, &context);
    assert_eq!(error.code(), "too_expensive");
}

#[test]
fn oversized_output_is_too_large() {
    let library = ContentLibrary::empty();
    let one_big_value = sms("{{ 'x' * 300000 }}");
    let error = render_error(&library, vec![one_big_value], VariantKind::Sms, &ada());
    assert_eq!(
        error,
        RenderError::TooLarge { kind: VariantKind::Sms, field: "text", limit_bytes: MAX_RENDERED_BYTES }
    );
    assert_eq!(error.code(), "too_large");

    let context = json!({"profile": {"bio": "y".repeat(1024)}});
    let repeated = sms("{% for i in range(1000) %}{{ profile.bio }}{% endfor %}");
    assert_eq!(render_error(&library, vec![repeated], VariantKind::Sms, &context).code(), "too_large");

    let just_under = sms("{{ 'x' * 262144 }}");
    let rendered = render(&library, vec![just_under], VariantKind::Sms, &ada());
    assert_eq!(rendered.field("text").map(str::len), Some(MAX_RENDERED_BYTES));
}

// ---------------------------------------------------------------------------------------------------
// Validation problems, one test per code

#[test]
fn syntax_errors_are_located_and_explained() {
    let problem = only_problem(validation_problems(
        &ContentLibrary::empty(),
        vec![email("Hi", "Line one\n{{ profile.first_name }\nLine three", None)],
    ));
    assert_eq!(problem.code, "syntax");
    assert_eq!(problem.variant.as_deref(), Some("email"));
    assert_eq!(problem.field.as_deref(), Some("body"));
    assert_eq!(problem.block, None);
    assert_eq!(problem.line, Some(2));
    assert_eq!(
        problem.message,
        "The email body has a template error on line 2: unexpected `}`, expected end of variable block."
    );
    assert_eq!(problem.to_string(), problem.message);

    let unclosed =
        only_problem(validation_problems(&ContentLibrary::empty(), vec![sms("{% if profile.vip %}VIP")]));
    assert_eq!(unclosed.code, "syntax");
    assert!(unclosed.message.starts_with("The SMS text has a template error"), "{}", unclosed.message);
}

#[test]
fn duplicate_variants_and_empty_templates_are_problems() {
    let problem = only_problem(validation_problems(&ContentLibrary::empty(), vec![sms("a"), sms("b")]));
    assert_eq!(problem.code, "duplicate_variant");
    assert_eq!(problem.variant.as_deref(), Some("sms"));
    assert_eq!(problem.message, "The template has more than one SMS version; keep only one.");

    let problem = only_problem(validation_problems(&ContentLibrary::empty(), vec![]));
    assert_eq!(problem.code, "no_variants");
}

#[test]
fn empty_required_fields_are_problems() {
    let problems = validation_problems(
        &ContentLibrary::empty(),
        vec![email("  ", "Body", Some("")), Variant::Push { title: "T".into(), body: "\n".into() }],
    );
    assert_eq!(codes_of(&problems), vec!["empty_field"; 3]);
    assert_eq!(problems[0].message, "The email subject is empty.");
    assert_eq!(problems[1].message, "The email HTML is empty; remove it or write some content.");
    assert_eq!(problems[2].variant.as_deref(), Some("push"));
    assert_eq!(problems[2].field.as_deref(), Some("body"));
}

#[test]
fn oversized_fields_and_blocks_are_problems() {
    let big = "x".repeat(MAX_SOURCE_BYTES + 1);
    let problem = only_problem(validation_problems(&ContentLibrary::empty(), vec![sms(&big)]));
    assert_eq!(problem.code, "too_large");
    assert_eq!(problem.message, "The SMS text is 65 KB long; the limit is 64 KB.");

    let problem = only_problem(library_problems(&[("big", &big)]));
    assert_eq!(problem.code, "too_large");
    assert_eq!(problem.block.as_deref(), Some("big"));

    let exactly_at_limit = "x".repeat(MAX_SOURCE_BYTES);
    assert!(ContentLibrary::empty().validate(&template(vec![sms(&exactly_at_limit)]), &known_trait).is_ok());
}

#[test]
fn unknown_traits_are_reported_with_a_sentence() {
    let problem = only_problem(validation_problems(
        &ContentLibrary::empty(),
        vec![email("Hi {{ profile.frist_name }}", "Body", None)],
    ));
    assert_eq!(problem.code, "unknown_variable");
    assert_eq!(problem.message, "The email subject uses \"profile.frist_name\", which no profile has.");
    assert_eq!(problem.line, Some(1));
    assert_eq!(problem.field.as_deref(), Some("subject"));
}

#[test]
fn known_receives_paths_without_the_profile_prefix() {
    let asked = RefCell::new(Vec::new());
    let known = |path: &str| {
        asked.borrow_mut().push(path.to_owned());
        true
    };
    let variants =
        vec![sms("{{ profile.first_name }} {{ profile.address.city }} {{ profile.id }} {{ journey.name }} \
         {% for i in range(2) %}{{ i }}{% endfor %}")];
    let info = ContentLibrary::empty().validate(&template(variants), &known).unwrap();
    let mut asked = asked.into_inner();
    asked.sort();
    assert_eq!(asked, vec!["address.city", "first_name", "id"]);
    assert_eq!(
        info.profile_paths().into_iter().collect::<Vec<_>>(),
        vec!["address.city", "first_name", "id"]
    );
    assert!(info.variables().contains("journey.name"));
    assert!(!info.variables().contains("range"), "global functions are not variables");
}

#[test]
fn unknown_top_level_and_journey_variables_are_problems() {
    let problems = validation_problems(
        &ContentLibrary::empty(),
        vec![sms("{{ first_name }} {{ journey.name }} {{ journey.step }}\n{{ journey.owner }}")],
    );
    assert_eq!(codes_of(&problems), vec!["unknown_variable", "unknown_variable"]);
    assert!(problems[0].message.starts_with("The SMS text uses \"first_name\", which does not exist."));
    assert_eq!(
        problems[1].message,
        "The SMS text uses \"journey.owner\", but a journey only provides \"journey.name\" and \"journey.step\"."
    );
    assert_eq!(problems[1].line, Some(2));
    // These checks do not depend on the workspace's traits, so preparing refuses them too.
    let prepared = ContentLibrary::empty().prepare(&template(vec![sms("{{ first_name }}")]));
    assert_eq!(codes_of(&prepared.expect_err("invalid")), vec!["unknown_variable"]);
}

#[test]
fn unknown_traits_inside_blocks_are_reported_through_the_block() {
    let library = library(&[("footer", "Bye\n{{ profile.frist_name }}")]);
    let problem = only_problem(validation_problems(&library, vec![sms("Hi{% include \"footer\" %}")]));
    assert_eq!(problem.code, "unknown_variable");
    assert_eq!(problem.block.as_deref(), Some("footer"));
    assert_eq!(problem.line, Some(2));
    assert_eq!(
        problem.message,
        "The SMS text (through the block \"footer\") uses \"profile.frist_name\", which no profile has."
    );
    // Preparing does not ask about traits: a trait deleted later fails the profiles, not the template.
    assert!(library.prepare(&template(vec![sms("Hi{% include \"footer\" %}")])).is_ok());
}

#[test]
fn unknown_blocks_are_problems_in_templates_and_in_blocks() {
    let library = library(&[("footer", "F")]);
    let problem = only_problem(validation_problems(&library, vec![sms("Hi\n{% include \"foter\" %}")]));
    assert_eq!(problem.code, "unknown_block");
    assert_eq!(problem.line, Some(2));
    assert_eq!(problem.message, "The SMS text uses the block \"foter\", which does not exist.");

    let problem = only_problem(library_problems(&[("footer", "{% include \"legal\" %}")]));
    assert_eq!(problem.code, "unknown_block");
    assert_eq!(problem.block.as_deref(), Some("footer"));
    assert_eq!(problem.variant, None);
}

#[test]
fn computed_includes_are_problems() {
    let problem = only_problem(validation_problems(
        &library(&[("footer", "F")]),
        vec![sms("{% include profile.footer_block %}")],
    ));
    assert_eq!(problem.code, "dynamic_include");
}

#[test]
fn include_cycles_are_detected_when_the_library_is_built() {
    let problem = only_problem(library_problems(&[("loop", "{% include \"loop\" %}")]));
    assert_eq!(problem.code, "include_cycle");
    assert_eq!(problem.message, "The block \"loop\" includes itself.");

    let problems = library_problems(&[
        ("a", "{% include \"b\" %}"),
        ("b", "{% include \"c\" %}"),
        ("c", "{% if profile.vip %}{% include \"a\" %}{% endif %}"),
        ("d", "{% include \"a\" %}"),
    ]);
    let problem = only_problem(problems);
    assert_eq!(problem.code, "include_cycle");
    assert_eq!(problem.block.as_deref(), Some("a"));
    assert_eq!(
        problem.message,
        "The block \"a\" includes itself through other blocks: \"a\" → \"b\" → \"c\" → \"a\"."
    );
}

#[test]
fn include_chains_deeper_than_the_limit_are_problems() {
    let names: Vec<String> = (0..=MAX_INCLUDE_DEPTH).map(|level| format!("level-{level:02}")).collect();
    let mut blocks: Vec<(String, String)> =
        names.windows(2).map(|pair| (pair[0].clone(), format!("{{% include \"{}\" %}}", pair[1]))).collect();
    blocks.push((names[MAX_INCLUDE_DEPTH].clone(), "end".to_owned()));
    let borrowed: Vec<(&str, &str)> = blocks.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    let problem = only_problem(library_problems(&borrowed));
    assert_eq!(problem.code, "include_too_deep");
    assert_eq!(problem.block.as_deref(), Some("level-00"));

    // One level less is fine, and renders.
    let library = library(&borrowed[1..]);
    let rendered = render(&library, vec![sms("{% include \"level-01\" %}")], VariantKind::Sms, &ada());
    assert_eq!(rendered.field("text"), Some("end"));
}

#[test]
fn block_names_must_be_short_lowercase_slugs() {
    let long_name = "a".repeat(MAX_BLOCK_NAME_CHARS + 1);
    let problems = library_problems(&[
        ("Footer", "F"),
        ("my footer", "F"),
        ("", "F"),
        (&long_name, "F"),
        ("ok_-1", "F"),
    ]);
    assert_eq!(codes_of(&problems), vec!["invalid_block_name"; 4]);
    assert!(ContentLibrary::new(&block_map(&[(&"a".repeat(MAX_BLOCK_NAME_CHARS), "F")])).is_ok());
}

#[test]
fn block_problems_cover_syntax_and_variables() {
    let problems =
        library_problems(&[("broken", "{% if %}"), ("strange", "{{ customer.name }}"), ("fine", "F")]);
    assert_eq!(codes_of(&problems), vec!["syntax", "unknown_variable"]);
    assert_eq!(problems[0].block.as_deref(), Some("broken"));
    assert!(problems[0].message.starts_with("The block \"broken\" has a template error on line 1"));
    assert_eq!(problems[1].block.as_deref(), Some("strange"));
}

#[test]
fn unknown_filters_and_tests_are_problems() {
    let problems = validation_problems(
        &ContentLibrary::empty(),
        vec![sms("{{ profile.first_name | uper }}\n{% if profile.vip is vip_member %}x{% endif %}")],
    );
    assert_eq!(codes_of(&problems), vec!["unknown_filter", "unknown_test"]);
    assert_eq!(problems[0].message, "The SMS text uses the filter \"uper\", which does not exist.");
    assert_eq!(problems[1].line, Some(2));

    let problem = only_problem(library_problems(&[("footer", "{% filter shout %}x{% endfilter %}")]));
    assert_eq!(problem.code, "unknown_filter");

    let fine =
        sms("{{ profile.first_name | default('x') | upper | trim | replace('A', 'a') }}{{ 1 is odd }}");
    assert!(ContentLibrary::empty().validate(&template(vec![fine]), &known_trait).is_ok());
}

#[test]
fn all_problems_are_reported_at_once() {
    let problems = validation_problems(
        &ContentLibrary::empty(),
        vec![
            email("", "{{ profile.frist_name }}", Some("{% if %}")),
            sms("{% include \"nope\" %}"),
            sms("again"),
        ],
    );
    assert_eq!(
        codes_of(&problems),
        vec!["empty_field", "unknown_variable", "syntax", "unknown_block", "duplicate_variant"]
    );
}

#[test]
fn render_of_an_invalid_template_lists_its_problems() {
    let error = render_error(&ContentLibrary::empty(), vec![sms("{{ x")], VariantKind::Sms, &ada());
    assert_eq!(error.code(), "invalid_template");
    match error {
        RenderError::InvalidTemplate { problems } => assert_eq!(codes_of(&problems), vec!["syntax"]),
        other => panic!("unexpected {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------
// Text details

#[test]
fn unicode_text_renders_unchanged() {
    let library = library(&[("signature", "— L'équipe 🚀 {{ journey.name }}")]);
    let context =
        json!({"profile": {"first_name": "Zoë", "last_name": "山田"}, "journey": {"name": "Überraschung"}});
    let variants = vec![
        sms("Bonjour {{ profile.first_name }} {{ profile.last_name }} ✨ {% include \"signature\" %}"),
        Variant::Web { html: "<p>{{ profile.first_name | upper }} & {{ profile.last_name }}</p>".into() },
    ];
    let rendered = render(&library, variants.clone(), VariantKind::Sms, &context);
    assert_eq!(rendered.field("text"), Some("Bonjour Zoë 山田 ✨ — L'équipe 🚀 Überraschung"));
    let rendered = render(&library, variants, VariantKind::Web, &context);
    assert_eq!(rendered.field("html"), Some("<p>ZOË & 山田</p>"));
}

#[test]
fn block_tags_on_their_own_lines_leave_no_blank_lines() {
    let source = "Hello\n{% if profile.vip %}\nVIP line\n{% endif %}\nBye\n";
    let rendered = render(&ContentLibrary::empty(), vec![sms(source)], VariantKind::Sms, &ada());
    assert_eq!(rendered.field("text"), Some("Hello\nBye"));
}

/// Booleans print the Python way (`True`), as in Jinja2.
#[test]
fn numbers_and_booleans_render_like_jinja() {
    let context =
        json!({"profile": {"points": 1200, "ratio": 0.5, "vip": true, "big": 18446744073709551615u64}});
    let source = "{{ profile.points + 1 }} {{ profile.ratio }} {{ profile.vip }} {{ profile.big }}";
    let rendered = render(&ContentLibrary::empty(), vec![sms(source)], VariantKind::Sms, &context);
    assert_eq!(rendered.field("text"), Some("1201 0.5 True 18446744073709551615"));
}

// ---------------------------------------------------------------------------------------------------
// Preparation and throughput

#[test]
fn prepared_templates_are_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PreparedTemplate>();
    assert_send_sync::<ContentLibrary>();
}

#[test]
fn prepared_template_renders_ten_thousand_times() {
    let library = library(&[("footer", "-- {{ journey.name }} · {{ profile.address.city | default('') }}")]);
    let variants = vec![email(
        "Hi {{ profile.first_name | default('there') }}",
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ profile.first_name }}{% include \"footer\" %}",
        Some("<p>{{ profile.first_name }}</p>{% include \"footer\" %}"),
    )];
    let prepared = library.prepare(&template(variants)).unwrap();
    let mut total_bytes = 0;
    for index in 0..10_000 {
        let context = json!({
            "profile": {"id": format!("p-{index}"), "first_name": format!("Ada {index}"), "address": {"city": "Paris"}},
            "journey": {"name": "Welcome", "step": "one"}
        });
        let rendered = prepared.render(VariantKind::Email, &context).unwrap();
        total_bytes += rendered.fields.values().map(String::len).sum::<usize>();
        if index == 9_999 {
            assert_eq!(rendered.field("body"), Some("012 Ada 9999-- Welcome · Paris"));
        }
    }
    assert!(total_bytes > 0);
}
