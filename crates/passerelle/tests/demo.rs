//! `passerelle demo` as a newcomer runs it: the real binary fills the embedded default, then
//! `passerelle serve` on the same data dir answers the sign-in and the three queries the demo
//! printed, taken literally from its output, with non-empty and consistent results. Running the
//! demo again on the same data dir fails clearly and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{passerelle, serve, temp_dir};
use serde_json::{Value, json};
use std::{collections::HashSet, process::Stdio};

/// What the demo printed that a person would copy.
struct Printed {
    email: String,
    password: String,
    login: String,
    queries: Vec<String>,
    /// The first workspace's segment sizes from the summary, by name.
    sizes: Vec<(String, i64)>,
}

fn read_output(stdout: &str) -> Printed {
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    let login = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("mutation { login("))
        .expect("the login mutation");
    let mut queries = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in stdout.lines() {
        match (line, current.as_mut()) {
            ("```graphql", None) => current = Some(Vec::new()),
            ("```", Some(lines)) => {
                queries.push(lines.join("\n"));
                current = None;
            }
            (line, Some(lines)) => lines.push(line),
            _ => {}
        }
    }
    // The summary lists the first workspace's segments first: "    segment NAME   N members".
    let summary_start = stdout.lines().position(|l| l.ends_with(" profiles")).expect("a summary");
    let sizes = stdout
        .lines()
        .skip(summary_start + 1)
        .map_while(|line| line.trim().strip_prefix("segment "))
        .map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let size = words[words.len() - 2].parse().unwrap();
            (words[..words.len() - 2].join(" "), size)
        })
        .collect();
    Printed { email: field("email:"), password: field("password:"), login: login.to_owned(), queries, sizes }
}

