//! The identity graph end to end: merges and exact undo, rules and blocklists, concurrency,
//! consent, erasure with re-ingestion, and isolation between workspaces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passerelle_tests::{Backend, TestApp, on_both_backends, spawn_app};
use serde_json::{Value, json};

const BY_IDENTIFIER: &str = "query($w: ID!, $k: String!, $v: String!) {
    profiles(workspaceId: $w, first: 5, filter: {identifier: {kind: $k, value: $v}}) {
      edges { node { id eventCount traits identities { kind value }
        merges { id survivorId mergedId causeKind causeValue undoneAt }
        events(first: 20) { edges { node { messageId firstProfileId } } } } } } }";

async fn profiles_holding(
    app: &TestApp,
    token: &str,
    workspace: &str,
    kind: &str,
    value: &str,
) -> Vec<Value> {
    let answer = app.gql(BY_IDENTIFIER, json!({"w": workspace, "k": kind, "v": value}), Some(token)).await;
    answer.data("profiles.edges").as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
}

async fn one_profile(app: &TestApp, token: &str, workspace: &str, kind: &str, value: &str) -> Value {
    let found = profiles_holding(app, token, workspace, kind, value).await;
    assert_eq!(found.len(), 1, "{kind}={value}: {found:?}");
    found.into_iter().next().unwrap()
}

fn message_ids(profile: &Value) -> Vec<String> {
    let mut ids: Vec<String> = profile["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["messageId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn identities(profile: &Value) -> Vec<String> {
    let mut ids: Vec<String> = profile["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}={}", i["kind"].as_str().unwrap(), i["value"].as_str().unwrap()))
        .collect();
    ids.sort();
    ids
}

async fn send(app: &TestApp, key: &str, events: Value) {
    let (status, body) = app.track("batch", Some(key), &json!({ "batch": events })).await;
    assert_eq!(status, 200, "{body}");
    app.process_events().await;
}

async fn merges_are_explained_and_undone_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, ws, key) = app.tracking_workspace().await;
    // A web visitor, then an app user, then an identify that shows they are one person.
    send(&app, &key, json!([
        {"type": "page", "anonymousId": "cookie-1", "messageId": "web-1", "name": "Home"},
        {"type": "identify", "anonymousId": "cookie-1", "messageId": "web-2", "traits": {"email": "eve@shop.fr", "plan": "free"}},
    ])).await;
    send(&app, &key, json!([
        {"type": "identify", "userId": "crm-7", "messageId": "app-1", "traits": {"plan": "gold", "city": "Lyon"},
         "context": {"device": {"type": "ios", "id": "dev-1"}}},
    ])).await;
    let web_before = one_profile(&app, &token, &ws, "anonymous_id", "cookie-1").await;
    let app_before = one_profile(&app, &token, &ws, "user_id", "crm-7").await;
    assert_ne!(web_before["id"], app_before["id"]);
    send(&app, &key, json!([
        {"type": "identify", "userId": "crm-7", "messageId": "link-1", "traits": {"email": "EVE@shop.fr"}},
    ])).await;
    let merged = one_profile(&app, &token, &ws, "anonymous_id", "cookie-1").await;
    assert_eq!(merged["id"], app_before["id"], "the web visitor joined the known customer");
    assert_eq!(message_ids(&merged), vec!["app-1", "link-1", "web-1", "web-2"]);
    let merge = &merged["merges"][0];
    assert_eq!(
        (merge["causeKind"].as_str(), merge["causeValue"].as_str()),
        (Some("email"), Some("eve@shop.fr"))
    );
    assert_eq!(merge["mergedId"], web_before["id"]);
    // The old id still answers, with the profile it is part of now.
    let by_old_id = app
        .gql(
            "query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { id } }",
            json!({"w": ws, "id": web_before["id"]}),
            Some(&token),
        )
        .await;
    assert_eq!(by_old_id.data("profile.id"), &merged["id"]);

    let undo = app
        .gql(
            "mutation($w: ID!, $m: ID!) { undoMerge(workspaceId: $w, mergeId: $m) { undoneAt } }",
            json!({"w": ws, "m": merge["id"]}),
            Some(&token),
        )
        .await;
    assert!(undo.data("undoMerge.undoneAt").is_string(), "{undo:?}");
    let web_after = one_profile(&app, &token, &ws, "anonymous_id", "cookie-1").await;
    let app_after = one_profile(&app, &token, &ws, "user_id", "crm-7").await;
    assert_eq!(web_after["id"], web_before["id"]);
    assert_eq!(identities(&web_after), identities(&web_before));
    assert_eq!(message_ids(&web_after), message_ids(&web_before));
    assert_eq!(web_after["traits"], web_before["traits"]);
    assert_eq!(web_after["eventCount"], web_before["eventCount"]);
    assert_eq!(app_after["traits"], app_before["traits"]);
    assert_eq!(message_ids(&app_after), vec!["app-1", "link-1"]);
    // The history stays, marked undone; undoing twice is a conflict.
    assert!(app_after["merges"][0]["undoneAt"].is_string());
    app.gql(
        "mutation($w: ID!, $m: ID!) { undoMerge(workspaceId: $w, mergeId: $m) { id } }",
        json!({"w": ws, "m": merge["id"]}),
        Some(&token),
    )
    .await
    .expect_code("CONFLICT");
    // Staff separated them: the same link again does not merge them back.
    send(&app, &key, json!([{"type": "identify", "anonymousId": "cookie-1", "messageId": "again-1", "traits": {"email": "eve@shop.fr"}}])).await;
    assert_ne!(one_profile(&app, &token, &ws, "anonymous_id", "cookie-1").await["id"], app_after["id"]);
}

