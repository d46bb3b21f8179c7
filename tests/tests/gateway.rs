//! The gateway's promises: limits, batching refused, error codes, pagination, health,
//! metrics, rate limits, introspection switch, request ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passerelle_tests::{Backend, on_both_backends, spawn_app, spawn_app_with};
use serde_json::json;

async fn query_limits_refuse_before_resolving(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.limits.query_depth = 4;
        s.limits.query_aliases = 3;
        s.limits.query_complexity = 50;
    })
    .await;
    let agency = app.agency("Limits").await;
    let token = Some(agency.owner_token.as_str());
    let deep = app
        .gql(
            "{ workspaces(first: 1) { edges { node { apiKeys(first: 1) { edges { node { id } } } } } } }",
            json!({}),
            token,
        )
        .await;
    deep.expect_code("BAD_USER_INPUT");
    assert!(
        deep.body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("deep"),
        "{}",
        deep.body
    );
    let aliases = app.gql("{ a: me { id } b: me { id } c: me { id } d: me { id } }", json!({}), token).await;
    aliases.expect_code("BAD_USER_INPUT");
    assert!(aliases.body["errors"][0]["message"].as_str().unwrap().contains("aliases"));
    let complex =
        app.gql("{ workspaces(first: 100) { edges { node { id name } } } }", json!({}), token).await;
    complex.expect_code("BAD_USER_INPUT");
    assert!(
        complex.body["errors"][0]["message"].as_str().unwrap().to_lowercase().contains("complex"),
        "{}",
        complex.body
    );
    // Huge `first` values cannot overflow the complexity arithmetic into a small number.
    let overflow = app
        .gql("{ users(first: 2147483647) { edges { node { memberships(first: 2147483647) { edges { node { id } } } } } } }", json!({}), token)
        .await;
    overflow.expect_code("BAD_USER_INPUT");
    // Within limits, the same shapes work.
    app.gql("{ a: me { id } b: me { id } }", json!({}), token).await.data("a.id");
    // A failed validation never ran a resolver: no workspace was created.
    let sneaky = app.gql("mutation { a: createWorkspace(input: {name: \"x\"}) { id } b: createWorkspace(input: {name: \"y\"}) { id } c: createWorkspace(input: {name: \"z\"}) { id } d: createWorkspace(input: {name: \"w\"}) { id } }", json!({}), token).await;
    sneaky.expect_code("BAD_USER_INPUT");
    let listed = app.gql("{ workspaces(first: 5) { edges { node { id } } } }", json!({}), token).await;
    assert_eq!(listed.data("workspaces.edges").as_array().unwrap().len(), 0);
}

