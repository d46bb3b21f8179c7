//! The Segment-compatible tracking API end to end: write keys, limits, deduplication,
//! malformed input, the pixel, and GraphQL ingestion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use passerelle_tests::{Backend, on_both_backends, spawn_app};
use serde_json::{Value, json};

const PROFILE_BY_USER: &str = "query($w: ID!, $v: String!) {
    profiles(workspaceId: $w, first: 5, filter: {identifier: {kind: \"user_id\", value: $v}}) {
      edges { node { id eventCount traits identities { kind value } events(first: 10) { edges { node { type name channel } } } } } } }";

async fn accepts_segment_messages_and_deduplicates_retries(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let identify = json!({"userId": "u-1", "anonymousId": "a-1", "messageId": "m-1",
        "traits": {"email": "Ada@Example.com", "name": "Ada"}, "timestamp": "2026-11-01T10:00:00Z"});
    let (status, body) = app.track("identify", Some(&key), &identify).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["accepted"], 1);
    // The same messageId again (an SDK retry) is acknowledged but stored once.
    let (status, body) = app.track("identify", Some(&key), &identify).await;
    assert_eq!((status, body["accepted"].clone(), body["duplicates"].clone()), (200, json!(0), json!(1)));
    // analytics.js style: writeKey in the body, one-letter path, text/plain content.
    let track = json!({"writeKey": key, "type": "track", "event": "Order Completed", "anonymousId": "a-1",
        "messageId": 12345, "properties": {"total": "42.5"}, "context": {"userAgent": "Mozilla"}});
    let (status, _) = app.track("t", None, &track).await;
    assert_eq!(status, 200);
    app.process_events().await;
    let found = app.gql(PROFILE_BY_USER, json!({"w": workspace, "v": "u-1"}), Some(&token)).await;
    let profile = found.data("profiles.edges.0.node");
    assert_eq!(profile["eventCount"], 2, "{found:?}");
    assert_eq!(profile["traits"]["name"], "Ada");
    let kinds: Vec<String> = profile["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}={}", i["kind"].as_str().unwrap(), i["value"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&"email=ada@example.com".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"anonymous_id=a-1".to_owned()));
    let events = profile["events"]["edges"].as_array().unwrap();
    assert_eq!(events[0]["node"]["name"], "Order Completed");
    assert_eq!(events[0]["node"]["channel"], "web");
    let revenue = app
        .gql("query($w: ID!, $v: String!) { profiles(workspaceId: $w, first: 5, filter: {identifier: {kind: \"email\", value: $v}}) { edges { node { lifetimeRevenue firstTouchChannel } } } }",
            json!({"w": workspace, "v": " ADA@example.com"}), Some(&token))
        .await;
    assert_eq!(revenue.data("profiles.edges.0.node.lifetimeRevenue"), &json!(42.5), "{revenue:?}");
}

async fn batches_merge_context_and_report_bad_items(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let batch = json!({
        "context": {"library": {"name": "analytics-python"}},
        "batch": [
            {"type": "track", "event": "Signed Up", "userId": "u-2", "timestamp": "2026-11-20T10:00:00Z"},
            {"type": "page", "name": "Home", "userId": "u-2"},
            {"type": "track", "userId": "u-2"},
            {"type": "teleport", "userId": "u-2"},
        ],
        "sentAt": "2026-11-20T10:00:05Z"
    });
    let (status, body) = app.track("batch", Some(&key), &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    let rejected: Vec<u64> =
        body["rejected"].as_array().unwrap().iter().map(|r| r["index"].as_u64().unwrap()).collect();
    assert_eq!(rejected, vec![2, 3]);
    app.process_events().await;
    let found = app
        .gql("query($w: ID!, $v: String!) { profiles(workspaceId: $w, first: 5, filter: {identifier: {kind: \"user_id\", value: $v}}) { edges { node { events(first: 10) { edges { node { name context } } } } } } }",
            json!({"w": workspace, "v": "u-2"}), Some(&token))
        .await;
    let events = found.data("profiles.edges.0.node.events.edges").as_array().unwrap().clone();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["node"]["context"]["library"]["name"] == "analytics-python"));
}

