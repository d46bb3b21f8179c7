//! Segments end to end through GraphQL on both backends: every operator of the language against
//! a small known population, definitions in both forms, versions, membership with its
//! entries and exits, nested segments and cycles, errors, and isolation between workspaces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, SecondsFormat, Utc};
use passerelle_tests::{Backend, TestApp, on_both_backends, spawn_app};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn ago(days: i64) -> String {
    (Utc::now() - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Four people, known by user id (anonymous for dave), with traits, orders, views, channels,
/// devices and consents chosen so every operator has someone in and someone out.
async fn population(app: &TestApp) -> (String, String) {
    let (token, workspace, key) = app.tracking_workspace().await;
    let identify = |user: &str, traits: Value| json!({"type": "identify", "userId": user, "traits": traits, "timestamp": ago(1)});
    let track = |user: &str, event: &str, properties: Value, days: i64, context: Value| {
        json!({"type": "track", "userId": user, "event": event, "properties": properties,
               "timestamp": ago(days), "context": context})
    };
    let batch = json!([
        identify("alice", json!({"email": "alice@example.com", "plan": "pro", "age": 34, "country": "FR",
            "vip": true, "interests": ["golf", "wine"], "last_order_at": ago(10), "address": {"city": "Lyon"}})),
        identify("bob", json!({"phone": "+33 6 12 34 56 78", "plan": "basic", "age": 15, "country": "BE",
            "vip": false, "last_order_at": ago(60)})),
        identify("carol", json!({"plan": "pro", "country": "FR"})),
        track("alice", "Order Completed", json!({"revenue": 120, "currency": "EUR"}), 5, json!({"channel": "email"})),
        track("alice", "Order Completed", json!({"revenue": 30, "currency": "USD"}), 40, json!({})),
        track("alice", "Product Viewed", json!({"sku": "SKU-1"}), 3, json!({"device": {"type": "ios"}})),
        track("alice", "Order Completed", json!({"revenue": 75, "currency": "EUR"}), 2, json!({})),
        track("bob", "Product Viewed", json!({"sku": "SKU-2"}), 1, json!({"channel": "sms"})),
        track("carol", "Order Completed", json!({"revenue": 600, "currency": "GBP"}), 20, json!({})),
        {"type": "page", "anonymousId": "dave-cookie", "name": "Home", "timestamp": ago(2)},
    ]);
    let (status, body) = app.track("batch", Some(&key), &json!({ "batch": batch })).await;
    assert_eq!(status, 200, "{body}");
    app.process_events().await;
    let carol = profile_of(app, &token, &workspace, "carol").await;
    let consent = app
        .gql(
            "mutation($w: ID!, $p: ID!) { setConsent(workspaceId: $w, profileId: $p,
               input: {purpose: \"marketing\", channel: \"email\", granted: true, source: \"crm\"}) { granted } }",
            json!({"w": workspace, "p": carol}),
            Some(&token),
        )
        .await;
    assert_eq!(consent.data("setConsent.granted"), &json!(true), "{:?}", consent.body);
    (token, workspace)
}

async fn profile_of(app: &TestApp, token: &str, workspace: &str, user: &str) -> String {
    let found = app
        .gql(
            "query($w: ID!, $v: String!) { profiles(workspaceId: $w, first: 2,
               filter: {identifier: {kind: \"user_id\", value: $v}}) { edges { node { id } } } }",
            json!({"w": workspace, "v": user}),
            Some(token),
        )
        .await;
    let ids = found.node_strings("profiles", "id");
    assert_eq!(ids.len(), 1, "{user}: {:?}", found.body);
    ids[0].clone()
}

const PREVIEW: &str = "query($w: ID!, $d: SegmentDefinitionInput!) {
    segmentPreview(workspaceId: $w, definition: $d, sampleSize: 100) {
      count definition { text json }
      sample { identities { kind value } } } }";

/// Who a definition selects, by user id (`dave` for the anonymous visitor).
async fn selected(app: &TestApp, token: &str, workspace: &str, text: &str) -> BTreeSet<String> {
    let answer = app.gql(PREVIEW, json!({"w": workspace, "d": {"text": text}}), Some(token)).await;
    assert!(answer.body.get("errors").is_none(), "{text}: {:?}", answer.body);
    let sample = answer.data("segmentPreview.sample").as_array().unwrap().clone();
    assert_eq!(answer.data("segmentPreview.count"), &json!(sample.len()), "{text}");
    sample
        .iter()
        .map(|profile| {
            let identities = profile["identities"].as_array().unwrap();
            let user =
                identities.iter().find(|i| i["kind"] == "user_id").map(|i| i["value"].as_str().unwrap());
            user.unwrap_or("dave").to_owned()
        })
        .collect()
}

fn people(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn every_operator_selects_the_right_people(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace) = population(&app).await;
    let cases: &[(&str, &[&str])] = &[
        // Traits.
        (r#"trait plan = "pro""#, &["alice", "carol"]),
        (r#"trait plan != "pro""#, &["bob"]),
        (r#"not trait plan = "pro""#, &["bob", "dave"]),
        ("trait age < 18", &["bob"]),
        ("trait age <= 15", &["bob"]),
        ("trait age > 15", &["alice"]),
        ("trait age >= 15", &["alice", "bob"]),
        (r#"trait country in ("FR", "BE")"#, &["alice", "bob", "carol"]),
        (r#"trait email contains "@example""#, &["alice"]),
        (r#"trait interests contains "golf""#, &["alice"]),
        (r#"trait interests contains "chess""#, &[]),
        (r#"trait plan starts_with "ba""#, &["bob"]),
        ("trait age exists", &["alice", "bob"]),
        ("not trait age exists", &["carol", "dave"]),
        ("trait vip = true", &["alice"]),
        ("trait vip = false", &["bob"]),
        ("trait vip != true", &["bob"]),
        ("trait last_order_at < 30 days ago", &["bob"]),
        ("trait last_order_at > 30 days ago", &["alice"]),
        (r#"trait address.city = "Lyon""#, &["alice"]),
        (r#"trait country > "C""#, &["alice", "carol"]),
        // Computed traits.
        ("event_count >= 3", &["alice"]),
        ("revenue >= 500", &["carol"]),
        ("last_seen > 2 days ago", &["alice", "bob", "carol"]),
        ("first_seen < 30 days ago", &["alice"]),
        (r#"first_channel = "web""#, &["dave"]),
        // Events.
        (r#"performed "Order Completed""#, &["alice", "carol"]),
        (r#"performed "Order Completed" within 30 days"#, &["alice", "carol"]),
        (r#"performed "Order Completed" within 7 days"#, &["alice"]),
        (r#"not performed "Order Completed" within 7 days"#, &["bob", "carol", "dave"]),
        (r#"performed "Order Completed" count >= 3"#, &["alice"]),
        (r#"performed "Order Completed" count >= 2 within 30 days"#, &["alice"]),
        (r#"performed "Order Completed" count < 2"#, &["bob", "carol", "dave"]),
        (r#"performed "Order Completed" count = 0"#, &["bob", "dave"]),
        (r#"performed "Order Completed" sum(revenue) >= 500"#, &["carol"]),
        (r#"performed "Order Completed" sum(revenue) < 500"#, &["alice", "bob", "dave"]),
        (r#"performed "Order Completed" avg(revenue) > 70"#, &["alice", "carol"]),
        (r#"performed "Order Completed" min(revenue) < 50"#, &["alice"]),
        (r#"performed "Order Completed" max(revenue) >= 600"#, &["carol"]),
        (r#"performed "Order Completed" where revenue > 100"#, &["alice", "carol"]),
        (r#"performed "Order Completed" where (revenue > 100 and currency = "EUR")"#, &["alice"]),
        (r#"performed "Order Completed" where currency in ("GBP", "USD") within 30 days"#, &["carol"]),
        (
            r#"performed "Product Viewed" where sku starts_with "SKU-" then "Order Completed" within 7 days"#,
            &["alice"],
        ),
        (r#"performed "Product Viewed" then "Order Completed" within 12 hours"#, &[]),
        (
            r#"performed "Order Completed" then "Product Viewed" then "Order Completed" within 7 days"#,
            &["alice"],
        ),
        (r#"performed "Product Viewed" then "Product Viewed" within 7 days"#, &[]),
        // Identities, consent, channels and devices.
        ("has email", &["alice"]),
        ("has phone", &["bob"]),
        ("has anonymous_id", &["dave"]),
        ("consents to marketing on email", &["carol"]),
        ("consents to marketing on sms", &[]),
        ("not consents to marketing on email", &["alice", "bob", "dave"]),
        ("used channel sms", &["bob"]),
        ("used channel email", &["alice"]),
        ("used device ios", &["alice"]),
        // Grouping.
        (r#"trait plan = "pro" and performed "Order Completed" within 7 days"#, &["alice"]),
        (r#"trait plan = "basic" or first_channel = "web""#, &["bob", "dave"]),
        (r#"not (trait plan = "pro" or has phone)"#, &["dave"]),
        (r#"(trait plan = "pro" or has phone) and not trait vip = true"#, &["bob", "carol"]),
    ];
    for (text, expected) in cases {
        assert_eq!(selected(&app, &token, &workspace, text).await, people(expected), "{text}");
    }
}

async fn both_forms_describe_one_definition(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace) = population(&app).await;
    let text = r#"trait plan = "pro" and not performed "Order Completed" within 7 days"#;
    let from_text = app.gql(PREVIEW, json!({"w": workspace, "d": {"text": text}}), Some(&token)).await;
    let json_form = from_text.data("segmentPreview.definition.json").clone();
    assert_eq!(json_form["type"], "and");
    assert_eq!(from_text.data("segmentPreview.definition.text"), &json!(text));
    let from_json = app.gql(PREVIEW, json!({"w": workspace, "d": {"json": json_form}}), Some(&token)).await;
    assert_eq!(from_json.data("segmentPreview.definition.text"), &json!(text));
    assert_eq!(from_json.data("segmentPreview.count"), &json!(1));
    // The converter needs no workspace and evaluates nothing.
    let converted = app
        .gql(
            "query($d: SegmentDefinitionInput!) { segmentDefinition(definition: $d) { text json } }",
            json!({"d": {"text": "HAS email   and consents to marketing on any channel"}}),
            Some(&token),
        )
        .await;
    assert_eq!(
        converted.data("segmentDefinition.text"),
        &json!("has email and consents to marketing on any channel")
    );
    assert_eq!(
        converted.data("segmentDefinition.json.conditions.1"),
        &json!({"type": "consent", "purpose": "marketing", "channel": "*"})
    );
}

async fn bad_definitions_are_explained(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace) = population(&app).await;
    let answer = app
        .gql(
            PREVIEW,
            json!({"w": workspace, "d": {"text": "trait plan = \"pro\"\nand plan = 3"}}),
            Some(&token),
        )
        .await;
    answer.expect_code("BAD_USER_INPUT");
    let error = &answer.body["errors"][0];
    assert_eq!(error["extensions"]["line"], json!(2));
    assert_eq!(error["extensions"]["column"], json!(5));
    assert!(error["message"].as_str().unwrap().contains("trait plan"), "{error}");
    for definition in [
        json!({"text": "performed \"A\" then \"B\""}),
        json!({"text": "(((("}),
        json!({"text": "trait x = \"unterminated"}),
        json!({"json": {"type": "trait", "name": "a", "op": "exists", "value": 3}}),
        json!({"json": {"type": "nope"}}),
        json!({"json": [1, 2]}),
        json!({"text": "has email", "json": {"type": "identity", "kind": "email"}}),
        json!({}),
        json!({"text": format!("in segment \"{}\"", uuid::Uuid::now_v7())}),
        json!({"text": "x".repeat(100_000)}),
    ] {
        let answer = app.gql(PREVIEW, json!({"w": workspace, "d": definition}), Some(&token)).await;
        answer.expect_code("BAD_USER_INPUT");
    }
}

const CREATE: &str = "mutation($w: ID!, $n: String!, $t: String!) {
    createSegment(input: {workspaceId: $w, name: $n, definition: {text: $t}}) {
      id version size evaluatedAt definition { text } } }";

const MEMBERS: &str = "query($w: ID!, $id: ID!) { segment(workspaceId: $w, id: $id) {
    size version versions { version definition { text } }
    members(first: 50) { edges { node { profileId enteredAt } } }
    changes(first: 50) { edges { node { profileId entered version } } } } }";

async fn membership_follows_versions_with_entries_and_exits(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace) = population(&app).await;
    let (alice, bob, carol) = (
        profile_of(&app, &token, &workspace, "alice").await,
        profile_of(&app, &token, &workspace, "bob").await,
        profile_of(&app, &token, &workspace, "carol").await,
    );
    let created =
        app.gql(CREATE, json!({"w": workspace, "n": "Pro", "t": "trait plan = \"pro\""}), Some(&token)).await;
    assert_eq!(created.data("createSegment.version"), &json!(1), "{:?}", created.body);
    assert_eq!(created.data("createSegment.size"), &json!(2));
    assert!(created.data("createSegment.evaluatedAt").is_string());
    let pro = created.str("createSegment.id");

    let read = app.gql(MEMBERS, json!({"w": workspace, "id": pro}), Some(&token)).await;
    let members: BTreeSet<String> = read.node_strings("segment.members", "profileId").into_iter().collect();
    assert_eq!(members, [alice.clone(), carol.clone()].into_iter().collect());

    // A new definition is version 2: carol leaves, bob enters, alice stays.
    let updated = app
        .gql(
            "mutation($w: ID!, $id: ID!) { updateSegment(input: {workspaceId: $w, id: $id,
               definition: {text: \"performed \\\"Order Completed\\\" within 7 days or has phone\"}}) { version size } }",
            json!({"w": workspace, "id": pro}),
            Some(&token),
        )
        .await;
    assert_eq!(updated.data("updateSegment.version"), &json!(2), "{:?}", updated.body);
    assert_eq!(updated.data("updateSegment.size"), &json!(2));
    let read = app.gql(MEMBERS, json!({"w": workspace, "id": pro}), Some(&token)).await;
    let members: BTreeSet<String> = read.node_strings("segment.members", "profileId").into_iter().collect();
    assert_eq!(members, [alice.clone(), bob.clone()].into_iter().collect());
    let changes: Vec<(String, bool, i64)> = read
        .data("segment.changes.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["profileId"].as_str().unwrap().to_owned(),
                e["node"]["entered"].as_bool().unwrap(),
                e["node"]["version"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut first_two = changes[..2].to_vec();
    first_two.sort();
    let mut expected_first = vec![(alice.clone(), true, 1), (carol.clone(), true, 1)];
    expected_first.sort();
    assert_eq!(first_two, expected_first);
    let mut last_two = changes[2..].to_vec();
    last_two.sort();
    let mut expected_last = vec![(bob.clone(), true, 2), (carol.clone(), false, 2)];
    expected_last.sort();
    assert_eq!(last_two, expected_last);
    let versions: Vec<i64> = read
        .data("segment.versions")
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1]);
    assert_eq!(read.data("segment.versions.1.definition.text"), &json!("trait plan = \"pro\""));

    // The same definition again is no new version; a rename is not either.
    let same = app
        .gql(
            "mutation($w: ID!, $id: ID!) { updateSegment(input: {workspaceId: $w, id: $id, name: \"Buyers\",
               definition: {text: \"performed \\\"Order Completed\\\" within 7 days or has phone\"}}) { version name } }",
            json!({"w": workspace, "id": pro}),
            Some(&token),
        )
        .await;
    assert_eq!(same.data("updateSegment.version"), &json!(2));
    assert_eq!(same.data("updateSegment.name"), &json!("Buyers"));

    // A profile says which segments it is in, since when.
    let in_segments = app
        .gql(
            "query($w: ID!, $p: ID!) { profile(workspaceId: $w, id: $p) { segments { segmentId enteredAt segment { name } } } }",
            json!({"w": workspace, "p": bob}),
            Some(&token),
        )
        .await;
    assert_eq!(in_segments.data("profile.segments.0.segmentId"), &json!(pro));
    assert_eq!(in_segments.data("profile.segments.0.segment.name"), &json!("Buyers"));

    // Evaluating again changes nothing when the data did not change.
    let again = app
        .gql("mutation($w: ID!, $id: ID!) { evaluateSegment(workspaceId: $w, id: $id) { entered exited size } }",
            json!({"w": workspace, "id": pro}), Some(&token))
        .await;
    assert_eq!(again.data("evaluateSegment"), &json!({"entered": 0, "exited": 0, "size": 2}));

    // Names are unique per workspace.
    app.gql(CREATE, json!({"w": workspace, "n": "Buyers", "t": "has email"}), Some(&token))
        .await
        .expect_code("CONFLICT");
}

async fn nested_segments_and_cycles(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace) = population(&app).await;
    let pro = app
        .gql(CREATE, json!({"w": workspace, "n": "Pro", "t": "trait plan = \"pro\""}), Some(&token))
        .await
        .str("createSegment.id");
    let nested = app
        .gql(
            CREATE,
            json!({"w": workspace, "n": "Pro FR buyers",
            "t": format!("in segment \"{pro}\" and performed \"Order Completed\" within 7 days")}),
            Some(&token),
        )
        .await;
    assert_eq!(nested.data("createSegment.size"), &json!(1), "{:?}", nested.body);
    let nested_id = nested.str("createSegment.id");
    assert_eq!(
        selected(&app, &token, &workspace, &format!("not in segment \"{pro}\"")).await,
        people(&["bob", "dave"])
    );

    // Pro → Pro FR buyers → Pro would be a cycle, and so would a segment in itself.
    for definition in [format!("in segment \"{nested_id}\""), format!("has email or in segment \"{pro}\"")] {
        let answer = app
            .gql(
                "mutation($w: ID!, $id: ID!, $t: String!) { updateSegment(input: {workspaceId: $w, id: $id,
                   definition: {text: $t}}) { version } }",
                json!({"w": workspace, "id": pro, "t": definition}),
                Some(&token),
            )
            .await;
        answer.expect_code("BAD_USER_INPUT");
        assert!(answer.body["errors"][0]["message"].as_str().unwrap().contains("cycle"), "{:?}", answer.body);
    }
    // A segment another one uses cannot be deleted; once unused it can.
    let delete = "mutation($w: ID!, $id: ID!) { deleteSegment(workspaceId: $w, id: $id) }";
    app.gql(delete, json!({"w": workspace, "id": pro}), Some(&token)).await.expect_code("CONFLICT");
    assert_eq!(
        app.gql(delete, json!({"w": workspace, "id": nested_id}), Some(&token)).await.data("deleteSegment"),
        &json!(true)
    );
    assert_eq!(
        app.gql(delete, json!({"w": workspace, "id": pro}), Some(&token)).await.data("deleteSegment"),
        &json!(true)
    );
    app.gql(MEMBERS, json!({"w": workspace, "id": pro}), Some(&token)).await.expect_code("NOT_FOUND");
}

async fn segments_stay_in_their_workspace(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace) = population(&app).await;
    let pro = app
        .gql(CREATE, json!({"w": workspace, "n": "Pro", "t": "trait plan = \"pro\""}), Some(&token))
        .await
        .str("createSegment.id");
    let other = app.agency("Other agency").await.owner_token;
    let theirs = app.create_workspace(&other, "Theirs").await;
    // To another agency this workspace does not exist: nothing to read, preview or change.
    app.gql(MEMBERS, json!({"w": workspace, "id": pro}), Some(&other)).await.expect_code("NOT_FOUND");
    app.gql(PREVIEW, json!({"w": workspace, "d": {"text": "has email"}}), Some(&other))
        .await
        .expect_code("NOT_FOUND");
    app.gql(CREATE, json!({"w": workspace, "n": "Theirs", "t": "has email"}), Some(&other))
        .await
        .expect_code("NOT_FOUND");
    // In its own workspace, this workspace's segment id does not exist, and cannot be nested.
    app.gql(MEMBERS, json!({"w": theirs, "id": pro}), Some(&other)).await.expect_code("NOT_FOUND");
    app.gql(
        "mutation($w: ID!, $id: ID!) { evaluateSegment(workspaceId: $w, id: $id) { size } }",
        json!({"w": theirs, "id": pro}),
        Some(&other),
    )
    .await
    .expect_code("NOT_FOUND");
    app.gql(CREATE, json!({"w": theirs, "n": "Sneaky", "t": format!("in segment \"{pro}\"")}), Some(&other))
        .await
        .expect_code("BAD_USER_INPUT");
    // Their previews see none of this workspace's people.
    assert_eq!(
        selected(&app, &other, &theirs, "trait plan exists or not trait plan exists").await,
        people(&[])
    );
    // A viewer may read but not change.
    let (_, viewer) = app.staff(&token, "VIEWER", Some(&workspace)).await;
    assert_eq!(selected(&app, &viewer, &workspace, "has email").await, people(&["alice"]));
    app.gql(CREATE, json!({"w": workspace, "n": "Nope", "t": "has email"}), Some(&viewer))
        .await
        .expect_code("FORBIDDEN");
}

on_both_backends!(
    every_operator_selects_the_right_people,
    both_forms_describe_one_definition,
    bad_definitions_are_explained,
    membership_follows_versions_with_entries_and_exits,
    nested_segments_and_cycles,
    segments_stay_in_their_workspace,
);
