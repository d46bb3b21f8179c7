//! Layered configuration: built-in defaults ← `passerelle.toml` ← `PASSERELLE_*` environment
//! (plus `DATABASE_URL`, `REDIS_URL`) ← command-line flags (applied by the binary).

use crate::PlatformError;
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Unset: SQLite in `data_dir`. `postgres://…`: PostgreSQL, connected as the app role.
    pub database_url: Option<String>,
    /// The owner role that runs migrations; unset means `database_url`.
    pub migration_database_url: Option<String>,
    /// Unset: in-process cache and rate limiter.
    pub redis_url: Option<String>,
    /// Prepended to every cache key, so several deployments (or tests) can share one Redis.
    pub cache_prefix: String,
    pub graphiql: bool,
    pub introspection: bool,
    pub log_format: LogFormat,
    /// Run the background workers (ingestion, segments, journeys, delivery) inside `serve`.
    /// Off when a separate `passerelle worker` deployment does that work.
    pub workers: bool,
    /// Workspaces whose pending events one worker process processes at the same time. One
    /// workspace's events are processed in order, one chunk at a time; several workspaces
    /// use several cores, and a workspace with a large backlog does not hold up the others.
    pub ingest_concurrency: usize,
    /// How often segments whose definition depends on the time (a window, a date relative to
    /// now) are evaluated in full, so people leave them when a window slides past their
    /// last event, without a new event.
    pub segment_refresh_seconds: u64,
    /// How long a delivery worker holds a send it is delivering. A worker that dies mid-send
    /// leaves a claim that another picks up after this, under the same idempotency key; keep
    /// it above the webhook timeout (10 s) so a slow receiver is not asked twice.
    pub delivery_lease_seconds: u64,
    /// Let webhooks reach private addresses (loopback, private networks, link-local). On in
    /// the embedded default for local development; off in the Helm production values, so a
    /// webhook URL cannot be used to call into the platform's own network.
    pub webhooks_to_private_addresses: bool,
    /// Apply migrations when `serve` or `worker` starts. Off where a separate step migrates as
    /// the owner role (the Helm chart's hook Job), so the app pods never need that role.
    pub migrate_on_start: bool,
    /// Browser origins (`https://console.example.com`) allowed to call the staff endpoints
    /// (`/graphql`, imports, exports) cross-origin; empty: none, serve the console from the
    /// API's origin. The tracking API answers every origin regardless, as analytics SDKs need.
    pub cors_origins: Vec<String>,
    pub limits: Limits,
    pub rate_limits: RateLimits,
    pub auth: AuthSettings,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub query_depth: usize,
    pub query_complexity: usize,
    pub query_aliases: usize,
    pub body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Sustained requests per second allowed from one client IP.
    pub per_ip_per_second: f64,
    pub per_ip_burst: u32,
    /// Sustained requests per second allowed for one API key or one staff user.
    pub per_principal_per_second: f64,
    pub per_principal_burst: u32,
    /// Take the client IP from the last `X-Forwarded-For` hop, the one the trusted proxy in
    /// front of us appended (enable only behind such a proxy).
    pub trust_forwarded_for: bool,
    /// Tracking API requests per second per write key (each may carry a 500 KB batch).
    pub ingest_per_key_per_second: f64,
    pub ingest_per_key_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// `kid:base64secret` pairs separated by commas; the first signs, all verify. Unset: keys
    /// are generated once into `data_dir/jwt-keys.json`.
    pub jwt_keys: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    /// argon2id memory in KiB, iterations and lanes (OWASP: m ≥ 19456, t ≥ 2, p = 1).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// Failed logins for one email before the lockout starts growing.
    pub lockout_threshold: u32,
    pub lockout_base_secs: u64,
    pub lockout_max_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            migration_database_url: None,
            redis_url: None,
            cache_prefix: "passerelle".into(),
            graphiql: true,
            introspection: true,
            log_format: LogFormat::Json,
            workers: true,
            ingest_concurrency: 4,
            segment_refresh_seconds: 60,
            delivery_lease_seconds: 60,
            webhooks_to_private_addresses: true,
            migrate_on_start: true,
            cors_origins: Vec::new(),
            limits: Limits::default(),
            rate_limits: RateLimits::default(),
            auth: AuthSettings::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self { query_depth: 12, query_complexity: 1000, query_aliases: 30, body_bytes: 256 * 1024 }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_ip_per_second: 50.0,
            per_ip_burst: 200,
            per_principal_per_second: 100.0,
            per_principal_burst: 400,
            trust_forwarded_for: false,
            ingest_per_key_per_second: 2000.0,
            ingest_per_key_burst: 4000,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            jwt_keys: None,
            issuer: "passerelle".into(),
            audience: "passerelle-api".into(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            lockout_threshold: 5,
            lockout_base_secs: 1,
            lockout_max_secs: 15 * 60,
        }
    }
}