async fn rules_limits_and_blocklists(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, ws, key) = app.tracking_workspace().await;
    // Two accounts on one shared cookie never merge (one user_id per profile).
    send(
        &app,
        &key,
        json!([
            {"type": "identify", "userId": "alice", "anonymousId": "family-pc", "messageId": "1"},
            {"type": "identify", "userId": "bob", "anonymousId": "family-pc", "messageId": "2"},
        ]),
    )
    .await;
    let alice = one_profile(&app, &token, &ws, "user_id", "alice").await;
    let bob = one_profile(&app, &token, &ws, "user_id", "bob").await;
    assert_ne!(alice["id"], bob["id"]);
    assert_eq!(message_ids(&bob), vec!["2"]);
    // Shared IPs and junk values never merge; junk is not even stored.
    send(&app, &key, json!([
        {"type": "track", "event": "x", "anonymousId": "v1", "messageId": "3", "context": {"ip": "203.0.113.9"}},
        {"type": "track", "event": "x", "anonymousId": "v2", "messageId": "4", "context": {"ip": "203.0.113.9"}},
        {"type": "identify", "anonymousId": "v3", "messageId": "5", "traits": {"email": "test@test.com"},
         "context": {"device": {"advertisingId": "00000000-0000-0000-0000-000000000000"}}},
        {"type": "identify", "anonymousId": "v4", "messageId": "6", "traits": {"email": "test@test.com"}},
    ])).await;
    assert_eq!(
        profiles_holding(&app, &token, &ws, "ip", "203.0.113.9").await.len(),
        1,
        "the IP stays with its first holder"
    );
    assert_ne!(
        one_profile(&app, &token, &ws, "anonymous_id", "v1").await["id"],
        one_profile(&app, &token, &ws, "anonymous_id", "v2").await["id"]
    );
    assert!(profiles_holding(&app, &token, &ws, "email", "test@test.com").await.is_empty());
    assert!(
        profiles_holding(&app, &token, &ws, "maid", "00000000-0000-0000-0000-000000000000").await.is_empty()
    );
    // A workspace blocks its own test addresses by pattern; bad patterns are refused.
    let rule = "mutation($i: IdentityRuleInput!) { setIdentityRule(workspaceId: \"WS\", input: $i) { kind blockedPatterns } }".replace("WS", &ws);
    let set = app
        .gql(
            &rule,
            json!({"i": {"kind": "email", "priority": 90, "maxPerProfile": 3, "merges": true,
        "blockedPatterns": ["@example\\.org$"]}}),
            Some(&token),
        )
        .await;
    assert_eq!(set.data("setIdentityRule.blockedPatterns.0"), &json!("@example\\.org$"));
    app.gql(&rule, json!({"i": {"kind": "email", "priority": 90, "maxPerProfile": 3, "merges": true, "blockedPatterns": ["("]}}),
        Some(&token)).await.expect_code("BAD_USER_INPUT");
    app.gql(
        &rule,
        json!({"i": {"kind": "Not A Kind", "priority": 1, "maxPerProfile": 1, "merges": true}}),
        Some(&token),
    )
    .await
    .expect_code("BAD_USER_INPUT");
    send(&app, &key, json!([
        {"type": "identify", "anonymousId": "q1", "messageId": "7", "traits": {"email": "qa@example.org"}},
        {"type": "identify", "anonymousId": "q2", "messageId": "8", "traits": {"email": "qa@example.org"}},
    ])).await;
    assert!(profiles_holding(&app, &token, &ws, "email", "qa@example.org").await.is_empty());
    let settings = app
        .gql(
            "query($w: ID!) { profileSettings(workspaceId: $w) { identityRules { kind maxPerProfile } } }",
            json!({"w": ws}),
            Some(&token),
        )
        .await;
    let rules = settings.data("profileSettings.identityRules").as_array().unwrap();
    assert_eq!(rules[0]["kind"], "user_id", "highest priority first");
    assert!(rules.iter().any(|r| r["kind"] == "email" && r["maxPerProfile"] == 3));
    // A dry run: letting IPs merge would join the two visitors who shared one.
    let preview = app.gql("query($w: ID!, $r: [IdentityRuleInput!]!) { previewIdentityRules(workspaceId: $w, rules: $r) { eventsReplayed wouldMerge wouldSplit peopleUnderCurrentRules peopleUnderProposedRules } }",
        json!({"w": ws, "r": [{"kind": "ip", "priority": 10, "maxPerProfile": 50, "merges": true}]}), Some(&token)).await;
    assert_eq!(preview.data("previewIdentityRules.wouldMerge"), &json!(1), "{preview:?}");
    assert_eq!(preview.data("previewIdentityRules.wouldSplit"), &json!(0));
    assert_eq!(preview.data("previewIdentityRules.eventsReplayed"), &json!(8));
    let too_many: Vec<_> = (0..51)
        .map(|i| json!({"kind": format!("kind_{i}"), "priority": 1, "maxPerProfile": 1, "merges": true}))
        .collect();
    app.gql("query($w: ID!, $r: [IdentityRuleInput!]!) { previewIdentityRules(workspaceId: $w, rules: $r) { wouldMerge } }",
        json!({"w": ws, "r": too_many}), Some(&token)).await.expect_code("BAD_USER_INPUT");
    // A marketer may not change rules.
    let (_, marketer) = app.staff(&token, "MARKETER", Some(&ws)).await;
    app.gql(
        &rule,
        json!({"i": {"kind": "email", "priority": 1, "maxPerProfile": 1, "merges": true}}),
        Some(&marketer),
    )
    .await
    .expect_code("FORBIDDEN");
}

