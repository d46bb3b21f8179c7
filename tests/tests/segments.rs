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
    consent(app, &token, &workspace, &carol, "email", true).await;
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

/// A profile's user id, from its `identities { kind value }`.
fn user_id(profile: &Value) -> Option<String> {
    let identities = profile["identities"].as_array()?;
    let user = identities.iter().find(|i| i["kind"] == "user_id")?;
    user["value"].as_str().map(str::to_owned)
}

/// Who a definition selects, by user id (`dave` for the anonymous visitor).
async fn selected(app: &TestApp, token: &str, workspace: &str, text: &str) -> BTreeSet<String> {
    let answer = app.gql(PREVIEW, json!({"w": workspace, "d": {"text": text}}), Some(token)).await;
    assert!(answer.body.get("errors").is_none(), "{text}: {:?}", answer.body);
    let sample = answer.data("segmentPreview.sample").as_array().unwrap().clone();
    assert_eq!(answer.data("segmentPreview.count"), &json!(sample.len()), "{text}");
    sample.iter().map(|profile| user_id(profile).unwrap_or_else(|| "dave".to_owned())).collect()
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

    // The workspace's segments, oldest first, page by page.
    let later = create(&app, &token, &workspace, "Later", "has email").await;
    let list = "query($w: ID!, $after: String) { segments(workspaceId: $w, first: 1, after: $after) {
        edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let (ids, pages) = app.all_pages(list, json!({"w": workspace}), Some(&token), "segments", "id").await;
    assert_eq!((ids, pages), (vec![pro.clone(), later], 2));

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

const MEMBER_IDS: &str = "query($w: ID!, $id: ID!) { segment(workspaceId: $w, id: $id) {
    size members(first: 100) { edges { node { profileId } } }
    changes(first: 100) { edges { node { profileId entered } } } } }";

async fn members_of(app: &TestApp, token: &str, workspace: &str, segment: &str) -> BTreeSet<String> {
    let answer = app.gql(MEMBER_IDS, json!({"w": workspace, "id": segment}), Some(token)).await;
    let members: BTreeSet<String> = answer.node_strings("segment.members", "profileId").into_iter().collect();
    assert_eq!(answer.data("segment.size"), &json!(members.len()));
    members
}

async fn create(app: &TestApp, token: &str, workspace: &str, name: &str, text: &str) -> String {
    let created = app.gql(CREATE, json!({"w": workspace, "n": name, "t": text}), Some(token)).await;
    created.str("createSegment.id")
}

async fn real_time_membership_follows_events_consent_merges_and_erasure(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let buyers = create(&app, &token, &workspace, "Buyers", "performed \"Order Completed\"").await;
    let reachable = create(&app, &token, &workspace, "Reachable", "consents to marketing on email").await;
    let pro = create(&app, &token, &workspace, "Pro", "trait plan = \"pro\"").await;
    assert!(members_of(&app, &token, &workspace, &buyers).await.is_empty());

    // An order makes erin a buyer, with no evaluation asked for.
    let send = |events: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            let (status, body) = app.track("batch", Some(&key), &json!({ "batch": events })).await;
            assert_eq!(status, 200, "{body}");
            app.process_events_and_segments().await;
        }
    };
    send(json!([
        {"type": "track", "userId": "erin", "event": "Order Completed", "properties": {"revenue": 10}},
        {"type": "identify", "anonymousId": "cookie-f", "traits": {"plan": "pro", "email": "f@example.com"}},
    ]))
    .await;
    let erin = profile_of(&app, &token, &workspace, "erin").await;
    assert_eq!(members_of(&app, &token, &workspace, &buyers).await, [erin.clone()].into_iter().collect());
    let cookie_f = members_of(&app, &token, &workspace, &pro).await;
    assert_eq!(cookie_f.len(), 1);
    let cookie_f = cookie_f.into_iter().next().unwrap();

    // Consent given at the moment of use counts at once.
    consent(&app, &token, &workspace, &erin, "*", true).await;
    app.segments.apply_changes().await.unwrap();
    assert_eq!(members_of(&app, &token, &workspace, &reachable).await, [erin.clone()].into_iter().collect());

    // The visitor identifies as erin: the profiles merge, the survivor holds both, and the
    // merged profile leaves its segments.
    send(json!([{"type": "identify", "userId": "erin", "anonymousId": "cookie-f"}])).await;
    let survivor = profile_of(&app, &token, &workspace, "erin").await;
    let gone = if survivor == erin { cookie_f.clone() } else { erin.clone() };
    for segment in [&buyers, &pro] {
        let members = members_of(&app, &token, &workspace, segment).await;
        assert_eq!(members, [survivor.clone()].into_iter().collect(), "{segment}");
        assert!(!members.contains(&gone));
    }
    let answer = app.gql(MEMBER_IDS, json!({"w": workspace, "id": pro}), Some(&token)).await;
    let exits: Vec<&Value> = answer
        .data("segment.changes.edges")
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["entered"] == json!(false))
        .collect();
    assert_eq!(exits.len(), usize::from(gone == cookie_f), "{:?}", answer.body);

    // Erasure takes the person out of every segment and out of the history.
    let (_, admin) = app.staff(&token, "ADMIN", Some(&workspace)).await;
    let erased = app
        .gql(
            "mutation($w: ID!, $p: ID!) { eraseProfile(workspaceId: $w, id: $p) { profiles } }",
            json!({"w": workspace, "p": survivor}),
            Some(&admin),
        )
        .await;
    assert!(erased.body.get("errors").is_none(), "{:?}", erased.body);
    app.segments.apply_changes().await.unwrap();
    for segment in [&buyers, &reachable, &pro] {
        let answer = app.gql(MEMBER_IDS, json!({"w": workspace, "id": segment}), Some(&token)).await;
        assert_eq!(answer.data("segment.size"), &json!(0));
        let history = answer.node_strings("segment.changes", "profileId");
        assert!(!history.contains(&survivor) && !history.contains(&erin), "{segment}: {history:?}");
    }
}

