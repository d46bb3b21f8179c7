//! The binary as an operator uses it: `--help`, `schema`, `migrate`, `bootstrap` from stdin
//! (again for a second agency), `serve` on the embedded default, and `attribution` offline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
};

fn passerelle(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    command
        .current_dir(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("PASSERELLE_MIGRATION_DATABASE_URL")
        .env("PASSERELLE_DATA_DIR", data_dir.join("data"))
        .env("PASSERELLE_LOG_FORMAT", "json");
    command
}

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

struct Dir(std::path::PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> Dir {
    let dir = std::env::temp_dir().join(format!("passerelle-cli-{}", std::process::id()));
    let dir = dir.with_extension(format!(
        "{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

/// What `serve` prints first: the line with the URL.
async fn first_line_of_stdout(child: &mut std::process::Child) -> String {
    let stdout = child.stdout.take().unwrap();
    tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap()
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
    let mut child = passerelle(&dir.0)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let line = first_line_of_stdout(&mut child).await;
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
    assert!(line.contains("GraphiQL"), "{line}");
    let ready = reqwest::get(url.replace("/graphql", "/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(dir.0.join("data/passerelle.db").exists());
    assert!(dir.0.join("data/jwt-keys").exists());
    child.kill().unwrap();
    child.wait().unwrap();
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
    let mut child = passerelle(&dir.0)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PASSERELLE_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let line = first_line_of_stdout(&mut child).await;
    let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_owned();
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
    child.kill().unwrap();
    child.wait().unwrap();
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
