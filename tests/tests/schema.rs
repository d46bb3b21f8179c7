//! The frontend contract: `frontend-schema/schema.graphql` must be what the code generates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn frontend_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend-schema/schema.graphql");
    let generated = gateway::sdl();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let diff: Vec<String> = generated
            .lines()
            .zip(committed.lines().chain(std::iter::repeat("<missing>")))
            .enumerate()
            .filter(|(_, (g, c))| g != c)
            .take(20)
            .map(|(n, (g, c))| format!("line {}:\n  committed: {c}\n  generated: {g}", n + 1))
            .collect();
        panic!(
            "frontend-schema/schema.graphql is stale; regenerate with `cargo run -- schema --output frontend-schema/schema.graphql`\n{}\n(committed {} lines, generated {})",
            diff.join("\n"),
            committed.lines().count(),
            generated.lines().count()
        );
    }
}