async fn time_windows_expire_on_schedule(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    // The ping happened 55 s ago: inside a one-minute window for five more seconds.
    let at = (Utc::now() - Duration::seconds(55)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let (status, _) =
        app.track("track", Some(&key), &json!({"userId": "gina", "event": "Ping", "timestamp": at})).await;
    assert_eq!(status, 200);
    app.process_events_and_segments().await;
    let recent = create(&app, &token, &workspace, "Pinged", "performed \"Ping\" within 1 minute").await;
    let gina = profile_of(&app, &token, &workspace, "gina").await;
    assert_eq!(members_of(&app, &token, &workspace, &recent).await, [gina.clone()].into_iter().collect());
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    // No new event: the scheduled refresh alone takes gina out, with an exit in the history.
    assert_eq!(app.segments.refresh_time_relative().await.unwrap(), 1);
    assert!(members_of(&app, &token, &workspace, &recent).await.is_empty());
    let answer = app.gql(MEMBER_IDS, json!({"w": workspace, "id": recent}), Some(&token)).await;
    assert_eq!(answer.data("segment.changes.edges.1.node"), &json!({"profileId": gina, "entered": false}));
}

/// A small deterministic generator, so a failing case can be replayed from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next(items.len() as u64) as usize]
    }
}

fn random_condition(rng: &mut Lcg, depth: u32) -> segments::Condition {
    use segments::ast::{Aggregate, Condition, Measure, Op, PropertyFilter, TimeUnit, Value as V, Window};
    let leaf = depth == 0 || rng.next(3) == 0;
    if !leaf {
        return match rng.next(3) {
            0 => Condition::Not { condition: Box::new(random_condition(rng, depth - 1)) },
            1 => Condition::And { conditions: (0..2).map(|_| random_condition(rng, depth - 1)).collect() },
            _ => Condition::Or { conditions: (0..2).map(|_| random_condition(rng, depth - 1)).collect() },
        };
    }
    let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Lte, Op::Gt, Op::Gte];
    match rng.next(7) {
        0 => Condition::Trait {
            name: "plan".into(),
            op: if rng.next(2) == 0 { Op::Eq } else { Op::Ne },
            value: Some(V::Text(rng.pick(&["pro", "basic", "free"]).into())),
        },
        1 => Condition::Trait {
            name: "age".into(),
            op: ops[rng.next(6) as usize],
            value: Some(V::Number(rng.next(60) as f64)),
        },
        2 => Condition::Trait {
            name: rng.pick(&["age", "plan", "country"]).into(),
            op: Op::Exists,
            value: None,
        },
        3 => {
            let measure = match rng.next(3) {
                0 => None,
                1 => Some(Measure {
                    aggregate: Aggregate::Count,
                    property: None,
                    op: ops[rng.next(6) as usize],
                    value: rng.next(4) as f64,
                }),
                _ => Some(Measure {
                    aggregate: Aggregate::Sum,
                    property: Some("revenue".into()),
                    op: ops[rng.next(6) as usize],
                    value: rng.next(300) as f64,
                }),
            };
            Condition::Event {
                name: rng.pick(&["A", "B", "C"]).into(),
                filters: if rng.next(2) == 0 {
                    vec![]
                } else {
                    vec![PropertyFilter {
                        property: "revenue".into(),
                        op: Op::Gt,
                        value: Some(V::Number(rng.next(200) as f64)),
                    }]
                },
                measure,
                within: (rng.next(2) == 0)
                    .then(|| Window { amount: 1 + rng.next(40) as u32, unit: TimeUnit::Days }),
            }
        }
        4 => Condition::Consent { purpose: "marketing".into(), channel: rng.pick(&["email", "sms"]).into() },
        5 => Condition::Channel { channel: rng.pick(&["web", "email", "sms"]).into() },
        _ => Condition::Identity { kind: rng.pick(&["email", "phone"]).into() },
    }
}

