//! The binary as an operator uses it: `--help`, `schema`, `migrate`, `bootstrap` from stdin
//! (again for a second agency), `serve` on the embedded default, and `attribution` offline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{passerelle, serve, temp_dir};
use std::{io::Write, process::Stdio};

fn bootstrap(dir: &std::path::Path, agency: &str, email: &str, password: &str) -> std::process::Output {
    let mut child = passerelle(dir)
        .args(["bootstrap", "--agency", agency, "--email", email, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn help_lists_the_subcommands() {
    let dir = temp_dir();
    let out = passerelle(&dir.0).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for word in ["serve", "migrate", "schema", "bootstrap", "demo", "DATABASE_URL"] {
        assert!(help.contains(word), "--help must mention {word}: {help}");
    }
}

#[test]
fn schema_prints_the_sdl() {
    let dir = temp_dir();
    let out = passerelle(&dir.0).arg("schema").output().unwrap();
    assert!(out.status.success());
    let sdl = String::from_utf8(out.stdout).unwrap();
    assert!(sdl.contains("type QueryRoot") && sdl.contains("login("));
}

#[test]
fn bootstrap_onboards_agencies_one_after_another() {
    let dir = temp_dir();
    let migrate = passerelle(&dir.0).arg("migrate").output().unwrap();
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    let first = bootstrap(&dir.0, "First", "one@first.test", "a long enough passphrase");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("agency "));
    let second = bootstrap(&dir.0, "Second", "two@second.test", "another long passphrase");
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let duplicate = bootstrap(&dir.0, "Third", "ONE@first.test", "a long enough passphrase");
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
    let weak = bootstrap(&dir.0, "Fourth", "four@x.test", "short");
    assert!(!weak.status.success());
    // Nothing sensitive is echoed: the password never appears in the output.
    assert!(!String::from_utf8_lossy(&first.stdout).contains("passphrase"));
    assert!(!String::from_utf8_lossy(&first.stderr).contains("passphrase"));
}

#[tokio::test]
async fn serve_runs_on_the_embedded_default() {
    let dir = temp_dir();
    let mut command = passerelle(&dir.0);
    command.stderr(Stdio::null());
    let server = serve(command).await;
    assert!(server.banner.contains("GraphiQL"), "{}", server.banner);
    let ready = reqwest::get(server.url.replace("/graphql", "/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(dir.0.join("data/passerelle.db").exists());
    assert!(dir.0.join("data/jwt-keys").exists());
}

/// Privacy by default: a full session through the running binary leaves no email, password,
/// token or key in its logs.
#[tokio::test]
async fn logs_carry_no_personal_data_or_secrets() {
    let dir = temp_dir();
    let email = "private.person@secret-agency.test";
    let password = "a very private passphrase";
    let boot = bootstrap(&dir.0, "Secret Agency", email, password);
    assert!(boot.status.success());
    let log_path = dir.0.join("server.log");
    let mut command = passerelle(&dir.0);
    command.env("PASSERELLE_LOG", "debug").stderr(std::fs::File::create(&log_path).unwrap());
    let server = serve(command).await;
    let url = server.url.clone();
    let client = reqwest::Client::new();
    let gql = |query: String, token: Option<String>| {
        let mut request = client.post(&url).json(&serde_json::json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let wrong = gql(
        format!("mutation {{ login(email: \"{email}\", password: \"wrong {password}\") {{ accessToken }} }}"),
        None,
    )
    .await;
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let login = gql(
        format!("mutation {{ login(email: \"{email}\", password: \"{password}\") {{ accessToken refreshToken }} }}"),
        None,
    )
    .await;
    let access = login["data"]["login"]["accessToken"].as_str().unwrap().to_owned();
    let refresh = login["data"]["login"]["refreshToken"].as_str().unwrap().to_owned();
    let workspace =
        gql("mutation { createWorkspace(input: {name: \"W\"}) { id } }".into(), Some(access.clone())).await;
    let workspace = workspace["data"]["createWorkspace"]["id"].as_str().unwrap().to_owned();
    let key = gql(
        format!("mutation {{ createApiKey(input: {{workspaceId: \"{workspace}\", name: \"k\", kind: WRITE}}) {{ secret }} }}"),
        Some(access.clone()),
    )
    .await;
    let secret = key["data"]["createApiKey"]["secret"].as_str().unwrap().to_owned();
    gql("{ workspaces { edges { cursor } } }".into(), Some(secret.clone())).await;
    gql("{ me { id } }".into(), Some("not.a.valid-token".into())).await;
    drop(server);
    let logs = std::fs::read_to_string(&log_path).unwrap();
    // Structured: one JSON object per line, each request's line carrying its request id.
    let finished: Vec<serde_json::Value> = logs
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON"))
        .filter(|entry| entry["message"] == "request finished")
        .collect();
    assert!(finished.len() >= 5, "the server must have logged its requests: {logs}");
    assert!(
        finished.iter().all(|e| e["span"]["request_id"].as_str().is_some_and(|id| id.len() == 36)),
        "{logs}"
    );
    for (what, needle) in [
        ("email", email),
        ("password", password),
        ("access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("API key", secret.as_str()),
        ("email local part", "private.person"),
    ] {
        assert!(!logs.contains(needle), "the logs contain the {what}");
    }
}

/// `attribution` reads an exported path file (a file or stdin), needs no database, prints the
/// models side by side, and refuses bad input with a message and a failing exit code.
#[test]
fn attribution_runs_the_models_offline_on_a_path_file() {
    let dir = temp_dir();
    let paths = dir.0.join("paths.csv");
    std::fs::write(
        &paths,
        "path;total_conversions;total_conversion_value;total_null\n\
         email > search > direct;10;1000;40\nsocial > email;5;250;100\nsearch;20;2000;60\n",
    )
    .unwrap();
    let output = passerelle(&dir.0)
        .args([
            "attribution",
            "--paths",
            paths.to_str().unwrap(),
            "--model",
            "last_touch",
            "--model",
            "shapley",
        ])
        .args(["--format", "csv"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let csv = String::from_utf8(output.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("channel,last_touch_conversions,last_touch_value,shapley_conversions,shapley_value")
    );
    let rows: std::collections::BTreeMap<&str, Vec<f64>> = lines
        .map(|line| {
            let mut fields = line.split(',');
            (fields.next().unwrap(), fields.map(|f| f.parse().unwrap()).collect())
        })
        .collect();
    // Last touch: search ends one path (20), direct another (10), email the third (5).
    assert_eq!(rows["search"][0], 20.0);
    assert_eq!(rows["direct"][0], 10.0);
    // Shapley: "email > search > direct" splits 10 in three, "social > email" 5 in two.
    assert!((rows["email"][2] - (10.0 / 3.0 + 2.5)).abs() < 1e-9, "{rows:?}");
    assert!(!dir.0.join("data").exists(), "no database was opened");

    let mut child = passerelle(&dir.0)
        .args(["attribution", "--paths", "-", "--model", "markov", "--removal-effects"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&std::fs::read(&paths).unwrap()).unwrap();
    let output = child.wait_with_output().unwrap();
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    assert!(table.contains("markov_1") && table.contains("Removal effects"), "{table}");

    for bad in [vec!["--model", "markov_9"], vec!["--position-weights", "0.5,0.5"]] {
        let output = passerelle(&dir.0)
            .args(["attribution", "--paths", paths.to_str().unwrap()])
            .args(&bad)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{bad:?}");
        assert!(!String::from_utf8_lossy(&output.stderr).is_empty());
    }
    std::fs::write(&paths, "path,total_conversions\na > b,-3\n").unwrap();
    let output = passerelle(&dir.0)
        .args([
            "attribution",
            "--paths",
            paths.to_str().unwrap(),
            "--value-column",
            "none",
            "--nulls-column",
            "none",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A local OTLP/HTTP collector: keeps the bodies posted to `/v1/traces`.
struct Collector {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<actix_web::web::Bytes>>>,
    server: actix_web::dev::ServerHandle,
}

async fn start_collector() -> Collector {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |req: actix_web::HttpRequest, body: web::Bytes| {
                let kept = kept.clone();
                async move {
                    let protobuf =
                        req.headers().get("content-type").is_some_and(|v| v == "application/x-protobuf");
                    if !protobuf {
                        return HttpResponse::UnsupportedMediaType().finish();
                    }
                    kept.lock().unwrap().push(body);
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Collector { url, bodies, server: handle }
}

/// One exported span, as the test reads it.
#[derive(Debug)]
struct Exported {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    attributes: Vec<(String, String)>,
}

impl Collector {
    /// Every span received so far, with the service name each batch declared.
    fn spans(&self) -> (Vec<Exported>, Vec<String>) {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        use prost::Message as _;
        let text = |value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match value
            .as_ref()
            .and_then(|v| v.value.as_ref())
        {
            Some(Any::StringValue(s)) => s.clone(),
            Some(Any::IntValue(i)) => i.to_string(),
            Some(Any::BoolValue(b)) => b.to_string(),
            other => format!("{other:?}"),
        };
        let (mut spans, mut services) = (Vec::new(), Vec::new());
        for body in self.bodies.lock().unwrap().iter() {
            let request = ExportTraceServiceRequest::decode(body.as_ref()).expect("an OTLP trace export");
            for resource_spans in request.resource_spans {
                for attribute in resource_spans.resource.map(|r| r.attributes).unwrap_or_default() {
                    if attribute.key == "service.name" {
                        services.push(text(&attribute.value));
                    }
                }
                for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                    spans.push(Exported {
                        name: span.name,
                        trace_id: span.trace_id,
                        span_id: span.span_id,
                        parent: span.parent_span_id,
                        attributes: span.attributes.iter().map(|a| (a.key.clone(), text(&a.value))).collect(),
                    });
                }
            }
        }
        (spans, services)
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the running binary exports its spans over OTLP:
/// the request (continuing the caller's `traceparent`), the GraphQL operation inside it, and
/// the database statements and cache calls inside that, with no personal data or secret in
/// any attribute.
#[tokio::test]
async fn traces_are_exported_over_otlp_when_an_endpoint_is_set() {
    let dir = temp_dir();
    let email = "traced.person@otlp-agency.test";
    let password = "a traced but private passphrase";
    assert!(bootstrap(&dir.0, "Traced Agency", email, password).status.success());
    let collector = start_collector().await;
    let mut command = passerelle(&dir.0);
    command
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url)
        .env("OTEL_SERVICE_NAME", "passerelle-under-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stderr(Stdio::null());
    let server = serve(command).await;
    let url = server.url.clone();
    let (trace, caller_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let login = reqwest::Client::new()
        .post(&url)
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&serde_json::json!({
            "query": "mutation SignIn($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }",
            "operationName": "SignIn",
            "variables": {"e": email, "p": password},
        }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let token = login["data"]["login"]["accessToken"].as_str().expect("signed in").to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (spans, services) = loop {
        let (spans, services) = collector.spans();
        let has =
            |prefix: &str| spans.iter().any(|s| s.trace_id == hex_bytes(trace) && s.name.starts_with(prefix));
        if has("POST /graphql") && has("graphql SignIn") && has("sea_orm.") && has("cache.") {
            break (spans, services);
        }
        assert!(std::time::Instant::now() < deadline, "spans missing: {spans:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    drop(server);
    collector.server.stop(false).await;

    assert!(services.iter().all(|s| s == "passerelle-under-test"), "{services:?}");
    let ours: Vec<&Exported> = spans.iter().filter(|s| s.trace_id == hex_bytes(trace)).collect();
    let request = ours.iter().find(|s| s.name == "POST /graphql").unwrap();
    assert_eq!(request.parent, hex_bytes(caller_span), "the request continues the caller's trace");
    let operation = ours.iter().find(|s| s.name == "graphql SignIn").unwrap();
    assert_eq!(operation.parent, request.span_id, "the operation runs inside the request");
    let attribute =
        |span: &Exported, key: &str| span.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(attribute(request, "http.response.status_code").as_deref(), Some("200"));
    let by_id: std::collections::HashMap<&[u8], &Exported> =
        ours.iter().map(|s| (s.span_id.as_slice(), *s)).collect();
    let within_operation = |span: &Exported| {
        let mut parent = by_id.get(span.parent.as_slice());
        while let Some(p) = parent {
            if p.span_id == operation.span_id {
                return true;
            }
            parent = by_id.get(p.parent.as_slice());
        }
        false
    };
    let statements: Vec<&&Exported> = ours.iter().filter(|s| s.name.starts_with("sea_orm.")).collect();
    assert!(statements.iter().any(|s| within_operation(s)), "the login's queries: {statements:#?}");
    assert!(statements.iter().all(|s| attribute(s, "db.system").as_deref() == Some("sqlite")));
    let cache = ours.iter().find(|s| s.name.starts_with("cache.")).unwrap();
    assert_eq!(attribute(cache, "db.system").as_deref(), Some("in-process"));
    // Privacy: nothing the caller sent or received is in any exported attribute.
    for span in &spans {
        for (key, value) in &span.attributes {
            for needle in [email, password, token.as_str(), "traced.person"] {
                assert!(!value.contains(needle), "{} {key} carries personal data or a secret", span.name);
            }
        }
    }
}
