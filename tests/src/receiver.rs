//! A real HTTP server the tests start to receive webhooks: it records every request and
//! answers with the status the test chose, so delivery, signatures, retries and dead letters
//! are tested over real connections.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub idempotency_key: Option<String>,
    pub signature: Option<String>,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Statuses to answer, in order; 200 once they run out.
    script: VecDeque<u16>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_with_delay(std::time::Duration::ZERO).await
    }

    /// A receiver that takes `delay` to answer each request (it records it on arrival).
    pub async fn start_with_delay(delay: std::time::Duration) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
                    };
                    let status = {
                        let mut state = state.lock().unwrap();
                        state.received.push(Received {
                            idempotency_key: header("idempotency-key"),
                            signature: header("x-passerelle-signature"),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        });
                        state.script.pop_front().unwrap_or(200)
                    };
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
                }
            }))
        })
        .workers(2)
        .bind("127.0.0.1:0")
        .unwrap();
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { addr, state, server: handle }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// The next answers' statuses (then 200s).
    pub fn answer_with(&self, statuses: &[u16]) {
        self.state.lock().unwrap().script.extend(statuses.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let server = self.server.clone();
        tokio::spawn(async move { server.stop(false).await });
    }
}