impl Settings {
    /// Defaults, then the TOML file (the given one must exist; `./passerelle.toml` is read only
    /// if present), then the environment.
    pub fn load(config_file: Option<&std::path::Path>) -> Result<Self, PlatformError> {
        let mut settings = match config_file {
            Some(path) => Self::from_toml(&std::fs::read_to_string(path)?)?,
            None => match std::fs::read_to_string("passerelle.toml") {
                Ok(text) => Self::from_toml(&text)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
                Err(e) => return Err(e.into()),
            },
        };
        settings.apply_env(|name| std::env::var(name).ok())?;
        settings.validate()?;
        Ok(settings)
    }

    /// The error names the line and the problem but never quotes the file: the offending line
    /// may hold a database password or a signing key.
    pub fn from_toml(text: &str) -> Result<Self, PlatformError> {
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|span| text.get(..span.start).unwrap_or(text).lines().count().max(1));
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            PlatformError::Config(format!("passerelle.toml{at}: {}", e.message()))
        })
    }

    /// Every environment variable the product reads, in one place (the README's table).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), PlatformError> {
        fn parse<T: std::str::FromStr>(name: &str, raw: String) -> Result<T, PlatformError> {
            raw.trim().parse().map_err(|_| PlatformError::Config(format!("{name} has an invalid value")))
        }
        fn flag(name: &str, raw: String) -> Result<bool, PlatformError> {
            match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => Ok(true),
                "0" | "false" | "off" | "no" => Ok(false),
                _ => Err(PlatformError::Config(format!("{name} must be true or false"))),
            }
        }
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = non_empty("PASSERELLE_LISTEN") {
            self.listen = parse("PASSERELLE_LISTEN", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = non_empty("DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = non_empty("PASSERELLE_MIGRATION_DATABASE_URL") {
            self.migration_database_url = Some(v);
        }
        if let Some(v) = non_empty("REDIS_URL") {
            self.redis_url = Some(v);
        }
        if let Some(v) = non_empty("PASSERELLE_CACHE_PREFIX") {
            self.cache_prefix = v;
        }
        if let Some(v) = non_empty("PASSERELLE_GRAPHIQL") {
            self.graphiql = flag("PASSERELLE_GRAPHIQL", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_INTROSPECTION") {
            self.introspection = flag("PASSERELLE_INTROSPECTION", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_LOG_FORMAT") {
            self.log_format = match v.trim() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => {
                    return Err(PlatformError::Config("PASSERELLE_LOG_FORMAT must be json or pretty".into()));
                }
            };
        }
        if let Some(v) = non_empty("PASSERELLE_MAX_QUERY_DEPTH") {
            self.limits.query_depth = parse("PASSERELLE_MAX_QUERY_DEPTH", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_MAX_QUERY_COMPLEXITY") {
            self.limits.query_complexity = parse("PASSERELLE_MAX_QUERY_COMPLEXITY", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_MAX_QUERY_ALIASES") {
            self.limits.query_aliases = parse("PASSERELLE_MAX_QUERY_ALIASES", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_MAX_BODY_BYTES") {
            self.limits.body_bytes = parse("PASSERELLE_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_RATE_LIMIT_IP_PER_SECOND") {
            self.rate_limits.per_ip_per_second = parse("PASSERELLE_RATE_LIMIT_IP_PER_SECOND", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_RATE_LIMIT_IP_BURST") {
            self.rate_limits.per_ip_burst = parse("PASSERELLE_RATE_LIMIT_IP_BURST", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_RATE_LIMIT_KEY_PER_SECOND") {
            self.rate_limits.per_principal_per_second = parse("PASSERELLE_RATE_LIMIT_KEY_PER_SECOND", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_RATE_LIMIT_KEY_BURST") {
            self.rate_limits.per_principal_burst = parse("PASSERELLE_RATE_LIMIT_KEY_BURST", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_RATE_LIMIT_INGEST_PER_SECOND") {
            self.rate_limits.ingest_per_key_per_second = parse("PASSERELLE_RATE_LIMIT_INGEST_PER_SECOND", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_RATE_LIMIT_INGEST_BURST") {
            self.rate_limits.ingest_per_key_burst = parse("PASSERELLE_RATE_LIMIT_INGEST_BURST", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_WORKERS") {
            self.workers = flag("PASSERELLE_WORKERS", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_INGEST_CONCURRENCY") {
            self.ingest_concurrency = parse("PASSERELLE_INGEST_CONCURRENCY", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_SEGMENT_REFRESH_SECONDS") {
            self.segment_refresh_seconds = parse("PASSERELLE_SEGMENT_REFRESH_SECONDS", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_DELIVERY_LEASE_SECONDS") {
            self.delivery_lease_seconds = parse("PASSERELLE_DELIVERY_LEASE_SECONDS", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_WEBHOOKS_TO_PRIVATE_ADDRESSES") {
            self.webhooks_to_private_addresses = flag("PASSERELLE_WEBHOOKS_TO_PRIVATE_ADDRESSES", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_MIGRATE_ON_START") {
            self.migrate_on_start = flag("PASSERELLE_MIGRATE_ON_START", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_CORS_ORIGINS") {
            self.cors_origins = v.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        }
        if let Some(v) = non_empty("PASSERELLE_TRUST_FORWARDED_FOR") {
            self.rate_limits.trust_forwarded_for = flag("PASSERELLE_TRUST_FORWARDED_FOR", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_JWT_KEYS") {
            self.auth.jwt_keys = Some(v);
        }
        if let Some(v) = non_empty("PASSERELLE_ACCESS_TOKEN_TTL_SECS") {
            self.auth.access_token_ttl_secs = parse("PASSERELLE_ACCESS_TOKEN_TTL_SECS", v)?;
        }
        if let Some(v) = non_empty("PASSERELLE_REFRESH_TOKEN_TTL_SECS") {
            self.auth.refresh_token_ttl_secs = parse("PASSERELLE_REFRESH_TOKEN_TTL_SECS", v)?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), PlatformError> {
        let bad = |m: &str| Err(PlatformError::Config(m.to_owned()));
        if self.auth.argon2_memory_kib < 19 * 1024 || self.auth.argon2_iterations < 2 {
            return bad("argon2 parameters are below the OWASP minimum (m ≥ 19456 KiB, t ≥ 2)");
        }
        if self.auth.access_token_ttl_secs <= 0 || self.auth.refresh_token_ttl_secs <= 0 {
            return bad("token lifetimes must be positive");
        }
        if let Some(origin) = self.cors_origins.iter().find(|o| !is_origin(o)) {
            return Err(PlatformError::Config(format!(
                "CORS origin {origin:?} is not an origin: scheme and host (and port) only, e.g. \
                 https://console.example.com"
            )));
        }
        if !(1..=64).contains(&self.ingest_concurrency) {
            return bad("ingest concurrency must be between 1 and 64 workspaces");
        }
        if !(1..=86_400).contains(&self.segment_refresh_seconds) {
            return bad("the segment refresh interval must be between 1 second and 1 day");
        }
        if !(1..=3_600).contains(&self.delivery_lease_seconds) {
            return bad("the delivery lease must be between 1 second and 1 hour");
        }
        if self.limits.body_bytes < 1024 {
            return bad("max body size must be at least 1024 bytes");
        }
        if self.rate_limits.per_ip_per_second <= 0.0 || self.rate_limits.per_principal_per_second <= 0.0 {
            return bad("rate limits must be positive");
        }
        if let Some(url) = &self.database_url
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
            && !url.starts_with("sqlite:")
        {
            return bad("DATABASE_URL must be a postgres:// or sqlite: URL");
        }
        Ok(())
    }

    /// The database URL the app connects with (SQLite in the data dir when unset).
    pub fn app_database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("passerelle.db").display()))
    }

    pub fn owner_database_url(&self) -> String {
        self.migration_database_url.clone().unwrap_or_else(|| self.app_database_url())
    }
}

/// `http(s)://host[:port]`, nothing more: what browsers send in `Origin` and compare exactly.
fn is_origin(origin: &str) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else { return false };
    let (host, port) = rest.rsplit_once(':').map_or((rest, None), |(h, p)| (h, Some(p)));
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let mut s = Settings::from_toml("graphiql = false\n[limits]\nquery_depth = 5\n").unwrap();
        assert!(!s.graphiql);
        assert_eq!(s.limits.query_depth, 5);
        assert_eq!(s.limits.query_aliases, Limits::default().query_aliases);
        s.apply_env(|k| (k == "PASSERELLE_MAX_QUERY_DEPTH").then(|| "7".to_string())).unwrap();
        assert_eq!(s.limits.query_depth, 7);
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let mut s = Settings::default();
        let err = s.apply_env(|k| (k == "PASSERELLE_GRAPHIQL").then(|| "maybe".into())).unwrap_err();
        assert!(err.to_string().contains("PASSERELLE_GRAPHIQL"));
        assert!(Settings::from_toml("unknown_key = 1").is_err());
        let secret = Settings::from_toml("graphiql = true\ndatabase_url = 42 # postgres://app:hunter2@db\n");
        let message = secret.unwrap_err().to_string();
        assert!(message.contains("line 2") && !message.contains("hunter2"), "{message}");
        s.database_url = Some("mysql://x".into());
        assert!(s.validate().is_err());
        let mut s = Settings::default();
        s.apply_env(|k| (k == "PASSERELLE_INGEST_CONCURRENCY").then(|| "8".into())).unwrap();
        assert_eq!(s.ingest_concurrency, 8);
        assert!(s.validate().is_ok());
        s.ingest_concurrency = 0;
        assert!(s.validate().unwrap_err().to_string().contains("ingest concurrency"));
        let err = s.apply_env(|k| (k == "PASSERELLE_INGEST_CONCURRENCY").then(|| "many".into())).unwrap_err();
        assert!(err.to_string().contains("PASSERELLE_INGEST_CONCURRENCY"));
        let mut s = Settings::default();
        s.apply_env(|k| (k == "PASSERELLE_SEGMENT_REFRESH_SECONDS").then(|| "5".into())).unwrap();
        assert_eq!(s.segment_refresh_seconds, 5);
        s.segment_refresh_seconds = 0;
        assert!(s.validate().unwrap_err().to_string().contains("segment refresh"));
    }

    #[test]
    fn cors_origins_are_read_as_a_list_of_exact_origins() {
        let mut s = Settings::default();
        assert!(s.cors_origins.is_empty());
        let env = "https://console.example.com, http://localhost:5173,";
        s.apply_env(|k| (k == "PASSERELLE_CORS_ORIGINS").then(|| env.into())).unwrap();
        assert_eq!(s.cors_origins, ["https://console.example.com", "http://localhost:5173"]);
        assert!(s.validate().is_ok());
        for bad in ["*", "console.example.com", "https://console.example.com/", "ftp://x", "https://x:99999"]
        {
            s.cors_origins = vec![bad.into()];
            assert!(s.validate().unwrap_err().to_string().contains("CORS origin"), "{bad}");
        }
    }

    #[test]
    fn delivery_lease_is_read_and_bounded() {
        let mut s = Settings::default();
        assert_eq!(s.delivery_lease_seconds, 60);
        s.apply_env(|k| (k == "PASSERELLE_DELIVERY_LEASE_SECONDS").then(|| "2".into())).unwrap();
        assert_eq!(s.delivery_lease_seconds, 2);
        s.delivery_lease_seconds = 0;
        assert!(s.validate().unwrap_err().to_string().contains("delivery lease"));
    }
}
