//! Wiring: settings → database (migrated) → cache → services → HTTP server. `main` and every
//! test build the application through [`Application::build`], so tests run the real thing.

use anyhow::Context as _;
use campaigns::Campaigns;
use gateway::{AppState, GatewaySettings};
use migrations::{Migrator, sea_orm_migration::MigratorTrait};
use platform::{Backend, Cache, Db, RateLimiter, Settings, metrics::Metrics};
use profiles::Profiles;
use segments::Segments;
use std::{net::SocketAddr, sync::Arc};
use tenancy::{JwtKeys, Tenancy};

pub mod demo;

pub struct Application {
    addr: SocketAddr,
    server: actix_web::dev::Server,
    services: Services,
    workers: Option<Workers>,
}

/// The background workers of this process, stopped when it stops.
pub struct Workers {
    shutdown: tokio::sync::watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Starts the background workers on the current runtime.
    pub fn start(services: &Services, settings: &Settings) -> Self {
        let (shutdown, receiver) = tokio::sync::watch::channel(false);
        let metrics = &services.metrics;
        let ingestion = services.profiles.clone().run_ingestion_worker(
            settings.ingest_concurrency,
            receiver.clone(),
            metrics.clone(),
        );
        let refresh = std::time::Duration::from_secs(settings.segment_refresh_seconds);
        let segments = services.segments.clone().run_worker(refresh, receiver.clone());
        let executor = services.campaigns.clone().run_executor(receiver.clone(), metrics.clone());
        let delivery = services.campaigns.clone().run_delivery(receiver, metrics.clone());
        let handles = vec![
            tokio::spawn(ingestion),
            tokio::spawn(segments),
            tokio::spawn(executor),
            tokio::spawn(delivery),
        ];
        Self { shutdown, handles }
    }

    /// Asks the workers to stop after their current round and waits for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

/// The services, connected and migrated, without the HTTP server (for `bootstrap`).
pub struct Services {
    pub db: Db,
    pub cache: Cache,
    pub tenancy: Tenancy,
    pub profiles: Profiles,
    pub segments: Segments,
    pub campaigns: Campaigns,
    pub measurement: measurement::Measurement,
    /// The process's Prometheus registry, served at `/metrics` by the gateway and the worker.
    pub metrics: Metrics,
}

impl Services {
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        if settings.migrate_on_start {
            migrate(settings).await?;
        }
        let db = Db::connect(&settings.app_database_url()).await.context("connecting to the database")?;
        if db.role_bypasses_row_security().await? {
            tracing::warn!(
                "the database role of DATABASE_URL owns the tables, is a superuser or has \
                 BYPASSRLS: row-level security does not fully protect tenant data; connect as a \
                 non-owner role and migrate with PASSERELLE_MIGRATION_DATABASE_URL (see README)"
            );
        }
        let cache = match &settings.redis_url {
            Some(url) => Cache::redis(url, &settings.cache_prefix).await.context("connecting to Redis")?,
            None => Cache::in_process(&settings.cache_prefix),
        };
        let auth = &settings.auth;
        let keys = match &auth.jwt_keys {
            Some(spec) => JwtKeys::parse(spec, &auth.issuer, &auth.audience),
            None => JwtKeys::load_or_generate(&settings.data_dir, &auth.issuer, &auth.audience),
        }
        .map_err(|e| anyhow::anyhow!("JWT keys: {e}"))?;
        let tenancy =
            Tenancy::new(db.clone(), cache.clone(), auth.clone(), keys, Arc::new(kernel::SystemClock))
                .map_err(|e| anyhow::anyhow!("tenancy: {e}"))?;
        let profiles =
            Profiles::new(db.clone(), cache.clone(), tenancy.clone(), Arc::new(kernel::SystemClock));
        let segments = Segments::new(
            db.clone(),
            cache.clone(),
            tenancy.clone(),
            profiles.clone(),
            Arc::new(kernel::SystemClock),
        );
        let campaigns = Campaigns::new(
            db.clone(),
            tenancy.clone(),
            profiles.clone(),
            segments.clone(),
            Arc::new(kernel::SystemClock),
            campaigns::CampaignsConfig {
                delivery_lease: std::time::Duration::from_secs(settings.delivery_lease_seconds),
                audience_root: settings.data_dir.join("audiences"),
                webhooks_to_private_addresses: settings.webhooks_to_private_addresses,
            },
        );
        let measurement = measurement::Measurement::new(
            db.clone(),
            cache.clone(),
            tenancy.clone(),
            campaigns.clone(),
            Arc::new(kernel::SystemClock),
        );
        let metrics = Metrics::new().context("metrics registry")?;
        sample_state(&metrics, &db, &segments, &measurement).context("metrics registry")?;
        Ok(Self { db, cache, tenancy, profiles, segments, campaigns, measurement, metrics })
    }
}

impl Services {
    /// What the operations endpoints serve from.
    fn ops(&self) -> gateway::Ops {
        gateway::Ops { db: self.db.clone(), cache: self.cache.clone(), metrics: self.metrics.clone() }
    }
}