async fn refuses_bad_keys_malformed_and_oversized_payloads(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let event = json!({"userId": "u", "event": "x"});
    assert_eq!(app.track("track", None, &event).await.0, 401);
    assert_eq!(app.track("track", Some("psw_nonsense"), &event).await.0, 401);
    let (status, body) = app.track("track", Some("pss_0000"), &event).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHENTICATED")));
    // A secret key without the write scope may not send events.
    let (_, read_key) = app.create_api_key(&token, &workspace, "SECRET", &["READ"]).await;
    assert_eq!(app.track("track", Some(&read_key), &event).await.0, 403);
    // A revoked key stops working.
    let (key_id, revoked) = app.create_api_key(&token, &workspace, "WRITE", &[]).await;
    assert_eq!(app.track("track", Some(&revoked), &event).await.0, 200);
    let revoke = app
        .gql(
            "mutation($w: ID!, $id: ID!) { revokeApiKey(input: {workspaceId: $w, id: $id}) { id } }",
            json!({"w": workspace, "id": key_id}),
            Some(&token),
        )
        .await;
    assert!(revoke.code().is_none(), "{revoke:?}");
    assert_eq!(app.track("track", Some(&revoked), &event).await.0, 401);
    // Malformed: not JSON, wrong shapes, no identity, no event name.
    for body in [
        b"{nope".to_vec(),
        b"[]".to_vec(),
        br#"{"event":"x"}"#.to_vec(),
        br#"{"userId":"u"}"#.to_vec(),
        br#"{"userId":"u","event":"x","properties":"str"}"#.to_vec(),
    ] {
        let (status, answer) = app.track_raw("track", Some(&key), body.clone()).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
        assert_eq!(answer["code"], "BAD_USER_INPUT");
    }
    // 32 KB per event, 500 KB per batch.
    let big = json!({"userId": "u", "event": "x", "properties": {"p": "x".repeat(33 * 1024)}});
    assert_eq!(app.track("track", Some(&key), &big).await.0, 413);
    let items: Vec<Value> = (0..20)
        .map(|i| {
            json!({"type": "track", "userId": "u", "event": "x",
        "messageId": format!("b{i}"), "properties": {"p": "x".repeat(30 * 1024)}})
        })
        .collect();
    assert_eq!(app.track("batch", Some(&key), &json!({"batch": items})).await.0, 413);
    assert_eq!(app.track("warp", Some(&key), &event).await.0, 404);
    // Nothing of the refused requests was stored.
    app.process_events().await;
    let found = app
        .gql(
            "query($w: ID!) { profiles(workspaceId: $w) { edges { node { eventCount } } } }",
            json!({"w": workspace}),
            Some(&token),
        )
        .await;
    let counts: i64 = found
        .data("profiles.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["eventCount"].as_i64().unwrap())
        .sum();
    assert_eq!(counts, 1, "only the revoked key's first event was stored: {found:?}");
}

async fn pixel_always_answers_a_gif_and_records_valid_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let data = base64::engine::general_purpose::STANDARD.encode(
        json!({"writeKey": key, "userId": "u-pixel", "event": "Email Opened", "messageId": "open-1"})
            .to_string(),
    );
    for query in [format!("data={data}"), "data=!!!".to_owned(), String::new()] {
        let response =
            app.client.get(format!("http://{}/v1/pixel/track?{query}", app.addr)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-type"], "image/gif");
        assert!(response.bytes().await.unwrap().starts_with(b"GIF89a"));
    }
    app.process_events().await;
    let found = app.gql(PROFILE_BY_USER, json!({"w": workspace, "v": "u-pixel"}), Some(&token)).await;
    assert_eq!(found.data("profiles.edges.0.node.eventCount"), &json!(1), "{found:?}");
}

async fn graphql_ingestion_for_integrations(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, _) = app.tracking_workspace().await;
    let (_, secret) = app.create_api_key(&token, &workspace, "SECRET", &["WRITE"]).await;
    let mutation = "mutation($e: [JSON!]!) { ingestEvents(events: $e) { accepted duplicates rejected { index message } } }";
    let events = json!([{"type": "identify", "userId": "u-g", "traits": {"plan": "pro"}, "messageId": "g1"}, {"type": "nope"}]);
    let answer = app.gql(mutation, json!({"e": events}), Some(&secret)).await;
    assert_eq!(answer.data("ingestEvents.accepted"), &json!(1), "{answer:?}");
    assert_eq!(answer.data("ingestEvents.rejected.0.index"), &json!(1));
    let again = app.gql(mutation, json!({"e": events}), Some(&secret)).await;
    assert_eq!(again.data("ingestEvents.duplicates"), &json!(1));
    // A read-only key may not ingest.
    let (_, read_key) = app.create_api_key(&token, &workspace, "SECRET", &["READ"]).await;
    app.gql(mutation, json!({"e": events}), Some(&read_key)).await.expect_code("FORBIDDEN");
    app.process_events().await;
    let found = app.gql(PROFILE_BY_USER, json!({"w": workspace, "v": "u-g"}), Some(&token)).await;
    assert_eq!(found.data("profiles.edges.0.node.traits.plan"), &json!("pro"));
}

