//! The actix-web application: routes, middleware and the shared state.

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
}

#[derive(Clone)]
pub struct AppState {
    pub schema: PasserelleSchema,
    pub tenancy: tenancy::Tenancy,
    pub profiles: profiles::Profiles,
    pub segments: segments::Segments,
    pub db: Db,
    pub cache: Cache,
    pub limiter: RateLimiter,
    pub metrics: Metrics,
    pub settings: GatewaySettings,
}

/// Builds the HTTP server on an already bound listener (port 0 in tests).
pub fn build_server(state: AppState, listener: TcpListener, workers: usize) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(middleware::observe))
            .route("/graphql", web::post().to(graphql::execute))
            .route("/graphql", web::get().to(graphql::graphiql))
            .configure(tracking::routes)
            .configure(imports::routes)
            .configure(exports::routes)
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