async fn post(client: &reqwest::Client, url: &str, document: &str, token: Option<&str>) -> Value {
    let mut request = client.post(url).json(&json!({ "query": document }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer: Value = request.send().await.unwrap().json().await.unwrap();
    assert!(answer.get("errors").is_none(), "{document}\n→ {answer}");
    answer["data"].clone()
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or_else(|| panic!("not a number: {value}"))
}

#[tokio::test]
async fn the_demo_fills_the_embedded_default_and_its_queries_answer() {
    let dir = temp_dir();
    let demo = passerelle(&dir.0).args(["demo", "--profiles", "500", "--seed", "11"]).output().unwrap();
    let stdout = String::from_utf8(demo.stdout).unwrap();
    let stderr = String::from_utf8(demo.stderr).unwrap();
    assert!(demo.status.success(), "{stdout}\n{stderr}");
    let printed = read_output(&stdout);
    assert_eq!(printed.queries.len(), 3, "{stdout}");
    assert_eq!(printed.email, "owner@demo-agency.test");
    assert!(printed.password.len() >= 16, "a strong generated password");
    // The generated people's emails and the password never reach the logs.
    assert!(!stderr.contains("@example.") && !stderr.contains(&printed.password), "{stderr}");

    // Again on the same data dir: a clear refusal, and nothing added.
    let again = passerelle(&dir.0).args(["demo", "--profiles", "600", "--seed", "12"]).output().unwrap();
    assert!(!again.status.success());
    let refusal = String::from_utf8_lossy(&again.stderr);
    assert!(refusal.contains("already holds the demo agency") && refusal.contains("delete"), "{refusal}");
    assert!(!String::from_utf8_lossy(&again.stdout).contains("```graphql"));

    let mut command = passerelle(&dir.0);
    command.stderr(Stdio::null());
    let server = serve(command).await;
    let url = server.url.clone();
    let client = reqwest::Client::new();

    let login = post(&client, &url, &printed.login, None).await;
    let token = login["login"]["accessToken"].as_str().unwrap().to_owned();
    let token = Some(token.as_str());
    let workspaces = post(&client, &url, "{ workspaces { edges { node { id name } } } }", token).await;
    assert_eq!(
        workspaces["workspaces"]["edges"].as_array().unwrap().len(),
        2,
        "two client workspaces, and the refused second run added none"
    );
    let staff = post(&client, &url, "{ users { edges { node { email } } } }", token).await;
    assert_eq!(staff["users"]["edges"].as_array().unwrap().len(), 1, "one owner: {staff}");

    // 1. The showcase customer: one profile for every device and channel.
    let customer = post(&client, &url, &printed.queries[0], token).await["profile"].clone();
    let kinds: HashSet<&str> =
        customer["identities"].as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    for kind in ["user_id", "email", "phone", "anonymous_id", "device_id", "maid", "loyalty_card"] {
        assert!(kinds.contains(kind), "the merged profile has a {kind}: {customer}");
    }
    let cookies_and_ids =
        customer["identities"].as_array().unwrap().iter().filter(|i| i["kind"] == "anonymous_id").count();
    assert!(cookies_and_ids >= 3, "two browsers and the app: {customer}");
    assert!(customer["merges"].as_array().unwrap().len() >= 2, "its other devices merged in: {customer}");
    assert!(customer["devices"].as_array().unwrap().len() >= 3, "{customer}");
    assert!(number(&customer["lifetimeRevenue"]) > 0.0);
    assert!(!customer["segments"].as_array().unwrap().is_empty());
    assert!(customer["consents"].as_array().unwrap().iter().any(|c| c["granted"] == true));
    let events = customer["events"]["edges"].as_array().unwrap();
    assert!(!events.is_empty());
    let channels: HashSet<&str> = events.iter().filter_map(|e| e["node"]["channel"].as_str()).collect();
    assert!(channels.len() >= 2, "events across channels: {channels:?}");

    // 2. A segment whose size, members and history agree, and whose members fit its definition.
    let segment = post(&client, &url, &printed.queries[1], token).await["segment"].clone();
    let size = segment["size"].as_i64().unwrap();
    assert!(size > 0, "{segment}");
    let name = segment["name"].as_str().unwrap();
    assert_eq!(
        printed.sizes.iter().find(|(n, _)| n == name).map(|(_, s)| *s),
        Some(size),
        "the summary printed the same size"
    );
    let members = segment["members"]["edges"].as_array().unwrap();
    assert_eq!(members.len() as i64, size.min(10));
    assert_eq!(segment["members"]["pageInfo"]["hasNextPage"], json!(size > 10));
    for member in members {
        assert!(number(&member["node"]["profile"]["lifetimeRevenue"]) >= 300.0, "{member}");
    }
    let history = segment["sizeHistory"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["size"].as_i64(), Some(size));

    // 3. Attribution models share out the same conversions; the journey has both arms and a holdout.
    let worked = post(&client, &url, &printed.queries[2], token).await;
    let report = &worked["attribution"];
    let conversions = number(&report["conversions"]);
    let attributed = conversions - number(&report["conversionsWithoutTouch"]);
    assert!(attributed > 0.0, "{report}");
    assert!(number(&report["spend"]) > 0.0);
    let models = report["models"].as_array().unwrap();
    assert!(models.len() >= 5, "models side by side");
    for model in models {
        let rows = model["rows"].as_array().unwrap();
        let shared: f64 = rows.iter().map(|r| number(&r["conversions"])).sum();
        assert!((shared - attributed).abs() < 1e-6, "{}: {shared} of {attributed}", model["model"]);
    }
    assert!(
        models[0]["rows"].as_array().unwrap().iter().any(|r| r["returnOnSpend"].is_number()),
        "paid channels have a return on spend: {report}"
    );
    let incrementality = &worked["journeyIncrementality"];
    let treated = incrementality["treatment"]["people"].as_i64().unwrap();
    assert!(treated > 0 && incrementality["control"]["people"].as_i64().unwrap() > 0, "{incrementality}");
    assert!(number(&incrementality["cost"]) > 0.0, "the journey's spend is its cost");
    let analysis = &worked["journeyExperiment"]["analysis"];
    let arms = analysis["arms"].as_array().unwrap();
    let labels: Vec<&str> = arms.iter().map(|a| a["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["discount", "free_delivery"]);
    assert!(arms.iter().all(|a| a["people"].as_i64().unwrap() > 0), "{analysis}");
    let in_arms: i64 = arms.iter().map(|a| a["people"].as_i64().unwrap()).sum();
    assert_eq!(in_arms, treated, "everyone treated is in one arm, the held-out in none");

    drop(server);
}