/// The worker processes several workspaces at once; the same identifiers in each stay apart.
async fn workspaces_processed_side_by_side_stay_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut workspaces = Vec::new();
    for n in 0..5 {
        let (token, workspace, key) = app.tracking_workspace().await;
        // 2,100 events each: more than one chunk, so the workspaces' chunks interleave.
        for page in 0..3 {
            let batch: Vec<Value> = (0..700)
                .map(|i| {
                    json!({"type": "track", "event": "Viewed", "userId": "shared-user",
                    "messageId": format!("m-{page}-{i}"), "properties": {"workspace": n}})
                })
                .collect();
            let (status, body) = app.track("batch", Some(&key), &json!({ "batch": batch })).await;
            assert_eq!(status, 200, "{body}");
        }
        workspaces.push((token, workspace));
    }
    app.process_events().await;
    for (token, workspace) in &workspaces {
        let found = app.gql(PROFILE_BY_USER, json!({"w": workspace, "v": "shared-user"}), Some(token)).await;
        let profiles = found.data("profiles.edges").as_array().unwrap();
        assert_eq!(profiles.len(), 1, "{found:?}");
        assert_eq!(profiles[0]["node"]["eventCount"], 2100, "{found:?}");
    }
}

/// A batch of many tiny messages, within the 500 KB limit, holds more rows than one insert
/// statement may bind parameters for on either backend: all are stored, once.
async fn a_full_batch_of_tiny_messages_is_stored_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, key) = app.tracking_workspace().await;
    let batch: Vec<_> = (0..4_500)
        .map(|i| json!({"type": "track", "userId": "u", "event": "e", "messageId": i.to_string()}))
        .collect();
    let body = json!({"batch": batch});
    assert!(serde_json::to_vec(&body).unwrap().len() < 500 * 1024);
    let (status, answer) = app.track("batch", Some(&key), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((answer["accepted"].clone(), answer["duplicates"].clone()), (json!(4_500), json!(0)));
    let (status, answer) = app.track("batch", Some(&key), &body).await;
    assert_eq!(
        (status, answer["accepted"].clone(), answer["duplicates"].clone()),
        (200, json!(0), json!(4_500))
    );
}

on_both_backends!(
    a_full_batch_of_tiny_messages_is_stored_whole,
    workspaces_processed_side_by_side_stay_apart,
    accepts_segment_messages_and_deduplicates_retries,
    batches_merge_context_and_report_bad_items,
    refuses_bad_keys_malformed_and_oversized_payloads,
    pixel_always_answers_a_gif_and_records_valid_events,
    graphql_ingestion_for_integrations,
);