async fn concurrent_events_for_one_new_identity_make_one_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, ws, key) = app.tracking_workspace().await;
    let mut requests = Vec::new();
    for i in 0..40 {
        let app = &app;
        let key = key.clone();
        requests.push(async move {
            let event = json!({"userId": "same-new-person", "anonymousId": format!("tab-{i}"), "event": "Clicked", "messageId": format!("c{i}")});
            app.track("track", Some(&key), &event).await.0
        });
    }
    let statuses = futures::future::join_all(requests).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Several processors at once, as with several worker replicas.
    futures::future::join_all((0..3).map(|_| app.process_events())).await;
    let found = one_profile(&app, &token, &ws, "user_id", "same-new-person").await;
    assert_eq!(found["eventCount"], 40);
    assert_eq!(identities(&found).len(), 41);
}

async fn consent_history_and_minors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, ws, key) = app.tracking_workspace().await;
    send(&app, &key, json!([{"type": "identify", "userId": "c-1", "messageId": "1", "traits": {"age": 14}}]))
        .await;
    let profile = one_profile(&app, &token, &ws, "user_id", "c-1").await;
    let set = "mutation($w: ID!, $p: ID!, $i: ConsentInput!) { setConsent(workspaceId: $w, profileId: $p, input: $i) { purpose channel granted } }";
    for (channel, granted) in [("*", true), ("email", false)] {
        let answer = app.gql(set, json!({"w": ws, "p": profile["id"], "i": {"purpose": "marketing", "channel": channel, "granted": granted, "source": "preference-center"}}), Some(&token)).await;
        assert_eq!(answer.data("setConsent.granted"), &json!(granted));
    }
    app.gql(set, json!({"w": ws, "p": profile["id"], "i": {"purpose": "Bad Purpose!", "channel": "email", "granted": true, "source": "x"}}), Some(&token))
        .await.expect_code("BAD_USER_INPUT");
    let read = app.gql("query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { consents { channel granted } consentHistory { channel } } }",
        json!({"w": ws, "id": profile["id"]}), Some(&token)).await;
    assert_eq!(read.data("profile.consents").as_array().unwrap().len(), 2);
    assert_eq!(read.data("profile.consentHistory").as_array().unwrap().len(), 2);
    // The check later issues make at the moment of use.
    let scope = app.tenancy.queued_work_scope(ws.parse().unwrap()).await.unwrap();
    let id = profile["id"].as_str().unwrap().parse().unwrap();
    use profiles::consent::ContactDecision;
    assert_eq!(
        app.profiles.contact_decision(&scope, id, "marketing", "sms").await.unwrap(),
        ContactDecision::Minor
    );
    send(&app, &key, json!([{"type": "identify", "userId": "c-1", "messageId": "2", "traits": {"age": 30}}]))
        .await;
    assert_eq!(
        app.profiles.contact_decision(&scope, id, "marketing", "sms").await.unwrap(),
        ContactDecision::Allowed
    );
    assert_eq!(
        app.profiles.contact_decision(&scope, id, "marketing", "email").await.unwrap(),
        ContactDecision::ConsentWithdrawn
    );
    assert_eq!(
        app.profiles.contact_decision(&scope, id, "analytics", "email").await.unwrap(),
        ContactDecision::NoConsent
    );
}

