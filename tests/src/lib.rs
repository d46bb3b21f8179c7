//! The one test harness (DESIGN §7.9): [`spawn_app`] builds the real application through
//! `Application::build` on port 0 with a fresh database (a new SQLite file, or a new PostgreSQL
//! database reached as the non-owner app role) and a per-test Redis key prefix.
//!
//! PostgreSQL is found through `PASSERELLE_TEST_PG_ADMIN_URL` (a superuser, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and Redis through `PASSERELLE_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passerelle::Application;
use platform::Settings;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use std::net::SocketAddr;

pub use platform::Backend;

pub mod receiver;
pub mod smtp_sink;

pub const OWNER_PASSWORD: &str = "correct horse battery staple";
const APP_ROLE: &str = "passerelle_app";
const OWNER_ROLE: &str = "passerelle_owner";
const ROLE_PASSWORD: &str = "passerelle";

/// Runs one async test scenario on both backends: `on_both_backends!(scenario_fn)` makes a
/// module `scenario_fn` with `sqlite` and `postgres` tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub backend: Backend,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// The JWT keyring spec the app runs with, so tests can forge tokens with it.
    pub jwt_spec: String,
    /// The running app's own tenancy service, for what an operator does outside the API
    /// (`passerelle bootstrap`).
    pub tenancy: tenancy::Tenancy,
    /// The running app's profiles service: tests call [`TestApp::process_events`] to wait for
    /// the ingestion worker deterministically.
    pub profiles: profiles::Profiles,
    /// The running app's segments service, for deterministic rounds of its real-time worker.
    pub segments: segments::Segments,
    /// The running app's campaigns service, for deterministic rounds of the journey executor
    /// and of delivery.
    pub campaigns: campaigns::Campaigns,
    /// The running app's measurement service (its report cache statistics).
    pub measurement: measurement::Measurement,
    _data_dir: TempDir,
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("PASSERELLE_TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn redis_url() -> String {
    std::env::var("PASSERELLE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `postgres://user@host:port/db` with another user (and password) and database.
fn pg_url(role: &str, database: &str) -> String {
    let admin = pg_admin_url();
    let rest = admin.split_once("://").unwrap().1;
    let host_and_db = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let host = host_and_db.split('/').next().unwrap();
    format!("postgres://{role}:{ROLE_PASSWORD}@{host}/{database}")
}

/// Creates the owner and app roles (once per cluster) and a fresh database owned by the owner.
/// Settings for a fresh PostgreSQL database reached as the app role and migrated as the owner,
/// without building the application (to test what happens before it starts).
pub async fn fresh_postgres_settings() -> Settings {
    let database = fresh_postgres_database().await;
    Settings {
        database_url: Some(pg_url(APP_ROLE, &database)),
        migration_database_url: Some(pg_url(OWNER_ROLE, &database)),
        ..Settings::default()
    }
}

async fn fresh_postgres_database() -> String {
    let admin = Database::connect(pg_admin_url()).await.expect("PostgreSQL must be running (see README)");
    for (role, extra) in [(OWNER_ROLE, ""), (APP_ROLE, " NOBYPASSRLS")] {
        // Concurrent tests may race to create the role; losing that race is fine.
        let _ = admin
            .execute_unprepared(&format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN \
                 CREATE ROLE {role} LOGIN NOSUPERUSER{extra} PASSWORD '{ROLE_PASSWORD}'; END IF; END $$;"
            ))
            .await;
    }
    drop_stale_databases(&admin).await;
    let now = chrono::Utc::now().timestamp();
    let name = format!("ptest_{now}_{}", uuid::Uuid::new_v4().simple());
    admin.execute_unprepared(&format!("CREATE DATABASE {name} OWNER {OWNER_ROLE}")).await.unwrap();
    admin.close().await.ok();
    name
}

/// Test databases are named with their creation time; ones older than two hours are leftovers.
async fn drop_stale_databases(admin: &sea_orm::DatabaseConnection) {
    let cutoff = chrono::Utc::now().timestamp() - 7200;
    let Ok(rows) = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT datname FROM pg_database WHERE datname LIKE 'ptest_%'",
        ))
        .await
    else {
        return;
    };
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else { continue };
        let created: i64 = name.split('_').nth(1).and_then(|t| t.parse().ok()).unwrap_or(i64::MAX);
        if created < cutoff {
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with a chance to change the settings first.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = std::env::temp_dir().join(format!("passerelle-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let jwt_spec = tenancy::JwtKeys::generate_spec();
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        cache_prefix: format!("test-{}", uuid::Uuid::new_v4().simple()),
        ..Settings::default()
    };
    settings.auth.jwt_keys = Some(jwt_spec.clone());
    settings.rate_limits.per_ip_per_second = 1000.0;
    settings.rate_limits.per_ip_burst = 1000;
    settings.rate_limits.per_principal_per_second = 1000.0;
    settings.rate_limits.per_principal_burst = 1000;
    if backend == Backend::Postgres {
        let database = fresh_postgres_database().await;
        settings.database_url = Some(pg_url(APP_ROLE, &database));
        settings.migration_database_url = Some(pg_url(OWNER_ROLE, &database));
        settings.redis_url = Some(redis_url());
    }
    configure(&mut settings);
    let app = Application::build(settings.clone()).await.expect("the application builds");
    let (addr, services) = app.spawn();
    let passerelle::Services { tenancy, profiles, segments, campaigns, measurement, .. } = services;
    TestApp {
        addr,
        backend,
        client: reqwest::Client::new(),
        settings,
        jwt_spec,
        tenancy,
        profiles,
        segments,
        campaigns,
        measurement,
        _data_dir: TempDir(data_dir),
    }
}

/// A GraphQL answer, with helpers to read it in assertions.
#[derive(Debug, Clone)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    /// `data` at a dotted path (numbers index arrays); panics with the whole answer when there were errors.
    pub fn data(&self, path: &str) -> &Value {
        assert!(self.body.get("errors").is_none(), "unexpected errors: {}", self.body);
        let mut value = &self.body["data"];
        for part in path.split('.').filter(|p| !p.is_empty()) {
            value = match part.parse::<usize>() {
                Ok(index) if value.is_array() => &value[index],
                _ => &value[part],
            };
        }
        value
    }

    pub fn str(&self, path: &str) -> String {
        self.data(path)
            .as_str()
            .unwrap_or_else(|| panic!("{path} is not a string in {}", self.body))
            .to_owned()
    }

    /// `field` of every node of the connection at `path`, as strings.
    pub fn node_strings(&self, path: &str, field: &str) -> Vec<String> {
        self.data(&format!("{path}.edges"))
            .as_array()
            .unwrap_or_else(|| panic!("{path} is not a connection in {}", self.body))
            .iter()
            .map(|edge| edge["node"][field].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The first error's `extensions.code`, or `None`.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn expect_code(&self, code: &str) {
        assert_eq!(self.code(), Some(code), "expected {code}, got {}", self.body);
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn gql(&self, query: &str, variables: Value, bearer: Option<&str>) -> Gql {
        self.gql_with_headers(query, variables, bearer, &[]).await
    }

    /// Walks a connection page by page: `query` takes `$after` and selects, at `path`,
    /// `edges { cursor node { <field> } } pageInfo { hasNextPage endCursor }`. Returns `field`
    /// of every node in order and the number of pages.
    pub async fn all_pages(
        &self,
        query: &str,
        mut variables: Value,
        bearer: Option<&str>,
        path: &str,
        field: &str,
    ) -> (Vec<String>, usize) {
        let (mut nodes, mut pages) = (Vec::new(), 0);
        loop {
            let page = self.gql(query, variables.clone(), bearer).await;
            pages += 1;
            nodes.extend(page.node_strings(path, field));
            if page.data(&format!("{path}.pageInfo.hasNextPage")) != &json!(true) {
                return (nodes, pages);
            }
            variables["after"] = page.data(&format!("{path}.pageInfo.endCursor")).clone();
            assert!(pages < 100, "the connection at {path} never ends");
        }
    }

    pub async fn gql_with_headers(
        &self,
        query: &str,
        variables: Value,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Gql {
        let mut request =
            self.client.post(self.url("/graphql")).json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Gql { status, body }
    }

    /// Onboards an agency the way an operator does and signs its owner in.
    pub async fn agency(&self, name: &str) -> Agency {
        let email =
            format!("owner-{}@{}.test", uuid::Uuid::new_v4().simple(), name.to_lowercase().replace(' ', "-"));
        let created = self.tenancy.bootstrap_agency(name, &email, OWNER_PASSWORD).await.unwrap();
        let tokens = self.login(&email, OWNER_PASSWORD).await;
        Agency { id: created.agency_id.to_string(), owner_email: email, owner_token: tokens.access_token }
    }

    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let answer = self
            .gql(
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken expiresAt } }",
                json!({ "e": email, "p": password }),
                None,
            )
            .await;
        Tokens {
            access_token: answer.str("login.accessToken"),
            refresh_token: answer.str("login.refreshToken"),
        }
    }

    pub async fn create_workspace(&self, token: &str, name: &str) -> String {
        self.gql(
            "mutation($n: String!) { createWorkspace(input: {name: $n}) { id } }",
            json!({ "n": name }),
            Some(token),
        )
        .await
        .str("createWorkspace.id")
    }

    /// Creates an API key and returns `(key id, secret)`.
    pub async fn create_api_key(
        &self,
        token: &str,
        workspace: &str,
        kind: &str,
        scopes: &[&str],
    ) -> (String, String) {
        let answer = self
            .gql(
                "mutation($w: ID!, $k: ApiKeyKind!, $s: [ApiKeyScope!]!) {
                   createApiKey(input: {workspaceId: $w, name: \"test key\", kind: $k, scopes: $s}) {
                     secret key { id } } }",
                json!({ "w": workspace, "k": kind, "s": scopes }),
                Some(token),
            )
            .await;
        (answer.str("createApiKey.key.id"), answer.str("createApiKey.secret"))
    }

    /// `POST /v1/{path}` with the write key as HTTP Basic user (when given); returns the
    /// status and the JSON body.
    pub async fn track(&self, path: &str, write_key: Option<&str>, body: &Value) -> (u16, Value) {
        self.track_raw(path, write_key, body.to_string().into_bytes()).await
    }

    pub async fn track_raw(&self, path: &str, write_key: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("http://{}/v1/{path}", self.addr))
            .header("content-type", "text/plain")
            .body(body);
        if let Some(key) = write_key {
            request = request.basic_auth(key, Some(""));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `PUT {upload_path}` with a CSV body, as a staff member or integration would send a file.
    pub async fn upload_import(&self, bearer: &str, upload_path: &str, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .put(self.url(upload_path))
            .header("content-type", "text/csv")
            .bearer_auth(bearer)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The value of one series of `GET /metrics` (`name{labels}` exactly as exposed).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.client.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        metric_value(&text, series)
    }

    /// Waits until every event committed so far is processed: one sweep over all workspaces,
    /// four at a time as the worker does by default, which queues behind the background
    /// worker's graph lock when it is mid-chunk.
    pub async fn process_events(&self) {
        self.profiles.process_queued(true, 4).await.unwrap();
    }

    /// Processes pending events, then applies the profiles' change feed to segments, as the
    /// background workers do.
    pub async fn process_events_and_segments(&self) {
        self.process_events().await;
        self.segments.apply_changes().await.unwrap();
    }

    /// Processes events and segments, then runs the journey executor and delivery once each,
    /// as the background workers do.
    pub async fn run_journeys(
        &self,
    ) -> (campaigns::executor::ExecutionRound, campaigns::delivery::DeliveryRound) {
        self.process_events_and_segments().await;
        let executed = self.campaigns.execute_due().await.unwrap();
        let delivered = self.campaigns.deliver_due().await.unwrap();
        (executed, delivered)
    }

    /// A workspace with a write key: `(owner token, workspace id, write key)`.
    pub async fn tracking_workspace(&self) -> (String, String, String) {
        let token = self.agency("Tracking agency").await.owner_token;
        let workspace = self.create_workspace(&token, "Tracked").await;
        let (_, key) = self.create_api_key(&token, &workspace, "WRITE", &[]).await;
        (token, workspace, key)
    }

    /// Creates a staff user with a role and signs them in; returns `(user id, access token)`.
    pub async fn staff(&self, token: &str, role: &str, workspace: Option<&str>) -> (String, String) {
        let email = format!("{}-{}@staff.test", role.to_lowercase(), uuid::Uuid::new_v4().simple());
        let answer = self
            .gql(
                "mutation($e: String!, $p: String, $r: Role!, $w: ID) {
                   createUser(input: {email: $e, password: $p, role: $r, workspaceId: $w}) { user { id } } }",
                json!({ "e": email, "p": OWNER_PASSWORD, "r": role, "w": workspace }),
                Some(token),
            )
            .await;
        let id = answer.str("createUser.user.id");
        (id, self.login(&email, OWNER_PASSWORD).await.access_token)
    }
}

pub struct Agency {
    pub id: String,
    pub owner_email: String,
    pub owner_token: String,
}

pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// The value of one series (`name{labels}` exactly as exposed) in a Prometheus text page.
pub fn metric_value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}