fn random_events(rng: &mut Lcg, people: u64, count: usize) -> Value {
    let events: Vec<Value> = (0..count)
        .map(|_| {
            let user = format!("p{}", rng.next(people));
            if rng.next(4) == 0 {
                let mut traits = json!({"plan": rng.pick(&["pro", "basic", "free"]), "country": rng.pick(&["FR", "BE"])});
                if rng.next(2) == 0 {
                    traits["age"] = json!(rng.next(60));
                }
                if rng.next(3) == 0 {
                    traits["email"] = json!(format!("{user}@example.com"));
                }
                json!({"type": "identify", "userId": user, "traits": traits, "timestamp": ago(rng.next(40) as i64)})
            } else {
                json!({"type": "track", "userId": user, "event": rng.pick(&["A", "B", "C"]),
                    "properties": {"revenue": rng.next(200)},
                    "context": {"channel": rng.pick(&["web", "email", "sms"])},
                    "timestamp": ago(rng.next(40) as i64)})
            }
        })
        .collect();
    json!(events)
}

/// The property that makes real-time membership trustworthy: random definitions over random
/// data, maintained only by the change feed as the data arrives, equal the batch answer.
async fn real_time_and_batch_agree_on_random_definitions(backend: Backend) {
    let app = spawn_app(backend).await;
    for seed in [0x5eed_0001, 0x5eed_0002] {
        random_definitions_agree(&app, seed).await;
    }
}

async fn random_definitions_agree(app: &TestApp, seed: u64) {
    let (token, workspace, key) = app.tracking_workspace().await;
    let mut rng = Lcg(seed);
    let mut definitions = Vec::new();
    for i in 0..24 {
        let definition = random_condition(&mut rng, 3).normalized();
        let text = segments::dsl::print(&definition);
        let id = create(app, &token, &workspace, &format!("random {i}"), &text).await;
        definitions.push((id, text));
    }
    for round in 0..4 {
        let (status, body) =
            app.track("batch", Some(&key), &json!({"batch": random_events(&mut rng, 15, 40)})).await;
        assert_eq!(status, 200, "{body}");
        app.process_events_and_segments().await;
        if round == 2 {
            // Consent arrives between events.
            let someone = profile_of(app, &token, &workspace, "p3").await;
            consent(app, &token, &workspace, &someone, "email", true).await;
            app.segments.apply_changes().await.unwrap();
        }
    }
    let mut non_trivial = 0;
    for (id, text) in &definitions {
        let stored = members_of(app, &token, &workspace, id).await;
        let answer = app.gql(PREVIEW, json!({"w": workspace, "d": {"text": text}}), Some(&token)).await;
        let batch: BTreeSet<String> = answer
            .data("segmentPreview.sample")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| user_id(p).unwrap())
            .collect();
        let mut stored_users = BTreeSet::new();
        for profile in &stored {
            let found = app
                .gql(
                    "query($w: ID!, $p: ID!) { profile(workspaceId: $w, id: $p) { identities { kind value } } }",
                    json!({"w": workspace, "p": profile}),
                    Some(&token),
                )
                .await;
            stored_users.insert(user_id(found.data("profile")).unwrap());
        }
        assert_eq!(stored_users, batch, "seed {seed:#x}: {text}");
        if !batch.is_empty() && batch.len() < 15 {
            non_trivial += 1;
        }
    }
    // The generator must produce segments that split the population, or the test proves little.
    assert!(non_trivial >= 8, "seed {seed:#x}: only {non_trivial} definitions split the population");
}