async fn erasure_then_reingestion_is_dropped(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, ws, key) = app.tracking_workspace().await;
    send(&app, &key, json!([
        {"type": "identify", "userId": "gone-1", "anonymousId": "gone-cookie", "messageId": "1", "traits": {"email": "gone@x.fr", "name": "Gone"}},
        {"type": "track", "anonymousId": "other-cookie", "messageId": "2", "event": "x", "context": {"traits": {"email": "gone@x.fr"}}},
    ])).await;
    let profile = one_profile(&app, &token, &ws, "email", "gone@x.fr").await;
    let export = app
        .gql(
            "query($w: ID!, $id: ID!) { profileExport(workspaceId: $w, id: $id) }",
            json!({"w": ws, "id": profile["id"]}),
            Some(&token),
        )
        .await;
    let document = export.data("profileExport");
    assert_eq!(document["events"].as_array().unwrap().len(), 2);
    assert!(document["identities"].as_array().unwrap().iter().any(|i| i["value"] == "gone@x.fr"));
    // Only admins erase.
    let (_, marketer) = app.staff(&token, "MARKETER", Some(&ws)).await;
    let erase = "mutation($w: ID!, $id: ID!) { eraseProfile(workspaceId: $w, id: $id) { profiles identities events } }";
    app.gql(erase, json!({"w": ws, "id": profile["id"]}), Some(&marketer)).await.expect_code("FORBIDDEN");
    let erased = app.gql(erase, json!({"w": ws, "id": profile["id"]}), Some(&token)).await;
    assert_eq!(erased.data("eraseProfile.events"), &json!(2));
    assert!(erased.data("eraseProfile.identities").as_u64().unwrap() >= 4);
    for (kind, value) in [("email", "gone@x.fr"), ("user_id", "gone-1"), ("anonymous_id", "other-cookie")] {
        assert!(profiles_holding(&app, &token, &ws, kind, value).await.is_empty());
    }
    app.gql(
        "query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { id } }",
        json!({"w": ws, "id": profile["id"]}),
        Some(&token),
    )
    .await
    .expect_code("NOT_FOUND");
    // Data arriving later for the same person is dropped and counted, never resurrected.
    send(&app, &key, json!([
        {"type": "track", "userId": "gone-1", "messageId": "3", "event": "Came back"},
        {"type": "identify", "anonymousId": "fresh-cookie", "messageId": "4", "traits": {"email": "GONE@x.fr"}},
        {"type": "identify", "userId": "someone-else", "messageId": "5"},
    ])).await;
    assert!(profiles_holding(&app, &token, &ws, "user_id", "gone-1").await.is_empty());
    assert!(profiles_holding(&app, &token, &ws, "anonymous_id", "fresh-cookie").await.is_empty());
    assert_eq!(profiles_holding(&app, &token, &ws, "user_id", "someone-else").await.len(), 1);
    let dropped = app
        .gql("query($w: ID!) { suppressedEventCount(workspaceId: $w) }", json!({"w": ws}), Some(&token))
        .await;
    assert_eq!(dropped.data("suppressedEventCount"), &json!(2));
    // The export and the erasure are in the workspace's audit log, by profile id only.
    let log = app
        .gql("query($w: ID!) { auditLog(workspaceId: $w, first: 10) { edges { node { action targetId details } } } }", json!({"w": ws}), Some(&token))
        .await;
    let entries: Vec<(String, String)> = log
        .data("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["action"].as_str().unwrap().to_owned(),
                e["node"]["targetId"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let profile_id = profile["id"].as_str().unwrap().to_owned();
    assert!(entries.contains(&("profile.erased".to_owned(), profile_id.clone())), "{entries:?}");
    assert!(entries.contains(&("profile.exported".to_owned(), profile_id)), "{entries:?}");
    assert!(!log.data("auditLog").to_string().contains("gone@x.fr"));
}

async fn profiles_are_isolated_between_workspaces(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token_a, ws_a, key_a) = app.tracking_workspace().await;
    let (token_b, ws_b, key_b) = app.tracking_workspace().await;
    send(
        &app,
        &key_a,
        json!([{"type": "identify", "userId": "shared-id", "messageId": "same", "traits": {"owner": "a"}}]),
    )
    .await;
    send(
        &app,
        &key_b,
        json!([{"type": "identify", "userId": "shared-id", "messageId": "same", "traits": {"owner": "b"}}]),
    )
    .await;
    let a = one_profile(&app, &token_a, &ws_a, "user_id", "shared-id").await;
    let b = one_profile(&app, &token_b, &ws_b, "user_id", "shared-id").await;
    assert_eq!((a["traits"]["owner"].as_str(), b["traits"]["owner"].as_str()), (Some("a"), Some("b")));
    // B's staff cannot read A's profile, by id or through their own workspace.
    app.gql(
        "query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { id } }",
        json!({"w": ws_a, "id": a["id"]}),
        Some(&token_b),
    )
    .await
    .expect_code("NOT_FOUND");
    app.gql(
        "query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { id } }",
        json!({"w": ws_b, "id": a["id"]}),
        Some(&token_b),
    )
    .await
    .expect_code("NOT_FOUND");
    app.gql(
        "mutation($w: ID!, $id: ID!) { eraseProfile(workspaceId: $w, id: $id) { events } }",
        json!({"w": ws_b, "id": a["id"]}),
        Some(&token_b),
    )
    .await
    .expect_code("NOT_FOUND");
    assert_eq!(one_profile(&app, &token_a, &ws_a, "user_id", "shared-id").await["id"], a["id"]);
}