/// The metrics read at scrape time from state the services keep: the answer caches' hits and
/// misses (with their ratio, which dashboards want as is) and the database pool.
fn sample_state(
    metrics: &Metrics,
    db: &Db,
    segments: &Segments,
    measurement: &measurement::Measurement,
) -> Result<(), platform::metrics::PrometheusError> {
    let caches = {
        let (segments, measurement) = (segments.clone(), measurement.clone());
        move || [("segments", segments.cache_stats()), ("reports", measurement.report_cache_stats())]
    };
    let read = caches.clone();
    metrics.sample_counter("cache_hits_total", "Answer cache hits", &["cache"], move || {
        read().iter().map(|(name, stats)| (vec![(*name).to_owned()], stats.hits as f64)).collect()
    })?;
    let read = caches.clone();
    metrics.sample_counter("cache_misses_total", "Answer cache misses", &["cache"], move || {
        read().iter().map(|(name, stats)| (vec![(*name).to_owned()], stats.misses as f64)).collect()
    })?;
    metrics.sample_gauge(
        "cache_hit_ratio",
        "Answer cache hits over lookups since the process started (0 before any lookup)",
        &["cache"],
        move || {
            caches()
                .iter()
                .map(|(name, stats)| {
                    let lookups = stats.hits + stats.misses;
                    let ratio = if lookups == 0 { 0.0 } else { stats.hits as f64 / lookups as f64 };
                    (vec![(*name).to_owned()], ratio)
                })
                .collect()
        },
    )?;
    let pool = db.clone();
    metrics.sample_gauge(
        "db_pool_connections",
        "Database pool connections by state",
        &["state"],
        move || {
            let status = pool.pool_status();
            let idle = status.idle as f64;
            vec![
                (vec!["idle".into()], idle),
                (vec!["in_use".into()], (f64::from(status.open) - idle).max(0.0)),
            ]
        },
    )?;
    let pool = db.clone();
    metrics.sample_gauge(
        "db_pool_max_connections",
        "The most connections the pool may open",
        &[],
        move || vec![(Vec::new(), f64::from(pool.pool_status().max))],
    )?;
    Ok(())
}

/// Runs the migrations as the owner role, then grants the app role its data access.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let owner =
        Db::connect(&settings.owner_database_url()).await.context("connecting to the database as owner")?;
    // Replicas and workers that start together would migrate and grant at the same moment
    // (PostgreSQL refuses concurrent GRANTs: "tuple concurrently updated"). The first holds
    // this transaction's lock while it migrates on the pool's other connections; the others
    // wait for it, then find nothing left to do.
    let serialised = if owner.backend() == Backend::Postgres {
        use migrations::sea_orm_migration::sea_orm::{ConnectionTrait, TransactionTrait};
        let txn = owner.connection().begin().await.context("opening the migration lock")?;
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7305868771291750258)")
            .await
            .context("waiting for another process's migrations")?;
        Some(txn)
    } else {
        None
    };
    Migrator::up(owner.connection(), None).await.context("running migrations")?;
    if owner.backend() == Backend::Postgres
        && settings.migration_database_url.is_some()
        && let Some(app_role) = settings.database_url.as_deref().and_then(postgres_user)
    {
        migrations::grant_app_role(owner.connection(), &app_role).await.context("granting the app role")?;
    }
    if let Some(lock) = serialised {
        lock.commit().await.context("releasing the migration lock")?;
    }
    owner.connection().clone().close().await.ok();
    Ok(())
}

/// The user part of `postgres://user[:password]@host/db`.
fn postgres_user(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let credentials = rest.split_once('@')?.0;
    let user = credentials.split(':').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let services = Services::connect(&settings).await?;
        let schema = gateway::build_schema(
            &settings.limits,
            settings.introspection,
            services.tenancy.clone(),
            services.profiles.clone(),
            services.segments.clone(),
            services.campaigns.clone(),
            services.measurement.clone(),
        );
        let state = AppState {
            schema,
            tenancy: services.tenancy.clone(),
            profiles: services.profiles.clone(),
            segments: services.segments.clone(),
            limiter: RateLimiter::new(services.cache.clone()),
            ops: services.ops(),
            settings: GatewaySettings {
                graphiql: settings.graphiql,
                body_bytes: settings.limits.body_bytes,
                rate_limits: settings.rate_limits.clone(),
                cors_origins: settings.cors_origins.clone(),
            },
        };
        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("binding {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let server = gateway::build_server(state, listener, workers)?;
        let workers = settings.workers.then(|| Workers::start(&services, &settings));
        Ok(Self { addr, server, services, workers })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the process is asked to stop (SIGINT/SIGTERM), draining connections.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(workers) = self.workers {
            workers.stop().await;
        }
        served
    }

    /// Runs the server (and workers, when enabled) on the current runtime and returns at
    /// once (tests).
    pub fn spawn(self) -> (SocketAddr, Services) {
        tokio::spawn(self.server);
        // Dropping the handles detaches the worker tasks; they stop with the runtime.
        drop(self.workers.map(|w| w.handles));
        (self.addr, self.services)
    }
}

/// `passerelle worker`: the background workers, with the operations endpoints (`/livez`,
/// `/readyz`, `/metrics`) on the listen address so they can be probed and scraped.
pub struct WorkerProcess {
    addr: SocketAddr,
    server: actix_web::dev::Server,
    workers: Workers,
}

impl WorkerProcess {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let services = Services::connect(&settings).await?;
        let listener = std::net::TcpListener::bind(settings.listen)
            .with_context(|| format!("binding {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let server = gateway::build_ops_server(services.ops(), listener)?;
        let workers = Workers::start(&services, &settings);
        Ok(Self { addr, server, workers })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs until `stop` resolves, then lets the workers finish their round and closes the
    /// endpoints last, so probes answer while the workers drain.
    pub async fn run_until(self, stop: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        stop.await;
        self.workers.stop().await;
        handle.stop(true).await;
        server.await.map_err(std::io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_role_from_a_postgres_url() {
        assert_eq!(super::postgres_user("postgres://app:secret@db:5432/p").as_deref(), Some("app"));
        assert_eq!(super::postgres_user("postgres://app@db/p").as_deref(), Some("app"));
        assert_eq!(super::postgres_user("postgres://db/p"), None);
    }
}