async fn malformed_requests_get_clear_errors(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.body_bytes = 4096).await;
    let post = |body: String| {
        app.client.post(app.url("/graphql")).header("content-type", "application/json").body(body).send()
    };
    let batch = post(r#"[{"query":"{ me { id } }"},{"query":"{ me { id } }"}]"#.into()).await.unwrap();
    assert_eq!(batch.status(), 400);
    let body: serde_json::Value = batch.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let huge =
        post(format!(r#"{{"query":"{{ me {{ id }} }}","variables":{{"x":"{}"}}}}"#, "a".repeat(10_000)))
            .await
            .unwrap();
    assert_eq!(huge.status(), 413);
    let garbage = post("{not json".into()).await.unwrap();
    assert_eq!(garbage.status(), 400);
    let syntax = app.gql("{ me { id ", json!({}), None).await;
    syntax.expect_code("BAD_USER_INPUT");
    let unknown = app.gql("{ nothing }", json!({}), None).await;
    unknown.expect_code("BAD_USER_INPUT");
    let bad_id = app.gql("{ workspace(id: \"not-a-uuid\") { id } }", json!({}), None).await;
    assert!(bad_id.code().is_some());
    let agency = app.agency("Malformed").await;
    let token = Some(agency.owner_token.as_str());
    app.gql("{ workspace(id: \"not-a-uuid\") { id } }", json!({}), token).await.expect_code("BAD_USER_INPUT");
    app.gql("{ workspaces(first: 1000) { edges { cursor } } }", json!({}), token)
        .await
        .expect_code("BAD_USER_INPUT");
    app.gql("{ workspaces(after: \"%%%\") { edges { cursor } } }", json!({}), token)
        .await
        .expect_code("BAD_USER_INPUT");
    app.gql("mutation { createWorkspace(input: {name: \"   \"}) { id } }", json!({}), token)
        .await
        .expect_code("BAD_USER_INPUT");
    let bad_header = app
        .gql_with_headers("{ apiKeys { edges { cursor } } }", json!({}), token, &[("x-workspace-id", "nope")])
        .await;
    bad_header.expect_code("BAD_USER_INPUT");
    let bad_bearer = app.gql("{ me { id } }", json!({}), Some("pss_garbage")).await;
    bad_bearer.expect_code("UNAUTHENTICATED");
}

async fn lists_are_relay_connections(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Pages").await;
    let token = Some(agency.owner_token.as_str());
    for name in ["one", "two", "three"] {
        app.create_workspace(&agency.owner_token, name).await;
    }
    let query = "query($after: String) { workspaces(first: 2, after: $after) {
        edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let first = app.gql(query, json!({ "after": null }), token).await;
    let names = first.node_strings("workspaces", "name");
    assert_eq!(names, ["one", "two"]);
    assert_eq!(first.data("workspaces.pageInfo.hasNextPage"), &json!(true));
    let end = first.str("workspaces.pageInfo.endCursor");
    let second = app.gql(query, json!({ "after": end }), token).await;
    let names = second.node_strings("workspaces", "name");
    assert_eq!(names, ["three"]);
    assert_eq!(second.data("workspaces.pageInfo.hasNextPage"), &json!(false));
    assert_eq!(second.data("workspaces.pageInfo.hasPreviousPage"), &json!(true));
}

async fn health_metrics_and_request_ids(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({ "database": "ok", "cache": "ok" }));
    let traced = app
        .client
        .post(app.url("/graphql"))
        .header("x-request-id", "trace-123")
        .json(&json!({ "query": "query Whoami { me { id } }", "operationName": "Whoami" }))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.headers()["x-request-id"], "trace-123");
    let generated = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(generated.headers()["x-request-id"].len(), 36);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("passerelle_graphql_requests_total{operation=\"Whoami\",outcome=\"error\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("passerelle_graphql_request_duration_seconds_bucket{operation=\"Whoami\""));
    assert!(metrics.contains("passerelle_http_requests_total{route=\"/livez\",status=\"2xx\"}"));
    // The database pool, read when scraped: the pool's size for the backend, and connections
    // open (the app holds at least its minimum).
    let max = passerelle_tests::metric_value(&metrics, "passerelle_db_pool_max_connections");
    assert_eq!(max, Some(if backend == Backend::Sqlite { 8.0 } else { 32.0 }), "{metrics}");
    let idle = passerelle_tests::metric_value(&metrics, "passerelle_db_pool_connections{state=\"idle\"}");
    let in_use = passerelle_tests::metric_value(&metrics, "passerelle_db_pool_connections{state=\"in_use\"}");
    let open = idle.unwrap() + in_use.unwrap();
    assert!((1.0..=max.unwrap()).contains(&open), "{metrics}");
    // The worker metrics exist from the start, so dashboards and alerts find them at zero.
    for series in [
        "passerelle_events_accepted_total",
        "passerelle_ingestion_lag_seconds",
        "passerelle_journey_enrollments_due",
        "passerelle_cache_hit_ratio{cache=\"reports\"}",
    ] {
        assert!(passerelle_tests::metric_value(&metrics, series).is_some(), "{series}: {metrics}");
    }
    let graphiql = app.client.get(app.url("/graphql")).send().await.unwrap();
    assert_eq!(graphiql.status(), 200);
    assert!(graphiql.text().await.unwrap().contains("graphiql"));
    let missing = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

async fn introspection_and_graphiql_can_be_switched_off(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.introspection = false;
        s.graphiql = false;
    })
    .await;
    let answer = app.gql("{ __schema { queryType { name } } }", json!({}), None).await;
    answer.expect_code("BAD_USER_INPUT");
    let via_fragment = app
        .gql("{ ...F } fragment F on QueryRoot { __type(name: \"User\") { name } }", json!({}), None)
        .await;
    via_fragment.expect_code("BAD_USER_INPUT");
    // `__typename` is not introspection of the schema and stays available.
    assert!(app.gql("{ __typename }", json!({}), None).await.body["errors"].is_null());
    assert_eq!(app.client.get(app.url("/graphql")).send().await.unwrap().status(), 404);
    let on = spawn_app(backend).await;
    on.gql("{ __schema { queryType { name } } }", json!({}), None).await.data("__schema.queryType.name");
}

async fn rate_limits_per_ip_and_per_key(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limits.per_ip_per_second = 0.5;
        s.rate_limits.per_ip_burst = 3;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.gql("{ me { id } }", json!({}), None).await.status, 200);
    }
    let limited =
        app.client.post(app.url("/graphql")).json(&json!({ "query": "{ me { id } }" })).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // The import upload shares the client's quota, and a bad credential is no way around it.
    let path = format!("/imports/{}/{}", uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let (status, body) = app.upload_import("not-a-token", &path, b"email\n".to_vec()).await;
    assert_eq!((status, body["errors"][0]["extensions"]["code"].clone()), (429, json!("RATE_LIMITED")));

    let per_key = spawn_app_with(backend, |s| {
        // One token per 100 s: the third request is limited however slow a loaded machine is.
        s.rate_limits.per_principal_per_second = 0.01;
        s.rate_limits.per_principal_burst = 2;
    })
    .await;
    let agency = per_key.agency("Limited").await;
    let ws = per_key.create_workspace(&agency.owner_token, "w").await;
    let (_, key) = per_key.create_api_key(&agency.owner_token, &ws, "SECRET", &["READ"]).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            per_key
                .gql("{ workspaces { edges { cursor } } }", json!({}), Some(&key))
                .await
                .code()
                .map(str::to_owned),
        );
    }
    assert_eq!(statuses, [None, None, Some("RATE_LIMITED".to_owned())]);
}