async fn search_by_trait_and_text(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, ws, key) = app.tracking_workspace().await;
    send(&app, &key, json!([
        {"type": "identify", "userId": "s1", "messageId": "1", "traits": {"name": "Zoé Martin", "tier": "gold", "score": 7}},
        {"type": "identify", "userId": "s2", "messageId": "2", "traits": {"name": "Paul 100%_Sure", "tier": "silver"}},
    ])).await;
    let search = |filter: Value| {
        let app = &app;
        let token = token.clone();
        let ws = ws.clone();
        async move {
            let answer = app.gql("query($w: ID!, $f: ProfileFilterInput) { profiles(workspaceId: $w, first: 10, filter: $f) { edges { node { traits } } } }",
                json!({"w": ws, "f": filter}), Some(&token)).await;
            answer
                .data("profiles.edges")
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["traits"]["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search(json!({"traitEquals": {"name": "tier", "value": "gold"}})).await, vec!["Zoé Martin"]);
    assert_eq!(search(json!({"traitEquals": {"name": "score", "value": "7"}})).await, vec!["Zoé Martin"]);
    assert_eq!(search(json!({"text": "zoé"})).await, vec!["Zoé Martin"]);
    assert_eq!(search(json!({"text": "100%_"})).await, vec!["Paul 100%_Sure"]);
    assert!(search(json!({"text": "%"})).await.len() == 1, "% is a literal, not a wildcard");
    assert_eq!(search(json!({})).await.len(), 2);
    app.gql("query($w: ID!) { profiles(workspaceId: $w, filter: {traitEquals: {name: \"a\\\"b\", value: \"x\"}}) { edges { cursor } } }",
        json!({"w": ws}), Some(&token)).await.expect_code("BAD_USER_INPUT");
}

async fn deduplication_merges_sure_pairs_and_suggests_likely_ones(backend: Backend) {
    use profiles::dedup::synthetic::{SyntheticConfig, generate};
    let app = spawn_app(backend).await;
    let (token, ws, key) = app.tracking_workspace().await;
    // CRM-like records with typos, swaps and gaps, each its own profile (different user ids
    // would forbid merges, so they come in as anonymous records).
    let data = generate(&SyntheticConfig {
        people: 400,
        household_share: 0.0,
        twin_share: 0.0,
        move_share: 0.0,
        seed: 7,
        ..Default::default()
    });
    let field = |record: &profiles::dedup::DedupRecord<u64>, name: &str| {
        let index = data.schema.fields.iter().position(|(n, _)| n == name).unwrap();
        record.values[index].clone()
    };
    let events: Vec<Value> = data.records.iter().map(|record| {
        let street = [field(record, "street_number"), field(record, "street")].into_iter().flatten().collect::<Vec<_>>().join(" ");
        json!({"type": "identify", "anonymousId": format!("crm-{}", record.key), "messageId": format!("crm-{}", record.key),
               "traits": {"firstName": field(record, "given_name"), "lastName": field(record, "surname"),
                          "birthday": field(record, "date_of_birth"),
                          "address": {"street": street, "city": field(record, "city"), "postalCode": field(record, "postcode")}}})
    }).collect();
    for chunk in events.chunks(100) {
        let (status, body) = app.track("batch", Some(&key), &json!({ "batch": chunk })).await;
        assert_eq!(status, 200, "{body}");
    }
    app.process_events().await;
    let run = app.gql("mutation($w: ID!) { runDeduplication(workspaceId: $w, input: {reviewProbability: 0.3}) { profilesCompared merged suggestions } }",
        json!({"w": ws}), Some(&token)).await;
    assert_eq!(run.data("runDeduplication.profilesCompared"), &json!(data.records.len()), "{run:?}");
    // Every record now sits on a profile; count how well profiles match the true people.
    let mut profile_of = std::collections::HashMap::new();
    for record in &data.records {
        let profile = one_profile(&app, &token, &ws, "anonymous_id", &format!("crm-{}", record.key)).await;
        profile_of.insert(record.key, profile["id"].as_str().unwrap().to_owned());
    }
    let (mut true_pos, mut false_pos, mut false_neg) = (0, 0, 0);
    for a in &data.records {
        for b in &data.records {
            if a.key < b.key {
                let same_person = data.person_of[a.key as usize] == data.person_of[b.key as usize];
                let same_profile = profile_of[&a.key] == profile_of[&b.key];
                match (same_person, same_profile) {
                    (true, true) => true_pos += 1,
                    (false, true) => false_pos += 1,
                    (true, false) => false_neg += 1,
                    _ => {}
                }
            }
        }
    }
    let precision = f64::from(true_pos) / f64::from(true_pos + false_pos).max(1.0);
    let recall = f64::from(true_pos) / f64::from(true_pos + false_neg).max(1.0);
    assert!(precision >= 0.98 && recall >= 0.8, "precision {precision}, recall {recall}, {run:?}");
    // Merges made by deduplication are explained like any other.
    let merged = profile_of.values().find(|p| profile_of.values().filter(|q| q == p).count() > 1).unwrap();
    let explained = app
        .gql(
            "query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { merges { causeKind } } }",
            json!({"w": ws, "id": merged}),
            Some(&token),
        )
        .await;
    assert_eq!(explained.data("profile.merges.0.causeKind"), &json!("dedup"));
    // Suggestions: staff accept one and reject another; a decided one cannot be decided again.
    let suggestions = app.gql("query($w: ID!) { mergeSuggestions(workspaceId: $w, first: 10) { edges { node { id probability explanation status } } } }",
        json!({"w": ws}), Some(&token)).await;
    let ids: Vec<String> = suggestions.node_strings("mergeSuggestions", "id");
    if let [first, second, ..] = ids.as_slice() {
        let accept = app
            .gql(
                "mutation($w: ID!, $id: ID!) { acceptMergeSuggestion(workspaceId: $w, id: $id) { status } }",
                json!({"w": ws, "id": first}),
                Some(&token),
            )
            .await;
        assert!(accept.code().is_none() || accept.code() == Some("CONFLICT"), "{accept:?}");
        let reject = app
            .gql(
                "mutation($w: ID!, $id: ID!) { rejectMergeSuggestion(workspaceId: $w, id: $id) { status } }",
                json!({"w": ws, "id": second}),
                Some(&token),
            )
            .await;
        assert_eq!(reject.data("rejectMergeSuggestion.status"), &json!("rejected"));
        app.gql(
            "mutation($w: ID!, $id: ID!) { rejectMergeSuggestion(workspaceId: $w, id: $id) { status } }",
            json!({"w": ws, "id": second}),
            Some(&token),
        )
        .await
        .expect_code("CONFLICT");
    }
    // A viewer may look but not run it.
    let (_, viewer) = app.staff(&token, "VIEWER", Some(&ws)).await;
    app.gql(
        "mutation($w: ID!) { runDeduplication(workspaceId: $w) { merged } }",
        json!({"w": ws}),
        Some(&viewer),
    )
    .await
    .expect_code("FORBIDDEN");
}

on_both_backends!(
    merges_are_explained_and_undone_exactly,
    rules_limits_and_blocklists,
    concurrent_events_for_one_new_identity_make_one_profile,
    consent_history_and_minors,
    erasure_then_reingestion_is_dropped,
    profiles_are_isolated_between_workspaces,
    search_by_trait_and_text,
    deduplication_merges_sure_pairs_and_suggests_likely_ones,
);
