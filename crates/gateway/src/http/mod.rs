//! The actix-web application: routes, middleware and the shared state.

mod cors;
mod exports;
mod graphql;
mod health;
mod imports;
mod middleware;
mod staff_auth;
mod tracking;

use crate::schema::PasserelleSchema;
use actix_web::{App, HttpServer, dev::Server, web};
use platform::{Cache, Db, RateLimiter, metrics::Metrics, settings::RateLimits};
use std::net::TcpListener;

/// The gateway's view of the settings.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub graphiql: bool,
    pub body_bytes: usize,
    pub rate_limits: RateLimits,
    /// Origins allowed to call the staff endpoints from a browser (see `cors`).
    pub cors_origins: Vec<String>,
}

#[derive(Clone)]
pub struct AppState {
    pub schema: PasserelleSchema,
    pub tenancy: tenancy::Tenancy,
    pub profiles: profiles::Profiles,
    pub segments: segments::Segments,
    pub limiter: RateLimiter,
    /// The database, cache and metrics the operations endpoints and the middleware use.
    pub ops: Ops,
    pub settings: GatewaySettings,
}

/// What the operations endpoints (`/livez`, `/readyz`, `/metrics`) and the request middleware
/// need: the gateway serves them beside the API, `passerelle worker` serves them alone.
#[derive(Clone)]
pub struct Ops {
    pub db: Db,
    pub cache: Cache,
    pub metrics: Metrics,
}

/// Builds the HTTP server on an already bound listener (port 0 in tests).
pub fn build_server(state: AppState, listener: TcpListener, workers: usize) -> std::io::Result<Server> {
    let ops = web::Data::new(state.ops.clone());
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(ops.clone())
            .wrap(actix_web::middleware::from_fn(middleware::observe))
            .service(
                web::resource("/graphql")
                    .wrap(cors::staff(&state.settings.cors_origins))
                    .route(web::post().to(graphql::execute))
                    .route(web::get().to(graphql::graphiql)),
            )
            .configure(tracking::routes)
            .configure(|config| imports::routes(config, cors::staff(&state.settings.cors_origins)))
            .configure(|config| exports::routes(config, cors::staff(&state.settings.cors_origins)))
            .route("/livez", web::get().to(health::livez))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(health::metrics))
            .default_service(web::to(health::not_found))
    })
    .workers(workers.max(1))
    .listen(listener)?
    .run();
    Ok(server)
}

/// The operations endpoints alone, for `passerelle worker` (probes and Prometheus). It does
/// not stop on signals by itself: the worker stops it after its loops have finished.
pub fn build_ops_server(ops: Ops, listener: TcpListener) -> std::io::Result<Server> {
    let ops = web::Data::new(ops);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(ops.clone())
            .wrap(actix_web::middleware::from_fn(middleware::observe))
            .route("/livez", web::get().to(health::livez))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(health::metrics))
            .default_service(web::to(health::not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