/// A console on another origin may call the staff endpoints when its origin is configured,
/// exactly; others get no CORS grant; without configuration nothing changes; the tracking API
/// still answers any website.
async fn configured_origins_may_call_the_staff_endpoints_from_a_browser(backend: Backend) {
    let console = "https://console.agency.test";
    let app = spawn_app_with(backend, |s| s.cors_origins = vec![console.into()]).await;
    let allow = |r: &reqwest::Response| {
        r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
    };
    let preflight = |origin: &str, path: &str, method: &str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization, content-type, x-workspace-id")
            .send()
    };
    let ok = preflight(console, "/graphql", "POST").await.unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(allow(&ok).as_deref(), Some(console));
    let methods = ok.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let headers = ok.headers()["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    assert!(headers.contains("authorization") && headers.contains("x-workspace-id"), "{headers}");
    for path in ["/exports/x/segments/y", "/imports/x/y"] {
        let method = if path.starts_with("/imports") { "PUT" } else { "GET" };
        assert_eq!(
            allow(&preflight(console, path, method).await.unwrap()).as_deref(),
            Some(console),
            "{path}"
        );
    }
    let answer = app
        .client
        .post(app.url("/graphql"))
        .header("origin", console)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(allow(&answer).as_deref(), Some(console));
    let exposed = answer.headers()["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");

    // Another origin, or one that only looks alike, gets no grant.
    for other in ["https://evil.test", "https://console.agency.test.evil.test", "http://console.agency.test"]
    {
        let refused = preflight(other, "/graphql", "POST").await.unwrap();
        assert_eq!(allow(&refused), None, "{other}");
    }
    // Servers send no Origin: unchanged.
    let server = app.client.post(app.url("/graphql")).json(&json!({ "query": "{ me { id } }" })).send().await;
    let server = server.unwrap();
    assert_eq!(server.status(), 200);
    assert_eq!(allow(&server), None);

    // Not configured: no grant to anyone on the staff endpoints; tracking still open to all.
    let plain = spawn_app(backend).await;
    let request = plain
        .client
        .post(plain.url("/graphql"))
        .header("origin", console)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(allow(&request), None);
    let tracking = plain
        .client
        .request(reqwest::Method::OPTIONS, plain.url("/v1/track"))
        .header("origin", "https://any-client-shop.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(allow(&tracking).is_some(), "the tracking API answers every website");
}

on_both_backends!(
    configured_origins_may_call_the_staff_endpoints_from_a_browser,
    query_limits_refuse_before_resolving,
    malformed_requests_get_clear_errors,
    lists_are_relay_connections,
    health_metrics_and_request_ids,
    introspection_and_graphiql_can_be_switched_off,
    rate_limits_per_ip_and_per_key,
);

/// `/readyz` follows the cache: a Redis of the test's own is stopped under the running app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_when_the_cache_goes_away() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server must be installed (see .ci/run)");
    let url = format!("redis://127.0.0.1:{port}");
    let mut connected = false;
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            connected = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(connected, "the test's redis-server did not start");
    let app = spawn_app_with(Backend::Sqlite, move |s| s.redis_url = Some(url)).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    redis.kill().unwrap();
    redis.wait().unwrap();
    let down = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(down.status(), 503);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body, json!({ "database": "ok", "cache": "unavailable" }));
    // Liveness is about the process, not its dependencies.
    assert_eq!(app.client.get(app.url("/livez")).send().await.unwrap().status(), 200);
}

/// What the Helm chart relies on: app pods hold only the app role's URL. Migrating at start as
/// that role is refused by PostgreSQL; with `migrate_on_start` off (the chart's migration Job
/// has migrated as the owner) the app starts and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_pods_start_on_the_app_role_alone_once_the_owner_has_migrated() {
    let migrated = passerelle_tests::spawn_app(passerelle_tests::Backend::Postgres).await;
    let mut app_role_only = migrated.settings.clone();
    app_role_only.migration_database_url = None;
    app_role_only.listen = "127.0.0.1:0".parse().unwrap();
    let refused = passerelle::Application::build(app_role_only.clone()).await;
    assert!(refused.is_err(), "the app role cannot migrate");
    app_role_only.migrate_on_start = false;
    let app = passerelle::Application::build(app_role_only).await.expect("starts without migrating");
    let (addr, _services) = app.spawn();
    let ready = reqwest::get(format!("http://{addr}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
}