on_both_backends!(
    real_time_membership_follows_events_consent_merges_and_erasure,
    time_windows_expire_on_schedule,
    real_time_and_batch_agree_on_random_definitions,
);

async fn consent(app: &TestApp, token: &str, workspace: &str, profile: &str, channel: &str, granted: bool) {
    let answer = app
        .gql(
            "mutation($w: ID!, $p: ID!, $c: String!, $g: Boolean!) { setConsent(workspaceId: $w, profileId: $p,
               input: {purpose: \"marketing\", channel: $c, granted: $g, source: \"form\"}) { granted } }",
            json!({"w": workspace, "p": profile, "c": channel, "g": granted}),
            Some(token),
        )
        .await;
    assert_eq!(answer.data("setConsent.granted"), &json!(granted));
}

async fn export(app: &TestApp, token: &str, workspace: &str, segment: &str, query: &str) -> (u16, String) {
    let response = app
        .client
        .get(app.url(&format!("/exports/{workspace}/segments/{segment}?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn sha256(value: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

async fn exports_respect_consent_minors_and_formats(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let identify = |user: &str, traits: Value| json!({"type": "identify", "userId": user, "traits": traits});
    let (status, _) = app
        .track("batch", Some(&key), &json!({"batch": [
            identify("ann", json!({"email": "Ann@Example.com", "phone": "+33 6 12 34 56 78", "age": 40, "name": "Ann Lee",
                "address": {"street": "1 rue de la Paix", "postalCode": "75002", "city": "Paris", "country": "FR"}})),
            identify("ben", json!({"email": "ben@example.com", "age": 12})),
            identify("cat", json!({"email": "cat@example.com"})),
            identify("dan", json!({"phone": "+44 20 7946 0958", "firstName": "Dan", "lastName": "Roe"})),
            identify("eve", json!({"email": "eve@example.com", "birthday": "1990-05-01"})),
        ]}))
        .await;
    assert_eq!(status, 200);
    app.process_events_and_segments().await;
    let id = |user: &'static str| {
        let (app, token, workspace) = (&app, &token, &workspace);
        async move { profile_of(app, token, workspace, user).await }
    };
    let (ann, ben, dan, eve) = (id("ann").await, id("ben").await, id("dan").await, id("eve").await);
    consent(&app, &token, &workspace, &ann, "*", true).await;
    consent(&app, &token, &workspace, &ben, "*", true).await;
    consent(&app, &token, &workspace, &dan, "*", false).await;
    consent(&app, &token, &workspace, &dan, "call_center", true).await;
    consent(&app, &token, &workspace, &eve, "*", true).await;
    consent(&app, &token, &workspace, &eve, "sms", false).await;
    let everyone = create(&app, &token, &workspace, "Everyone", "has email or has phone").await;

    // Ad platforms get hashes of the normalised identifiers only; the minor, the person who
    // never consented and the one who withdrew are left out.
    let (status, csv) = export(&app, &token, &workspace, &everyone, "format=hashed&channel=social").await;
    assert_eq!(status, 200, "{csv}");
    let mut lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.remove(0), "email_sha256,phone_sha256");
    lines.sort();
    let mut expected = vec![
        format!("{},{}", sha256("ann@example.com"), sha256("+33612345678")),
        format!("{},", sha256("eve@example.com")),
    ];
    expected.sort();
    assert_eq!(lines, expected);
    assert!(!csv.contains("example.com"));

    // Consent is per channel: eve withdrew for SMS; dan agreed to calls only.
    let (_, csv) = export(&app, &token, &workspace, &everyone, "format=phone&channel=call_center").await;
    let mut lines: Vec<&str> = csv.lines().skip(1).collect();
    lines.sort();
    assert_eq!(lines, vec!["+33612345678,Ann Lee", "+442079460958,Dan Roe"]);
    let (_, csv) = export(&app, &token, &workspace, &everyone, "format=hashed&channel=sms").await;
    assert_eq!(csv.lines().count(), 2, "{csv}");

    // Direct mail needs an address.
    let (_, csv) = export(&app, &token, &workspace, &everyone, "format=postal&channel=direct_mail").await;
    assert_eq!(csv, "name,street,postal_code,city,country\nAnn Lee,1 rue de la Paix,75002,Paris,FR\n");

    // Bad requests, other workspaces and missing credentials are refused.
    let (status, body) = export(&app, &token, &workspace, &everyone, "format=fax&channel=social").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("BAD_USER_INPUT"));
    let (status, _) = export(&app, &token, &workspace, &everyone, "format=hashed").await;
    assert_eq!(status, 400);
    let (status, _) = export(&app, &token, &workspace, &everyone, "format=hashed&channel=Social%20Ads").await;
    assert_eq!(status, 400);
    let other = app.agency("Other").await.owner_token;
    let (status, _) = export(&app, &other, &workspace, &everyone, "format=hashed&channel=social").await;
    assert_eq!(status, 404);
    let (status, _) =
        export(&app, "not-a-token", &workspace, &everyone, "format=hashed&channel=social").await;
    assert_eq!(status, 401);
    let (_, viewer) = app.staff(&token, "VIEWER", Some(&workspace)).await;
    let (status, _) = export(&app, &viewer, &workspace, &everyone, "format=hashed&channel=social").await;
    assert_eq!(status, 403);
}

async fn size_history_and_overlap(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace) = population(&app).await;
    let pro = create(&app, &token, &workspace, "Pro", "trait plan = \"pro\"").await;
    let buyers = create(&app, &token, &workspace, "Buyers", "performed \"Order Completed\"").await;
    let phones = create(&app, &token, &workspace, "Phones", "has phone").await;
    let history = app
        .gql("query($w: ID!, $id: ID!) { segment(workspaceId: $w, id: $id) { sizeHistory(days: 3) { day size entered exited } } }",
            json!({"w": workspace, "id": pro}), Some(&token))
        .await;
    let points = history.data("segment.sizeHistory").as_array().unwrap().clone();
    assert_eq!(points.len(), 3);
    assert_eq!(points[0]["size"], json!(0));
    assert_eq!(points[2]["day"], json!(Utc::now().date_naive().to_string()));
    assert_eq!((points[2]["size"].clone(), points[2]["entered"].clone()), (json!(2), json!(2)));
    app.gql(
        "query($w: ID!, $id: ID!) { segment(workspaceId: $w, id: $id) { sizeHistory(days: 0) { day } } }",
        json!({"w": workspace, "id": pro}),
        Some(&token),
    )
    .await
    .expect_code("BAD_USER_INPUT");

    let overlap = app
        .gql("query($w: ID!, $ids: [ID!]!) { segmentOverlap(workspaceId: $w, ids: $ids) { segmentA segmentB sizeA sizeB both jaccard } }",
            json!({"w": workspace, "ids": [pro, buyers, phones]}), Some(&token))
        .await;
    let pairs = overlap.data("segmentOverlap").as_array().unwrap().clone();
    assert_eq!(pairs.len(), 3);
    // Pro = {alice, carol}, Buyers = {alice, carol}, Phones = {bob}.
    assert_eq!(
        pairs[0],
        json!({"segmentA": pro, "segmentB": buyers, "sizeA": 2, "sizeB": 2, "both": 2, "jaccard": 1.0})
    );
    assert_eq!(
        pairs[1],
        json!({"segmentA": pro, "segmentB": phones, "sizeA": 2, "sizeB": 1, "both": 0, "jaccard": 0.0})
    );
    app.gql(
        "query($w: ID!, $ids: [ID!]!) { segmentOverlap(workspaceId: $w, ids: $ids) { both } }",
        json!({"w": workspace, "ids": [pro, pro]}),
        Some(&token),
    )
    .await
    .expect_code("BAD_USER_INPUT");
}

on_both_backends!(exports_respect_consent_minors_and_formats, size_history_and_overlap);

async fn cached_answers_are_never_stale(backend: Backend) {
    // Workers off: the test runs their rounds itself, so nothing changes behind its back
    // between two reads that must hit the cache.
    let app = passerelle_tests::spawn_app_with(backend, |settings| settings.workers = false).await;
    let (token, workspace) = population(&app).await;
    let key = {
        let (_, key) = app.create_api_key(&token, &workspace, "WRITE", &[]).await;
        key
    };
    app.segments.apply_changes().await.unwrap();
    let pro = "trait plan = \"pro\"";
    assert_eq!(selected(&app, &token, &workspace, pro).await, people(&["alice", "carol"]));
    let before = app.segments.cache_stats();
    assert_eq!(selected(&app, &token, &workspace, pro).await, people(&["alice", "carol"]));
    let after = app.segments.cache_stats();
    assert_eq!(after.hits, before.hits + 1, "the second preview comes from the cache");
    // Operators see the same counts, and the ratio, at /metrics.
    assert_eq!(app.metric("passerelle_cache_hits_total{cache=\"segments\"}").await, Some(after.hits as f64));
    assert_eq!(
        app.metric("passerelle_cache_misses_total{cache=\"segments\"}").await,
        Some(after.misses as f64)
    );
    let ratio = app.metric("passerelle_cache_hit_ratio{cache=\"segments\"}").await.unwrap();
    assert!((ratio - after.hits as f64 / (after.hits + after.misses) as f64).abs() < 1e-9, "{ratio}");

    // Profile data changes: the next preview sees it at once, before any segment work.
    let (status, _) =
        app.track("identify", Some(&key), &json!({"userId": "bob", "traits": {"plan": "pro"}})).await;
    assert_eq!(status, 200);
    app.process_events().await;
    assert_eq!(selected(&app, &token, &workspace, pro).await, people(&["alice", "bob", "carol"]));

    // A nested segment's definition changes: previews that use it follow.
    let reachable = create(&app, &token, &workspace, "Reachable", "has phone").await;
    let nested = format!("in segment \"{reachable}\"");
    assert_eq!(selected(&app, &token, &workspace, &nested).await, people(&["bob"]));
    let bob = profile_of(&app, &token, &workspace, "bob").await;
    let segments_of_bob = || {
        let (app, token, workspace, bob) = (&app, &token, &workspace, &bob);
        async move {
            let answer = app
                .gql(
                    "query($w: ID!, $p: ID!) { profile(workspaceId: $w, id: $p) { segments { segmentId } } }",
                    json!({"w": workspace, "p": bob}),
                    Some(token),
                )
                .await;
            answer
                .data("profile.segments")
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["segmentId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(segments_of_bob().await, vec![reachable.clone()]);
    assert_eq!(segments_of_bob().await, vec![reachable.clone()]);
    let update = app
        .gql("mutation($w: ID!, $id: ID!) { updateSegment(input: {workspaceId: $w, id: $id, definition: {text: \"has email\"}}) { version } }",
            json!({"w": workspace, "id": reachable}), Some(&token))
        .await;
    assert_eq!(update.data("updateSegment.version"), &json!(2));
    assert_eq!(selected(&app, &token, &workspace, &nested).await, people(&["alice"]));
    assert!(segments_of_bob().await.is_empty());

    // Membership moved by the real-time worker: the cached membership check follows.
    let basic = create(&app, &token, &workspace, "Basic", "trait plan = \"basic\" or trait age < 18").await;
    assert_eq!(segments_of_bob().await, vec![basic.clone()]);
    let (status, _) =
        app.track("identify", Some(&key), &json!({"userId": "bob", "traits": {"age": 19}})).await;
    assert_eq!(status, 200);
    app.process_events_and_segments().await;
    assert!(segments_of_bob().await.is_empty());
}

on_both_backends!(cached_answers_are_never_stale);

/// A change re-evaluates only the segments it can affect: an event the segments do not read
/// touches none of them, a trait change only those that read traits.
async fn changes_reach_only_the_segments_they_can_affect(backend: Backend) {
    let app = passerelle_tests::spawn_app_with(backend, |settings| settings.workers = false).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let did_x = create(&app, &token, &workspace, "Did X", "performed \"X\"").await;
    let pro = create(&app, &token, &workspace, "Pro", "trait plan = \"pro\"").await;
    let _emails = create(&app, &token, &workspace, "Emails", "has email").await;
    let step = |body: Value| {
        let (app, key) = (&app, key.clone());
        async move {
            let (status, _) = app.track("batch", Some(&key), &json!({"batch": [body]})).await;
            assert_eq!(status, 200);
            let before = app.segments.realtime_evaluations();
            app.process_events_and_segments().await;
            app.segments.realtime_evaluations() - before
        }
    };
    // Known already, an event nobody reads: no segment is evaluated.
    assert_eq!(
        step(json!({"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}})).await,
        2
    );
    assert_eq!(step(json!({"type": "track", "userId": "u1", "event": "Y"})).await, 0);
    // `X` is read by one segment only, and it enters it.
    assert_eq!(step(json!({"type": "track", "userId": "u1", "event": "X"})).await, 1);
    let u1 = profile_of(&app, &token, &workspace, "u1").await;
    assert_eq!(members_of(&app, &token, &workspace, &did_x).await, [u1.clone()].into_iter().collect());
    // A trait change: only the trait segment.
    assert_eq!(step(json!({"type": "identify", "userId": "u1", "traits": {"plan": "pro"}})).await, 1);
    assert_eq!(members_of(&app, &token, &workspace, &pro).await, [u1.clone()].into_iter().collect());
}

on_both_backends!(changes_reach_only_the_segments_they_can_affect);
