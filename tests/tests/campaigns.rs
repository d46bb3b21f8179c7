//! Campaigns end to end through GraphQL on both backends, with a real webhook receiver: a
//! journey enters people from a segment, holds out a control group, splits A/B, sends through
//! the outbox with signed webhooks, and records why anyone did not receive a message; caps
//! hold across concurrent journeys, quiet hours defer, consent is checked at send time,
//! published versions are immutable and people stay on theirs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hmac::{Hmac, Mac};
use passerelle_tests::receiver::{Received, Receiver};
use passerelle_tests::{Backend, TestApp, on_both_backends, spawn_app_with};
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet};

struct Setup {
    app: TestApp,
    token: String,
    workspace: String,
    key: String,
    segment: String,
}

/// An app whose background workers are off (the test runs each round), a workspace with a
/// write key, and a segment of everyone on the pro plan.
async fn setup(backend: Backend) -> Setup {
    setup_with(backend, |_| {}).await
}

/// Like [`setup`], with a chance to change the settings first.
async fn setup_with(backend: Backend, configure: impl FnOnce(&mut platform::Settings)) -> Setup {
    let app = spawn_app_with(backend, |settings| {
        settings.workers = false;
        configure(settings);
    })
    .await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let created = app
        .gql(
            "mutation($w: ID!) { createSegment(input: {workspaceId: $w, name: \"Pro\",
               definition: {text: \"trait plan = \\\"pro\\\"\"}}) { id } }",
            json!({"w": workspace}),
            Some(&token),
        )
        .await;
    let segment = created.str("createSegment.id");
    Setup { app, token, workspace, key, segment }
}

impl Setup {
    async fn gql(&self, query: &str, variables: Value) -> passerelle_tests::Gql {
        self.app.gql(query, variables, Some(&self.token)).await
    }

    /// A webhook channel of `kind` to the receiver; returns its id and signing secret.
    async fn webhook_channel(&self, name: &str, kind: &str, receiver: &Receiver) -> (String, String) {
        let answer = self
            .gql(
                "mutation($w: ID!, $n: String!, $k: String!, $d: JSON!) { createChannel(input: {workspaceId: $w,
                   name: $n, kind: $k, delivery: $d}) { channel { id kind mode } signingSecret } }",
                json!({"w": self.workspace, "n": name, "k": kind,
                       "d": {"adapter": "webhook", "url": receiver.url()}}),
            )
            .await;
        assert_eq!(answer.data("createChannel.channel.mode"), &json!("message"), "{:?}", answer.body);
        (answer.str("createChannel.channel.id"), answer.str("createChannel.signingSecret"))
    }

    async fn content(&self, name: &str, template: Value) -> String {
        let answer = self
            .gql(
                "mutation($w: ID!, $n: String!, $t: JSON!) { createContent(workspaceId: $w, name: $n, template: $t) { id } }",
                json!({"w": self.workspace, "n": name, "t": template}),
            )
            .await;
        assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
        answer.str("createContent.id")
    }

    async fn journey(&self, name: &str, graph: Value) -> String {
        let answer = self
            .gql(
                "mutation($w: ID!, $n: String!, $g: JSON!) { createJourney(input: {workspaceId: $w, name: $n, graph: $g}) { id status } }",
                json!({"w": self.workspace, "n": name, "g": graph}),
            )
            .await;
        assert_eq!(answer.data("createJourney.status"), &json!("DRAFT"), "{:?}", answer.body);
        answer.str("createJourney.id")
    }

    async fn publish(&self, journey: &str) -> passerelle_tests::Gql {
        self.gql(
            "mutation($w: ID!, $id: ID!) { publishJourney(workspaceId: $w, id: $id) { status version } }",
            json!({"w": self.workspace, "id": journey}),
        )
        .await
    }

    /// `n` people on the pro plan with an email and a first name, known as `{prefix}{i}`.
    async fn people(&self, prefix: &str, n: usize) {
        let batch: Vec<Value> = (0..n)
            .map(|i| {
                json!({"type": "identify", "userId": format!("{prefix}{i}"),
                       "traits": {"plan": "pro", "email": format!("{prefix}{i}@example.com"), "first_name": format!("Ada{i}")}})
            })
            .collect();
        for chunk in batch.chunks(100) {
            let (status, body) = self.app.track("batch", Some(&self.key), &json!({"batch": chunk})).await;
            assert_eq!(status, 200, "{body}");
        }
        self.app.process_events().await;
    }

    async fn profile_of(&self, user: &str) -> String {
        let found = self
            .gql(
                "query($w: ID!, $v: String!) { profiles(workspaceId: $w, first: 2,
                   filter: {identifier: {kind: \"user_id\", value: $v}}) { edges { node { id } } } }",
                json!({"w": self.workspace, "v": user}),
            )
            .await;
        let ids = found.node_strings("profiles", "id");
        assert_eq!(ids.len(), 1, "{user}: {:?}", found.body);
        ids[0].clone()
    }

    async fn consent(&self, profile: &str, channel: &str, granted: bool) {
        let answer = self
            .gql(
                "mutation($w: ID!, $p: ID!, $c: String!, $g: Boolean!) { setConsent(workspaceId: $w, profileId: $p,
                   input: {purpose: \"marketing\", channel: $c, granted: $g, source: \"form\"}) { granted } }",
                json!({"w": self.workspace, "p": profile, "c": channel, "g": granted}),
            )
            .await;
        assert_eq!(answer.data("setConsent.granted"), &json!(granted), "{:?}", answer.body);
    }

    /// Gives `{prefix}0` … `{prefix}{n-1}` (already tracked) consent to marketing on `channel`;
    /// returns their profile ids in that order.
    async fn consent_all(&self, prefix: &str, n: usize, channel: &str) -> Vec<String> {
        let mut profiles = Vec::with_capacity(n);
        for i in 0..n {
            let profile = self.profile_of(&format!("{prefix}{i}")).await;
            self.consent(&profile, channel, true).await;
            profiles.push(profile);
        }
        profiles
    }

    /// A person's touchpoints, newest first (up to 50).
    async fn touchpoints_of(&self, profile: &str) -> Vec<Value> {
        let answer = self
            .gql(
                "query($w: ID!, $p: ID!) { touchpoints(workspaceId: $w, profileId: $p, first: 50) { edges { node {
                   profileId kind channel channelId journeyId step variant device at } } } }",
                json!({"w": self.workspace, "p": profile}),
            )
            .await;
        assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
        answer.data("touchpoints.edges").as_array().unwrap().iter().map(|e| e["node"].clone()).collect()
    }

    async fn report(&self, journey: &str) -> Value {
        let answer = self
            .gql(
                "query($w: ID!, $id: ID!) { journeyReport(workspaceId: $w, id: $id) {
                   byStatus { key count } byStep { key count } byVariant { key count } holdout
                   sends { key count } blocks { key count } } }",
                json!({"w": self.workspace, "id": journey}),
            )
            .await;
        assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
        answer.data("journeyReport").clone()
    }

    /// Why people did not receive messages: profile id → reasons.
    async fn blocks(&self, journey: &str) -> BTreeMap<String, Vec<String>> {
        let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut after = Value::Null;
        loop {
            let page = self
                .gql(
                    "query($w: ID!, $j: ID, $after: String) { sendBlocks(workspaceId: $w, journeyId: $j, first: 100,
                       after: $after) { edges { node { profileId reason } } pageInfo { hasNextPage endCursor } } }",
                    json!({"w": self.workspace, "j": journey, "after": after}),
                )
                .await;
            for edge in page.data("sendBlocks.edges").as_array().unwrap() {
                let node = &edge["node"];
                let profile = node["profileId"].as_str().unwrap().to_owned();
                blocks.entry(profile).or_default().push(node["reason"].as_str().unwrap().to_owned());
            }
            if page.data("sendBlocks.pageInfo.hasNextPage") != &json!(true) {
                return blocks;
            }
            after = page.data("sendBlocks.pageInfo.endCursor").clone();
        }
    }
}

fn count(report: &Value, list: &str, key: &str) -> i64 {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .map_or(0, |c| c["count"].as_i64().unwrap())
}

fn email_template() -> Value {
    json!({"variants": [{"kind": "email", "subject": "Hello {{ profile.first_name }}",
                         "body": "Dear {{ profile.first_name }}, welcome to {{ journey.name }}."}]})
}

fn verify(received: &Received, secret: &str) {
    let signature = received.signature.as_deref().expect("signed");
    let (t, v1) = signature.split_once(",v1=").unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    assert_eq!(
        hex::encode(mac.finalize().into_bytes()),
        v1,
        "the signature verifies with the channel's secret"
    );
}

async fn a_journey_holds_out_splits_and_sends_signed_webhooks_once(backend: Backend) {
    let setup = setup(backend).await;
    let receiver = Receiver::start().await;
    // Someone outside the segment, so the workspace has the trait the template uses.
    let (status, _) = setup
        .app
        .track(
            "identify",
            Some(&setup.key),
            &json!({"userId": "seed", "traits": {"plan": "free", "first_name": "Seed"}}),
        )
        .await;
    assert_eq!(status, 200);
    setup.app.process_events().await;
    let (channel, secret) = setup.webhook_channel("Newsletter", "email", &receiver).await;
    let content = setup.content("Welcome", email_template()).await;
    let journey = setup
        .journey(
            "Welcome series",
            json!({
                "entry": {"trigger": {"type": "segment_entered", "segment": setup.segment}, "next": "control"},
                "steps": [
                    {"id": "control", "type": "holdout", "percent": 20, "next": "ab"},
                    {"id": "ab", "type": "split", "variants": [
                        {"name": "A", "weight": 50, "next": "send-a"},
                        {"name": "B", "weight": 50, "next": "send-b"}]},
                    {"id": "send-a", "type": "send", "channel": channel, "content": content, "next": "done"},
                    {"id": "send-b", "type": "send", "channel": channel, "content": content, "next": "done"},
                    {"id": "done", "type": "exit"}
                ]
            }),
        )
        .await;
    let published = setup.publish(&journey).await;
    assert_eq!(published.data("publishJourney.status"), &json!("ACTIVE"), "{:?}", published.body);
    assert_eq!(published.data("publishJourney.version"), &json!(1));

    // 200 people enter the segment; 150 of them agreed to email.
    setup.people("p", 200).await;
    let consented: BTreeSet<String> = setup.consent_all("p", 150, "email").await.into_iter().collect();
    let (executed, delivered) = setup.app.run_journeys().await;
    assert_eq!(executed.enrolled, 200);
    assert_eq!(delivered.sent, executed.sends);

    let report = setup.report(&journey).await;
    let holdout = report["holdout"].as_i64().unwrap();
    // 20% of 200 (sd 5.7): well within ±23.
    assert!((17..=63).contains(&holdout), "holdout {holdout}");
    let (a, b) = (count(&report, "byVariant", "A"), count(&report, "byVariant", "B"));
    assert_eq!(a + b + holdout, 200);
    // Each half of ~160 (sd ~6.3): within ±25 of the middle.
    assert!((a - b).abs() <= 50, "A {a}, B {b}");

    let blocks = setup.blocks(&journey).await;
    let held_out: BTreeSet<&String> =
        blocks.iter().filter(|(_, r)| r.contains(&"holdout".to_owned())).map(|(p, _)| p).collect();
    assert_eq!(held_out.len() as i64, holdout);
    let received = receiver.received();
    let keys: BTreeSet<String> = received.iter().map(|r| r.idempotency_key.clone().unwrap()).collect();
    assert_eq!(keys.len(), received.len(), "every send has its own idempotency key");
    let mut reached = BTreeSet::new();
    for request in &received {
        verify(request, &secret);
        let body = request.json();
        let profile = body["profile"]["id"].as_str().unwrap().to_owned();
        assert!(!held_out.contains(&profile), "the holdout never receives");
        assert!(consented.contains(&profile), "only people who agreed receive");
        assert_eq!(body["id"], json!(request.idempotency_key.clone().unwrap()));
        let subject = body["content"]["subject"].as_str().unwrap();
        assert!(subject.starts_with("Hello Ada"), "{subject}");
        assert!(body["content"]["body"].as_str().unwrap().ends_with("welcome to Welcome series."));
        assert!(body["profile"]["email"].as_str().unwrap().ends_with("@example.com"));
        reached.insert(profile);
    }
    let eligible = consented.iter().filter(|p| !held_out.contains(p)).count();
    assert_eq!(reached.len(), eligible);
    assert_eq!(received.len(), eligible);
    let no_consent = blocks.values().filter(|r| r.contains(&"no_consent".to_owned())).count();
    assert_eq!(no_consent, 200 - 150 - held_out.iter().filter(|p| !consented.contains(**p)).count());
    assert_eq!(count(&report, "byStatus", "completed") + count(&report, "byStatus", "exited"), 200);
    assert_eq!(count(&report, "sends", "sent") as usize, eligible);

    // Another round changes nothing: nobody enters twice, nothing is sent twice.
    let (again, delivered) = setup.app.run_journeys().await;
    assert_eq!((again.enrolled, again.sends, delivered.sent), (0, 0, 0));
    assert_eq!(receiver.received().len(), eligible);
}

async fn publishing_refuses_a_journey_with_problems_and_lists_them_all(backend: Backend) {
    let setup = setup(backend).await;
    let receiver = Receiver::start().await;
    setup.people("q", 1).await;
    let (channel, _) = setup.webhook_channel("Hooks", "sms", &receiver).await;
    let typo = setup
        .content("Typo", json!({"variants": [{"kind": "sms", "text": "Hi {{ profile.frist_name }}"}]}))
        .await;
    let email_only = setup.content("Email only", email_template()).await;
    let journey = setup
        .journey(
            "Broken",
            json!({
                "entry": {"trigger": {"type": "segment_entered", "segment": setup.segment}, "next": "one"},
                "steps": [
                    {"id": "one", "type": "send", "channel": channel, "content": typo, "next": "two"},
                    {"id": "two", "type": "send", "channel": channel, "content": email_only, "next": "end"},
                    {"id": "lost", "type": "wait", "seconds": 60, "next": "end"},
                    {"id": "end", "type": "exit"}
                ]
            }),
        )
        .await;
    let refused = setup.publish(&journey).await;
    refused.expect_code("BAD_USER_INPUT");
    let problems = refused.body["errors"][0]["extensions"]["problems"].as_array().unwrap().clone();
    let codes: BTreeSet<&str> = problems.iter().map(|p| p["code"].as_str().unwrap()).collect();
    assert!(codes.contains("orphan_step"), "{problems:?}");
    assert!(codes.contains("unknown_variable"), "{problems:?}");
    assert!(codes.contains("missing_variant"), "{problems:?}");
    let listed = setup
        .gql("query($w: ID!, $id: ID!) { journeyProblems(workspaceId: $w, id: $id) { code location message } }",
             json!({"w": setup.workspace, "id": journey}))
        .await;
    assert_eq!(listed.data("journeyProblems").as_array().unwrap().len(), problems.len());
    let journey_now = setup
        .gql(
            "query($w: ID!, $id: ID!) { journey(workspaceId: $w, id: $id) { status version } }",
            json!({"w": setup.workspace, "id": journey}),
        )
        .await;
    assert_eq!(journey_now.data("journey"), &json!({"status": "DRAFT", "version": 0}));
}

/// A journey on the segment that sends `content` on `channel`, optionally after a wait; the
/// workspace gets a seed profile with `first_name` first so templates check out.
fn send_journey(segment: &str, steps: Value) -> Value {
    json!({"entry": {"trigger": {"type": "segment_entered", "segment": segment}, "next": steps[0]["id"]},
           "steps": steps})
}

/// Send on `channel`, wait a second, send again: what happens to the second send shows what
/// the first one's feedback changed.
fn two_mails(segment: &str, channel: &str, content: &str) -> Value {
    send_journey(
        segment,
        json!([
            {"id": "first", "type": "send", "channel": channel, "content": content, "next": "pause"},
            {"id": "pause", "type": "wait", "seconds": 1, "next": "second"},
            {"id": "second", "type": "send", "channel": channel, "content": content, "next": "end"},
            {"id": "end", "type": "exit"}]),
    )
}

async fn seed(setup: &Setup) {
    let (status, _) = setup
        .app
        .track(
            "identify",
            Some(&setup.key),
            &json!({"userId": "seed", "traits": {"plan": "free", "first_name": "Seed"}}),
        )
        .await;
    assert_eq!(status, 200);
    setup.app.process_events().await;
}

async fn set_settings(setup: &Setup, settings: Value) {
    let answer = setup
        .gql(
            "mutation($w: ID!, $s: SendSettingsInput!) { setSendSettings(workspaceId: $w, settings: $s) { timezone } }",
            json!({"w": setup.workspace, "s": settings}),
        )
        .await;
    assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
}

async fn caps_hold_across_two_concurrent_journeys(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Promo", email_template()).await;
    set_settings(
        &setup,
        json!({"timezone": "Europe/Paris", "frequencyCaps": [
        {"channel": "email", "windowSeconds": 86400, "maxSends": 1}]}),
    )
    .await;
    for name in ["Spring sale", "Loyalty"] {
        let journey = setup
            .journey(
                name,
                send_journey(
                    &setup.segment,
                    json!([
                {"id": "send", "type": "send", "channel": channel, "content": content, "next": "end"},
                {"id": "end", "type": "exit"}]),
                ),
            )
            .await;
        setup.publish(&journey).await;
    }
    let people = 300;
    setup.people("c", people).await;
    setup.consent_all("c", people, "*").await;
    setup.app.process_events_and_segments().await;
    // Two executors at once: each takes its own batch of the 600 enrollments, so one person's
    // two enrollments are often decided by different workers at the same moment.
    let (first, second) = tokio::join!(setup.app.campaigns.execute_due(), setup.app.campaigns.execute_due());
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.enrolled + second.enrolled, 2 * people);
    setup.app.campaigns.execute_due().await.unwrap();
    setup.app.campaigns.deliver_due().await.unwrap();
    let mut per_person: BTreeMap<String, usize> = BTreeMap::new();
    for request in receiver.received() {
        *per_person.entry(request.json()["profile"]["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(per_person.len(), people, "everyone receives one message");
    assert!(per_person.values().all(|n| *n == 1), "the cap holds across journeys: {per_person:?}");
    let capped = setup
        .gql(
            "query($w: ID!) { sendBlocks(workspaceId: $w, first: 100) { edges { node { reason } } } }",
            json!({"w": setup.workspace}),
        )
        .await;
    let reasons: BTreeSet<String> = capped
        .data("sendBlocks.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons, BTreeSet::from(["frequency_cap".to_owned()]));
}

async fn quiet_hours_defer_and_consent_is_checked_at_send_time(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Texts", "sms", &receiver).await;
    let content = setup
        .content("Text", json!({"variants": [{"kind": "sms", "text": "Hi {{ profile.first_name }}"}]}))
        .await;
    let journey = setup
        .journey(
            "Two texts",
            send_journey(
                &setup.segment,
                json!([
            {"id": "first", "type": "send", "channel": channel, "content": content, "next": "pause"},
            {"id": "pause", "type": "wait", "seconds": 1, "next": "second"},
            {"id": "second", "type": "send", "channel": channel, "content": content, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    setup.publish(&journey).await;
    setup.people("t", 2).await;
    let (t0, t1) = (setup.profile_of("t0").await, setup.profile_of("t1").await);
    for profile in [&t0, &t1] {
        setup.consent(profile, "sms", true).await;
    }
    // Texts need a phone. Quiet hours are around now for t1, who lives eleven hours ahead of UTC.
    let batch = json!({"batch": [
        {"type": "identify", "userId": "t0", "traits": {"phone": "+33 6 12 34 56 70"}},
        {"type": "identify", "userId": "t1", "traits": {"phone": "+33 6 12 34 56 71", "timezone": "Pacific/Noumea"}}]});
    let (status, _) = setup.app.track("batch", Some(&setup.key), &batch).await;
    assert_eq!(status, 200);
    let noumea = chrono::Utc::now() + chrono::Duration::hours(11);
    let start = (noumea - chrono::Duration::hours(1)).format("%H:%M").to_string();
    let end = (noumea + chrono::Duration::hours(1)).format("%H:%M").to_string();
    set_settings(
        &setup,
        json!({"timezone": "UTC", "quietHoursStart": start, "quietHoursEnd": end, "frequencyCaps": []}),
    )
    .await;
    let utc_now = chrono::Utc::now().format("%H:%M").to_string();
    assert!(
        !(start <= utc_now && utc_now < end) || start > end,
        "the window must not cover UTC now for this test"
    );

    setup.app.run_journeys().await;
    let received = receiver.received();
    assert_eq!(received.len(), 1, "t0 receives, t1 waits for the morning");
    assert_eq!(received[0].json()["profile"]["id"], json!(t0));
    assert_eq!(setup.blocks(&journey).await.get(&t1).cloned(), Some(vec!["quiet_hours".to_owned()]));

    // t0 withdraws consent between the two texts: the second is not sent.
    setup.consent(&t0, "sms", false).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    setup.app.run_journeys().await;
    assert_eq!(receiver.received().len(), 1, "no text after consent is withdrawn");
    assert!(setup.blocks(&journey).await[&t0].contains(&"consent_withdrawn".to_owned()));
    let report = setup.report(&journey).await;
    assert_eq!(count(&report, "byStep", "first"), 1, "t1 is still waiting at the first text");
}

async fn people_stay_on_the_version_they_entered(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Push", "push", &receiver).await;
    let v1 = setup.content("V1", json!({"variants": [{"kind": "push", "title": "V1", "body": "one"}]})).await;
    let v2 = setup.content("V2", json!({"variants": [{"kind": "push", "title": "V2", "body": "two"}]})).await;
    let journey = setup
        .journey(
            "Versioned",
            send_journey(
                &setup.segment,
                json!([
            {"id": "pause", "type": "wait", "seconds": 1, "next": "send-v1"},
            {"id": "send-v1", "type": "send", "channel": channel, "content": v1, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    setup.publish(&journey).await;
    setup.people("early", 3).await;
    setup.app.run_journeys().await;
    let updated = setup
        .gql("mutation($w: ID!, $id: ID!, $g: JSON!) { updateJourney(input: {workspaceId: $w, id: $id, graph: $g}) { version } }",
             json!({"w": setup.workspace, "id": journey, "g": send_journey(&setup.segment, json!([
                {"id": "send-v2", "type": "send", "channel": channel, "content": v2, "next": "end"},
                {"id": "end", "type": "exit"}]))}))
        .await;
    assert_eq!(updated.data("updateJourney.version"), &json!(1), "a draft change is not a version");
    assert_eq!(setup.publish(&journey).await.data("publishJourney.version"), &json!(2));
    setup.people("late", 2).await;
    setup.app.run_journeys().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    setup.app.run_journeys().await;
    let mut titles: BTreeMap<String, usize> = BTreeMap::new();
    for request in receiver.received() {
        *titles.entry(request.json()["content"]["title"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    // Nobody has consent for push: nothing is sent, and the blocks say which version ran.
    assert!(titles.is_empty());
    let blocks = setup
        .gql(
            "query($w: ID!) { sendBlocks(workspaceId: $w, first: 100) { edges { node { step reason } } } }",
            json!({"w": setup.workspace}),
        )
        .await;
    let mut steps: BTreeMap<String, usize> = BTreeMap::new();
    for edge in blocks.data("sendBlocks.edges").as_array().unwrap() {
        assert_eq!(edge["node"]["reason"], json!("no_consent"));
        *steps.entry(edge["node"]["step"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert_eq!(steps, BTreeMap::from([("send-v1".to_owned(), 3), ("send-v2".to_owned(), 2)]));
    let versions = setup
        .gql(
            "query($w: ID!, $id: ID!) { journeyVersions(workspaceId: $w, id: $id) { version graph } }",
            json!({"w": setup.workspace, "id": journey}),
        )
        .await;
    let graphs = versions.data("journeyVersions").as_array().unwrap();
    assert_eq!(graphs.len(), 2);
    assert_eq!(graphs[0]["graph"]["steps"][1]["id"], json!("send-v1"), "version 1 is unchanged");
}

async fn failed_deliveries_are_retried_then_dead_lettered_with_the_reason(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(&[503, 400]);
    let (channel, _) = setup.webhook_channel("Flaky", "email", &receiver).await;
    let content = setup.content("Mail", email_template()).await;
    let journey = setup
        .journey(
            "Flaky",
            send_journey(
                &setup.segment,
                json!([
            {"id": "send", "type": "send", "channel": channel, "content": content, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    setup.publish(&journey).await;
    setup.people("f", 2).await;
    setup.consent_all("f", 2, "email").await;
    let (executed, delivered) = setup.app.run_journeys().await;
    assert_eq!(executed.sends, 2);
    // One answer was 503 (retried later), the other 400 (never retried).
    assert_eq!((delivered.sent, delivered.retried, delivered.dead), (0, 1, 1));
    let dead = setup
        .gql("query($w: ID!) { deadLetters(workspaceId: $w, first: 10) { edges { node { attempts lastError } } } }",
             json!({"w": setup.workspace}))
        .await;
    let letters = dead.data("deadLetters.edges").as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["node"]["attempts"], json!(1));
    assert!(letters[0]["node"]["lastError"].as_str().unwrap().contains("400"));
    let report = setup.report(&journey).await;
    assert_eq!((count(&report, "sends", "pending"), count(&report, "sends", "dead")), (1, 1));
    // The retry is not due yet: nothing more is sent now.
    assert_eq!(setup.app.campaigns.deliver_due().await.unwrap().sent, 0);
    assert_eq!(receiver.received().len(), 2);
    // Archiving the journey cancels the send still waiting for its retry.
    let archived = setup
        .gql("mutation($w: ID!, $id: ID!) { setJourneyStatus(workspaceId: $w, id: $id, status: ARCHIVED) { status } }",
             json!({"w": setup.workspace, "id": journey}))
        .await;
    assert_eq!(archived.data("setJourneyStatus.status"), &json!("ARCHIVED"));
    let report = setup.report(&journey).await;
    assert_eq!((count(&report, "sends", "pending"), count(&report, "sends", "cancelled")), (0, 1));
}

async fn a_killed_delivery_worker_only_retries_in_flight_sends_under_their_keys(backend: Backend) {
    let setup = setup_with(backend, |settings| settings.delivery_lease_seconds = 1).await;
    seed(&setup).await;
    let receiver = Receiver::start_with_delay(std::time::Duration::from_millis(300)).await;
    let (channel, _) = setup.webhook_channel("Slow", "email", &receiver).await;
    let content = setup.content("Mail", email_template()).await;
    let journey = setup
        .journey(
            "Slow",
            send_journey(
                &setup.segment,
                json!([
            {"id": "send", "type": "send", "channel": channel, "content": content, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    setup.publish(&journey).await;
    let people = 40;
    setup.people("k", people).await;
    setup.consent_all("k", people, "email").await;
    setup.app.process_events_and_segments().await;
    assert_eq!(setup.app.campaigns.execute_due().await.unwrap().sends, people);

    // A delivery worker dies while its first sends are in flight.
    let campaigns = setup.app.campaigns.clone();
    let worker = tokio::spawn(async move { campaigns.deliver_due().await });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    worker.abort();
    assert!(worker.await.unwrap_err().is_cancelled());
    let in_flight: BTreeSet<String> =
        receiver.received().iter().map(|r| r.idempotency_key.clone().unwrap()).collect();
    assert!(!in_flight.is_empty(), "the worker died mid-delivery");

    // Another worker finishes the job; what was in flight comes back after the lease.
    let mut rounds = 0;
    loop {
        let round = setup.app.campaigns.deliver_due().await.unwrap();
        let report = setup.report(&journey).await;
        if count(&report, "sends", "sent") == people as i64 {
            break;
        }
        rounds += 1;
        assert!(rounds < 20, "deliveries never complete: {report}");
        if round.sent == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
    let received = receiver.received();
    let mut per_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in &received {
        per_key.entry(request.idempotency_key.clone().unwrap()).or_default().push(request.body.clone());
    }
    assert_eq!(per_key.len(), people, "one key per send decided");
    for (key, bodies) in &per_key {
        if bodies.len() > 1 {
            assert!(in_flight.contains(key), "only a send in flight when the worker died is asked again");
            assert_eq!(bodies.len(), 2);
            assert!(bodies.iter().all(|b| b == &bodies[0]), "a retry is the same message under the same key");
        }
    }
    let report = setup.report(&journey).await;
    assert_eq!(count(&report, "sends", "sent"), people as i64);
}

async fn branches_update_traits_and_wait_for_the_time_of_day(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Mail", email_template()).await;
    let welcomed = setup
        .gql(
            "mutation($w: ID!) { createSegment(input: {workspaceId: $w, name: \"Welcomed VIPs\",
                definition: {text: \"trait stage = \\\"vip-welcomed\\\"\"}}) { id } }",
            json!({"w": setup.workspace}),
        )
        .await
        .str("createSegment.id");
    // A time of day at least an hour away, whatever the time now.
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).format("%H:00").to_string();
    let journey = setup
        .journey("VIP welcome", send_journey(&setup.segment, json!([
            {"id": "vip", "type": "branch", "condition": "trait vip = true", "then": "tag", "else": "end"},
            {"id": "tag", "type": "update_trait", "name": "stage", "value": "vip-welcomed", "next": "morning"},
            {"id": "morning", "type": "wait_until", "time": later, "next": "send"},
            {"id": "send", "type": "send", "channel": channel, "content": content, "next": "end"},
            {"id": "end", "type": "exit"}])))
        .await;
    setup.publish(&journey).await;
    let batch: Vec<Value> = (0..4)
        .map(|i| json!({"type": "identify", "userId": format!("v{i}"), "traits": {"plan": "pro", "vip": i % 2 == 0, "first_name": "V"}}))
        .collect();
    let (status, _) = setup.app.track("batch", Some(&setup.key), &json!({"batch": batch})).await;
    assert_eq!(status, 200);
    let (executed, _) = setup.app.run_journeys().await;
    assert_eq!(executed.enrolled, 4);
    let report = setup.report(&journey).await;
    assert_eq!(count(&report, "byStatus", "completed"), 2, "{report}");
    assert_eq!(count(&report, "byStep", "send"), 2, "the VIPs wait for the morning: {report}");
    assert!(receiver.received().is_empty());
    for (user, vip) in [("v0", true), ("v1", false), ("v2", true), ("v3", false)] {
        let profile = setup.profile_of(user).await;
        let traits = setup
            .gql(
                "query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { traits } }",
                json!({"w": setup.workspace, "id": profile}),
            )
            .await;
        let stage = traits.data("profile.traits")["stage"].clone();
        assert_eq!(stage == json!("vip-welcomed"), vip, "{user}: {stage}");
    }
    // The journey's trait change reaches real-time segments like any other change.
    setup.app.process_events_and_segments().await;
    let members = setup
        .gql(
            "query($w: ID!, $id: ID!) { segment(workspaceId: $w, id: $id) { size } }",
            json!({"w": setup.workspace, "id": welcomed}),
        )
        .await;
    assert_eq!(members.data("segment.size"), &json!(2));
}

async fn email_goes_through_an_smtp_relay(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let sink = passerelle_tests::smtp_sink::SmtpSink::start().await;
    let channel = setup
        .gql(
            "mutation($w: ID!, $d: JSON!) { createChannel(input: {workspaceId: $w, name: \"Relay\", kind: \"email\",
               delivery: $d}) { channel { id delivery } signingSecret } }",
            json!({"w": setup.workspace, "d": {"adapter": "smtp", "host": "127.0.0.1", "port": sink.addr.port(),
                   "from": "news@shop.example", "security": "none",
                   "credentials": {"username": "relay-user", "password": "relay-secret"}}}),
        )
        .await;
    assert_eq!(channel.data("createChannel.signingSecret"), &Value::Null);
    // The password is used, never shown again.
    assert_eq!(
        channel.data("createChannel.channel.delivery.credentials"),
        &json!({"username": "relay-user", "password": null}),
        "{:?}",
        channel.body
    );
    assert!(!channel.body.to_string().contains("relay-secret"));
    let channel_id = channel.str("createChannel.channel.id");
    let content = setup
        .content(
            "Newsletter",
            json!({"variants": [{"kind": "email", "subject": "News for {{ profile.first_name }}",
            "body": "Hello {{ profile.first_name }}", "html": "<p>Hello {{ profile.first_name }}</p>"}]}),
        )
        .await;
    let journey = setup
        .journey(
            "Mail",
            send_journey(
                &setup.segment,
                json!([
            {"id": "send", "type": "send", "channel": channel_id, "content": content, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    setup.publish(&journey).await;
    setup.people("m", 3).await;
    setup.consent_all("m", 3, "email").await;
    let (_, delivered) = setup.app.run_journeys().await;
    assert_eq!(delivered.sent, 3);
    let mails = sink.mails();
    assert_eq!(mails.len(), 3);
    let recipients: BTreeSet<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    assert_eq!(recipients, (0..3).map(|i| format!("m{i}@example.com")).collect());
    for mail in &mails {
        assert_eq!(mail.from, "news@shop.example");
        assert_eq!(
            mail.authenticated.as_deref(),
            Some("relay-user:relay-secret"),
            "AUTH PLAIN with the channel's login"
        );
        assert!(mail.header("Subject").unwrap().starts_with("News for Ada"), "{}", mail.data);
        assert!(mail.header("Message-ID").unwrap().ends_with("@passerelle>"));
        assert!(mail.data.contains("<p>Hello Ada"), "the HTML alternative is there");
    }
}

async fn provider_feedback_becomes_touchpoints_and_an_unsubscribe_stops_sends(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Mail", email_template()).await;
    let journey = setup.journey("Two mails", two_mails(&setup.segment, &channel, &content)).await;
    setup.publish(&journey).await;
    setup.people("u", 1).await;
    let person = setup.profile_of("u0").await;
    setup.consent(&person, "email", true).await;
    setup.app.run_journeys().await;
    let key = receiver.received()[0].idempotency_key.clone().unwrap();
    let feedback = |kind: &'static str, key: String| {
        let setup = &setup;
        async move {
            setup
                .gql(
                    "mutation($w: ID!, $k: String!, $kind: SendFeedback!) {
                        recordSendFeedback(workspaceId: $w, key: $k, kind: $kind, device: \"ios\") }",
                    json!({"w": setup.workspace, "k": key, "kind": kind}),
                )
                .await
        }
    };
    assert_eq!(feedback("OPEN", key.clone()).await.data("recordSendFeedback"), &json!(person));
    assert_eq!(feedback("UNSUBSCRIBE", key.clone()).await.data("recordSendFeedback"), &json!(person));
    feedback("CLICK", "not-a-key".into()).await.expect_code("NOT_FOUND");
    // Each became a touchpoint with the send's channel, journey and step, and the device.
    let touchpoints = setup.touchpoints_of(&person).await;
    let kinds: BTreeSet<&str> = touchpoints.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert!(kinds.is_superset(&BTreeSet::from(["send", "open", "unsubscribe"])), "{touchpoints:?}");
    for touchpoint in &touchpoints {
        assert_eq!(touchpoint["channel"], "email");
        assert_eq!(touchpoint["journeyId"], json!(journey));
        assert_eq!(touchpoint["step"], "first");
        if matches!(touchpoint["kind"].as_str(), Some("open" | "unsubscribe")) {
            assert_eq!(touchpoint["device"], "ios");
        }
    }
    let consents = setup
        .gql("query($w: ID!, $id: ID!) { profile(workspaceId: $w, id: $id) { consents { channel granted source } } }",
             json!({"w": setup.workspace, "id": person}))
        .await;
    assert!(
        consents.data("profile.consents").as_array().unwrap().contains(&json!(
        {"channel": "email", "granted": false, "source": "unsubscribe"})),
        "{:?}",
        consents.body
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    setup.app.run_journeys().await;
    assert_eq!(receiver.received().len(), 1, "nothing after the unsubscribe");
    assert_eq!(setup.blocks(&journey).await[&person], vec!["consent_withdrawn".to_owned()]);
}

async fn events_start_journeys_end_waits_and_reach_goals(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let thanks = setup
        .content(
            "Thanks",
            json!({"variants": [{"kind": "email", "subject": "Thanks", "body": "for your order"}]}),
        )
        .await;
    let reminder = setup
        .content(
            "Reminder",
            json!({"variants": [{"kind": "email", "subject": "Reminder", "body": "your cart"}]}),
        )
        .await;
    let journey = setup
        .journey(
            "Abandoned cart",
            json!({
            "entry": {"trigger": {"type": "event_performed", "event": "Cart Created"}, "next": "order"},
            "steps": [
                {"id": "order", "type": "wait_for_event", "event": "Order Completed", "timeout_seconds": 1,
                 "next": "thank", "timeout_next": "remind"},
                {"id": "thank", "type": "send", "channel": channel, "content": thanks, "next": "end"},
                {"id": "remind", "type": "send", "channel": channel, "content": reminder, "next": "later"},
                {"id": "later", "type": "wait", "seconds": 3600, "next": "end"},
                {"id": "bought", "type": "goal", "event": "Subscription Started"},
                {"id": "end", "type": "exit"}]}),
        )
        .await;
    let published = setup.publish(&journey).await;
    assert_eq!(published.data("publishJourney.status"), &json!("ACTIVE"), "{:?}", published.body);
    // A first round starts listening: events from before do not start journeys.
    setup.people("e", 3).await;
    setup.consent_all("e", 3, "email").await;
    setup.app.run_journeys().await;
    let track = |user: &str, event: &str| json!({"type": "track", "userId": user, "event": event});
    let send = |batch: Vec<Value>| {
        let setup = &setup;
        async move {
            let (status, body) = setup.app.track("batch", Some(&setup.key), &json!({"batch": batch})).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    send(vec![track("e0", "Cart Created"), track("e1", "Cart Created"), track("e2", "Cart Created")]).await;
    let (executed, _) = setup.app.run_journeys().await;
    assert_eq!(executed.enrolled, 3, "each cart starts the journey once");
    // e0 orders: on to the thanks; e1 does nothing: the reminder after the timeout; e2 reaches
    // the goal while waiting.
    send(vec![track("e0", "Order Completed"), track("e2", "Subscription Started")]).await;
    setup.app.run_journeys().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    setup.app.run_journeys().await;
    setup.app.run_journeys().await;
    let mut subjects: BTreeMap<String, String> = BTreeMap::new();
    for request in receiver.received() {
        let body = request.json();
        subjects.insert(
            body["profile"]["email"].as_str().unwrap().to_owned(),
            body["content"]["subject"].as_str().unwrap().to_owned(),
        );
    }
    assert_eq!(
        subjects,
        BTreeMap::from([
            ("e0@example.com".to_owned(), "Thanks".to_owned()),
            ("e1@example.com".to_owned(), "Reminder".to_owned()),
        ])
    );
    let report = setup.report(&journey).await;
    assert_eq!(count(&report, "byStatus", "completed"), 2, "{report}");
    assert_eq!(count(&report, "byStep", "end"), 1, "e1 waits an hour before the end: {report}");
    // The same events read again (the cursor looks back a few seconds) start nothing twice.
    let (again, _) = setup.app.run_journeys().await;
    assert_eq!(again.enrolled, 0);
}

async fn a_simulation_runs_the_draft_on_real_people_and_writes_nothing(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Mail", email_template()).await;
    set_settings(
        &setup,
        json!({"timezone": "UTC", "frequencyCaps": [
        {"channel": "email", "windowSeconds": 86400, "maxSends": 1}]}),
    )
    .await;
    let journey = setup
        .journey(
            "Simulated",
            send_journey(
                &setup.segment,
                json!([
            {"id": "control", "type": "holdout", "percent": 20, "next": "vip"},
            {"id": "vip", "type": "branch", "condition": "trait vip = true", "then": "first", "else": "end"},
            {"id": "first", "type": "send", "channel": channel, "content": content, "next": "pause"},
            {"id": "pause", "type": "wait", "seconds": 3600, "next": "again"},
            {"id": "again", "type": "send", "channel": channel, "content": content, "next": "later"},
            {"id": "later", "type": "wait", "seconds": 864000, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    // 30 people in the segment: the even ones VIPs, the first 20 with consent.
    let batch: Vec<Value> = (0..30)
        .map(|i| json!({"type": "identify", "userId": format!("s{i}"),
                        "traits": {"plan": "pro", "vip": i % 2 == 0, "first_name": "S", "email": format!("s{i}@example.com")}}))
        .collect();
    let (status, _) = setup.app.track("batch", Some(&setup.key), &json!({"batch": batch})).await;
    assert_eq!(status, 200);
    setup.app.process_events_and_segments().await;
    setup.consent_all("s", 20, "email").await;
    // The draft, never published.
    let answer = setup
        .gql("query($w: ID!, $id: ID!) { journeySimulation(workspaceId: $w, id: $id, sample: 100, horizonDays: 7) {
                people steps { key count } branches { step then else } holdout sends { key count }
                blocks { reason count examples } completed exited waiting { key count } } }",
             json!({"w": setup.workspace, "id": journey}))
        .await;
    assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
    let sim = answer.data("journeySimulation").clone();
    assert_eq!(sim["people"], json!(30));
    let holdout = sim["holdout"].as_i64().unwrap();
    let branch = &sim["branches"][0];
    assert_eq!(branch["step"], json!("vip"));
    let (vips, others) = (branch["then"].as_i64().unwrap(), branch["else"].as_i64().unwrap());
    assert_eq!(vips + others + holdout, 30);
    let reasons: BTreeMap<String, i64> = sim["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["reason"].as_str().unwrap().to_owned(), b["count"].as_i64().unwrap()))
        .collect();
    let first_sends = sim["sends"][0]["count"].as_i64().unwrap();
    // Each VIP with consent gets the first mail; the second, an hour later, is capped (1 a day).
    assert_eq!(reasons.get("frequency_cap").copied().unwrap_or(0), first_sends);
    let no_consent = reasons.get("no_consent").copied().unwrap_or(0);
    // VIPs without consent are blocked at both mails.
    assert_eq!(no_consent % 2, 0);
    assert_eq!(first_sends + no_consent / 2, vips);
    assert_eq!(reasons.get("holdout").copied().unwrap_or(0), holdout);
    // The ten-day wait outlasts the week: VIPs are still waiting at its end.
    let waiting: i64 = sim["waiting"].as_array().unwrap().iter().map(|w| w["count"].as_i64().unwrap()).sum();
    assert_eq!(waiting, vips);
    assert_eq!(sim["completed"].as_i64().unwrap(), others);
    assert_eq!(sim["exited"].as_i64().unwrap(), holdout);
    for example in
        sim["blocks"].as_array().unwrap().iter().flat_map(|b| b["examples"].as_array().unwrap().clone())
    {
        assert!(example.as_str().is_some());
    }
    // Nothing was sent or written.
    assert!(receiver.received().is_empty());
    let report = setup.report(&journey).await;
    assert_eq!(report["byStatus"], json!([]));
    assert_eq!(report["sends"], json!([]));
    assert_eq!(report["blocks"], json!([]));
}

async fn a_decision_channel_shows_the_offer_a_journey_chose(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let site = setup
        .gql(
            "mutation($w: ID!) { createChannel(input: {workspaceId: $w, name: \"Website\", kind: \"web\",
                delivery: {adapter: \"decision\"}}) { channel { id mode } signingSecret } }",
            json!({"w": setup.workspace}),
        )
        .await;
    assert_eq!(site.data("createChannel.channel.mode"), &json!("decision"));
    let channel = site.str("createChannel.channel.id");
    let banner = setup
        .content(
            "Banner",
            json!({"variants": [{"kind": "web", "html": "<b>Welcome back, {{ profile.first_name }}</b>"}]}),
        )
        .await;
    let journey = setup
        .journey(
            "Homepage",
            send_journey(
                &setup.segment,
                json!([
            {"id": "offer", "type": "send", "channel": channel, "content": banner, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    let published = setup.publish(&journey).await;
    assert_eq!(published.data("publishJourney.status"), &json!("ACTIVE"), "{:?}", published.body);
    setup.people("d", 2).await;
    let (d0, d1) = (setup.profile_of("d0").await, setup.profile_of("d1").await);
    setup.consent(&d0, "web", true).await;
    setup.app.run_journeys().await;
    let decide = |profile: String| {
        let setup = &setup;
        let channel = channel.clone();
        async move {
            setup
                .gql("mutation($w: ID!, $c: ID!, $p: ID!) { decide(workspaceId: $w, channelId: $c, profileId: $p, device: \"desktop\") {
                        journeyId step content } }",
                     json!({"w": setup.workspace, "c": channel, "p": profile}))
                .await
        }
    };
    let shown = decide(d0.clone()).await;
    assert_eq!(
        shown.data("decide.content"),
        &json!({"html": "<b>Welcome back, Ada0</b>"}),
        "{:?}",
        shown.body
    );
    assert_eq!(shown.data("decide.journeyId"), &json!(journey));
    // No consent for the website: the default is shown, and why is recorded.
    assert_eq!(decide(d1.clone()).await.data("decide"), &Value::Null);
    assert_eq!(setup.blocks(&journey).await[&d1], vec!["no_consent".to_owned()]);
    // Consent withdrawn later: checked again when the site asks.
    setup.consent(&d0, "web", false).await;
    assert_eq!(decide(d0.clone()).await.data("decide"), &Value::Null);
    // Not a decision channel: a clear error.
    let receiver = Receiver::start().await;
    let (hooks, _) = setup.webhook_channel("Hooks", "email", &receiver).await;
    let wrong = setup
        .gql("mutation($w: ID!, $c: ID!, $p: ID!) { decide(workspaceId: $w, channelId: $c, profileId: $p) { step } }",
             json!({"w": setup.workspace, "c": hooks, "p": d0}))
        .await;
    wrong.expect_code("BAD_USER_INPUT");
}

async fn an_audience_channel_gets_the_segment_as_a_file_of_the_contactable(backend: Backend) {
    let setup = setup(backend).await;
    let social = setup
        .gql("mutation($w: ID!) { createChannel(input: {workspaceId: $w, name: \"Meta\", kind: \"social\",
                delivery: {adapter: \"audience_file\", directory: \"meta/weekly\"}}) { channel { id mode } } }",
             json!({"w": setup.workspace}))
        .await;
    assert_eq!(social.data("createChannel.channel.mode"), &json!("audience"));
    let channel = social.str("createChannel.channel.id");
    let escape = setup
        .gql(
            "mutation($w: ID!) { createChannel(input: {workspaceId: $w, name: \"Escape\", kind: \"social\",
                delivery: {adapter: \"audience_file\", directory: \"../../etc\"}}) { channel { id } } }",
            json!({"w": setup.workspace}),
        )
        .await;
    escape.expect_code("BAD_USER_INPUT");
    setup.people("a", 3).await;
    setup.app.process_events_and_segments().await;
    // a0 agreed to marketing on social; a1 on every channel; a2 never did.
    let (a0, a1) = (setup.profile_of("a0").await, setup.profile_of("a1").await);
    setup.consent(&a0, "social", true).await;
    setup.consent(&a1, "*", true).await;
    let synced = setup
        .gql("mutation($w: ID!, $c: ID!, $s: ID!) { syncAudience(workspaceId: $w, channelId: $c, segmentId: $s) { name rows bytes } }",
             json!({"w": setup.workspace, "c": channel, "s": setup.segment}))
        .await;
    assert!(synced.body.get("errors").is_none(), "{:?}", synced.body);
    assert_eq!(synced.data("syncAudience.rows"), &json!(2));
    let name = synced.str("syncAudience.name");
    let path =
        setup.app.settings.data_dir.join("audiences").join(&setup.workspace).join("meta/weekly").join(&name);
    let file = std::fs::read_to_string(&path).unwrap();
    let mut lines = file.lines();
    assert_eq!(lines.next(), Some("email_sha256,phone_sha256"));
    let hashes: BTreeSet<String> = lines.map(|l| l.split(',').next().unwrap().to_owned()).collect();
    let sha = |email: &str| hex::encode(<Sha256 as sha2::Digest>::digest(email.as_bytes()));
    assert_eq!(hashes, BTreeSet::from([sha("a0@example.com"), sha("a1@example.com")]));
    assert_eq!(synced.data("syncAudience.bytes"), &json!(file.len()));
    // Only complete files are there.
    let names: Vec<String> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![name]);

    // A suppressed address leaves the next file, with the person it was the only address of.
    let suppressed = setup
        .gql(
            "mutation($w: ID!) { suppressAddresses(workspaceId: $w, kind: EMAIL, addresses: [\"a1@example.com\"]) { added } }",
            json!({"w": setup.workspace}),
        )
        .await;
    assert_eq!(suppressed.data("suppressAddresses.added"), &json!(1), "{:?}", suppressed.body);
    let synced = setup
        .gql("mutation($w: ID!, $c: ID!, $s: ID!) { syncAudience(workspaceId: $w, channelId: $c, segmentId: $s) { name rows } }",
             json!({"w": setup.workspace, "c": channel, "s": setup.segment}))
        .await;
    assert_eq!(synced.data("syncAudience.rows"), &json!(1), "{:?}", synced.body);
    let path = path.with_file_name(synced.str("syncAudience.name"));
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(file.contains(&sha("a0@example.com")) && !file.contains(&sha("a1@example.com")), "{file}");
}

async fn webhooks_cannot_reach_private_addresses_unless_allowed(backend: Backend) {
    let setup = setup_with(backend, |settings| settings.webhooks_to_private_addresses = false).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let create = |url: String| {
        let setup = &setup;
        async move {
            setup
                .gql("mutation($w: ID!, $u: String!) { createChannel(input: {workspaceId: $w, name: $u, kind: \"email\",
                        delivery: {adapter: \"webhook\", url: $u}}) { channel { id } } }",
                     json!({"w": setup.workspace, "u": url}))
                .await
        }
    };
    for literal in ["http://169.254.169.254/latest/meta-data", "http://10.0.0.1/x", "http://[::1]:9/x"] {
        create(literal.to_owned()).await.expect_code("BAD_USER_INPUT");
    }
    // A name that resolves to a private address is caught when the connection is made.
    let channel = create(format!("http://localhost:{}/hooks", receiver.addr.port()))
        .await
        .str("createChannel.channel.id");
    let content = setup.content("Mail", email_template()).await;
    let journey = setup
        .journey(
            "Inward",
            send_journey(
                &setup.segment,
                json!([
            {"id": "send", "type": "send", "channel": channel, "content": content, "next": "end"},
            {"id": "end", "type": "exit"}]),
            ),
        )
        .await;
    setup.publish(&journey).await;
    setup.people("p", 1).await;
    setup.consent_all("p", 1, "email").await;
    let (_, delivered) = setup.app.run_journeys().await;
    assert_eq!(
        (delivered.sent, delivered.retried, delivered.dead),
        (0, 0, 1),
        "refused at once, never retried"
    );
    assert!(receiver.received().is_empty(), "nothing reached the private address");
    let dead = setup
        .gql(
            "query($w: ID!) { deadLetters(workspaceId: $w, first: 10) { edges { node { lastError } } } }",
            json!({"w": setup.workspace}),
        )
        .await;
    let reason = dead.data("deadLetters.edges")[0]["node"]["lastError"].as_str().unwrap().to_owned();
    assert!(reason.contains("private"), "{reason}");
}

async fn previews_pauses_and_reentry_after_exit(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Mail", email_template()).await;
    setup.people("r", 1).await;
    let person = setup.consent_all("r", 1, "email").await.remove(0);

    // The builder's preview renders for a real person; a variant the content lacks is refused.
    let preview = setup
        .gql("query($w: ID!, $id: ID!, $p: ID!) { contentPreview(workspaceId: $w, id: $id, variant: \"email\", profileId: $p) { fields } }",
             json!({"w": setup.workspace, "id": content, "p": person}))
        .await;
    assert_eq!(preview.data("contentPreview.fields")["subject"], json!("Hello Ada0"), "{:?}", preview.body);
    setup
        .gql("query($w: ID!, $id: ID!, $p: ID!) { contentPreview(workspaceId: $w, id: $id, variant: \"sms\", profileId: $p) { fields } }",
             json!({"w": setup.workspace, "id": content, "p": person}))
        .await
        .expect_code("BAD_USER_INPUT");

    // Send settings read back as they were set.
    set_settings(
        &setup,
        json!({"timezone": "Europe/Paris", "quietHoursStart": "22:00", "quietHoursEnd": "07:30",
        "frequencyCaps": [{"channel": null, "windowSeconds": 3600, "maxSends": 5}]}),
    )
    .await;
    let settings = setup
        .gql("query($w: ID!) { sendSettings(workspaceId: $w) { timezone quietHoursStart quietHoursEnd frequencyCaps { channel windowSeconds maxSends } } }",
             json!({"w": setup.workspace}))
        .await;
    assert_eq!(
        settings.data("sendSettings"),
        &json!({"timezone": "Europe/Paris", "quietHoursStart": "22:00",
        "quietHoursEnd": "07:30", "frequencyCaps": [{"channel": null, "windowSeconds": 3600, "maxSends": 5}]})
    );
    set_settings(&setup, json!({"timezone": "UTC", "frequencyCaps": []})).await;

    let created = setup
        .gql("mutation($w: ID!, $g: JSON!) { createJourney(input: {workspaceId: $w, name: \"Again\", graph: $g, reentry: \"after_exit\"}) { id reentry } }",
             json!({"w": setup.workspace, "g": send_journey(&setup.segment, json!([
                {"id": "send", "type": "send", "channel": channel, "content": content, "next": "end"},
                {"id": "end", "type": "exit"}]))}))
        .await;
    assert_eq!(created.data("createJourney.reentry"), &json!("after_exit"));
    let journey = created.str("createJourney.id");
    setup.publish(&journey).await;
    let status = |status: &'static str| {
        let setup = &setup;
        let journey = journey.clone();
        async move {
            setup
                .gql("mutation($w: ID!, $id: ID!, $s: JourneyStatus!) { setJourneyStatus(workspaceId: $w, id: $id, status: $s) { status } }",
                     json!({"w": setup.workspace, "id": journey, "s": status}))
                .await
        }
    };
    let plan = |plan: &'static str| {
        let setup = &setup;
        async move {
            let (code, _) = setup
                .app
                .track("identify", Some(&setup.key), &json!({"userId": "r0", "traits": {"plan": plan}}))
                .await;
            assert_eq!(code, 200);
        }
    };
    // Leave and enter the segment again: a first passage, sent once.
    plan("free").await;
    setup.app.run_journeys().await;
    plan("pro").await;
    setup.app.run_journeys().await;
    assert_eq!(receiver.received().len(), 1);

    // Paused: people who enter wait; nobody moves until it resumes.
    assert_eq!(status("PAUSED").await.data("setJourneyStatus.status"), &json!("PAUSED"));
    plan("free").await;
    setup.app.run_journeys().await;
    plan("pro").await;
    setup.app.run_journeys().await;
    assert_eq!(receiver.received().len(), 1, "nothing is sent while paused");
    status("DRAFT").await.expect_code("CONFLICT");
    assert_eq!(status("ACTIVE").await.data("setJourneyStatus.status"), &json!("ACTIVE"));
    setup.app.run_journeys().await;
    assert_eq!(receiver.received().len(), 2, "after their first passage ended, they went through again");
    let report = setup.report(&journey).await;
    assert_eq!(count(&report, "byStatus", "completed"), 2);
}

/// Everyone in the segment at the scheduled moment enters; a one-off in the past is refused;
/// a weekly schedule moves on to the next week once its run is done.
async fn a_scheduled_journey_enrolls_the_whole_segment_at_its_time(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Digest", email_template()).await;
    // Members before the journey exists: a segment-entry journey would not take them.
    setup.people("s", 4).await;
    setup.consent_all("s", 4, "email").await;
    let steps = json!([
        {"id": "mail", "type": "send", "channel": channel, "content": content, "next": "end"},
        {"id": "end", "type": "exit"}]);
    let graph = |at: chrono::DateTime<chrono::Utc>, every: Option<u32>| {
        let mut trigger = json!({"type": "schedule", "segment": setup.segment, "at": at.to_rfc3339()});
        if let Some(days) = every {
            trigger["every_days"] = json!(days);
        }
        json!({"entry": {"trigger": trigger, "next": "mail"}, "steps": steps})
    };
    let now = chrono::Utc::now();
    let past = setup.journey("Yesterday", graph(now - chrono::Duration::days(1), None)).await;
    let refused = setup.publish(&past).await;
    refused.expect_code("BAD_USER_INPUT");
    assert!(format!("{:?}", refused.body).contains("schedule_in_past"), "{:?}", refused.body);
    let too_often = setup.journey("Too often", graph(now, Some(0))).await;
    assert!(format!("{:?}", setup.publish(&too_often).await.body).contains("invalid_schedule"));

    let at = now + chrono::Duration::seconds(2);
    let weekly = setup.journey("Weekly digest", graph(at, Some(7))).await;
    let published = setup.publish(&weekly).await;
    assert_eq!(published.data("publishJourney.status"), &json!("ACTIVE"), "{:?}", published.body);
    let next_run = || {
        let (setup, weekly) = (&setup, weekly.clone());
        async move {
            let answer = setup
                .gql(
                    "query($w: ID!, $id: ID!) { journey(workspaceId: $w, id: $id) { nextScheduledRun scheduledRunInProgress } }",
                    json!({"w": setup.workspace, "id": weekly}),
                )
                .await;
            assert_eq!(answer.data("journey.scheduledRunInProgress"), &Value::Null);
            chrono::DateTime::parse_from_rfc3339(&answer.str("journey.nextScheduledRun")).unwrap()
        }
    };
    assert_eq!(next_run().await.timestamp(), at.timestamp());
    setup.app.run_journeys().await;
    assert_eq!(receiver.received().len(), 0, "nobody enters before the scheduled time");
    tokio::time::sleep((at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let (round, _) = setup.app.run_journeys().await;
    assert_eq!(round.enrolled, 4, "the four members at that moment; the seed is not on the pro plan");
    assert_eq!(receiver.received().len(), 4);
    assert_eq!(next_run().await.timestamp(), (at + chrono::Duration::days(7)).timestamp());
    let (round, _) = setup.app.run_journeys().await;
    assert_eq!((round.enrolled, receiver.received().len()), (0, 4), "the run is over until next week");
}

/// A hard bounce and a complaint put the address the message went to on the suppression list;
/// imported addresses join it; no later send goes to a suppressed address, and the report
/// says so; an administrator can lift a suppression.
async fn hard_bounces_complaints_and_imported_lists_suppress_addresses(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Mail", email_template()).await;
    let journey = setup.journey("Two mails", two_mails(&setup.segment, &channel, &content)).await;
    setup.publish(&journey).await;
    setup.people("b", 4).await;
    let people = setup.consent_all("b", 4, "email").await;
    setup.app.run_journeys().await;
    let first = receiver.received();
    assert_eq!(first.len(), 4);
    let key_of = |address: &str| {
        first.iter().find(|r| r.body.contains(address)).and_then(|r| r.idempotency_key.clone()).unwrap()
    };
    for (address, kind) in [("b0@example.com", "HARD_BOUNCE"), ("b1@example.com", "COMPLAINT")] {
        let answer = setup
            .gql(
                "mutation($w: ID!, $k: String!, $kind: SendFeedback!) {
                    recordSendFeedback(workspaceId: $w, key: $k, kind: $kind) }",
                json!({"w": setup.workspace, "k": key_of(address), "kind": kind}),
            )
            .await;
        assert!(answer.body.get("errors").is_none(), "{:?}", answer.body);
    }
    let imported = setup
        .gql(
            "mutation($w: ID!, $a: [String!]!) { suppressAddresses(workspaceId: $w, kind: EMAIL, addresses: $a) {
               added alreadySuppressed rejected { index message } } }",
            json!({"w": setup.workspace, "a": ["  B2@Example.COM ", "not an address", "b0@example.com"]}),
        )
        .await;
    assert_eq!(imported.data("suppressAddresses.added"), &json!(1), "{:?}", imported.body);
    assert_eq!(imported.data("suppressAddresses.alreadySuppressed"), &json!(1));
    assert_eq!(imported.data("suppressAddresses.rejected.0.index"), &json!(1));
    let twice = setup
        .gql(
            "mutation($w: ID!) { suppressAddresses(workspaceId: $w, kind: EMAIL,
               addresses: [\"list@example.com\", \"LIST@example.com\"]) { added alreadySuppressed } }",
            json!({"w": setup.workspace}),
        )
        .await;
    assert_eq!(
        twice.data("suppressAddresses"),
        &json!({"added": 1, "alreadySuppressed": 1}),
        "{:?}",
        twice.body
    );
    let lookup = |address: &'static str| {
        let setup = &setup;
        async move {
            setup
                .gql(
                    "query($w: ID!, $a: String!) { addressSuppression(workspaceId: $w, kind: EMAIL, address: $a) {
                       reason source } }",
                    json!({"w": setup.workspace, "a": address}),
                )
                .await
        }
    };
    assert!(
        setup.touchpoints_of(&people[0]).await.iter().any(|t| t["kind"] == "bounce"),
        "a hard bounce is a bounce touchpoint"
    );
    let bounced = lookup("B0@example.com").await;
    assert_eq!(bounced.data("addressSuppression.reason"), &json!("HARD_BOUNCE"), "{:?}", bounced.body);
    assert!(bounced.str("addressSuppression.source").starts_with("feedback:"));
    assert_eq!(lookup("b1@example.com").await.data("addressSuppression.reason"), &json!("COMPLAINT"));
    assert_eq!(lookup("b3@example.com").await.data("addressSuppression"), &Value::Null);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    setup.app.run_journeys().await;
    let second: Vec<_> = receiver.received().into_iter().skip(4).collect();
    assert_eq!(second.len(), 1, "only b3 is still reachable");
    assert!(second[0].body.contains("b3@example.com"));
    let blocks = setup.blocks(&journey).await;
    assert_eq!(blocks[&people[0]], vec!["suppressed".to_owned()]);
    assert_eq!(
        blocks[&people[1]],
        vec!["consent_withdrawn".to_owned()],
        "a complaint also withdraws consent"
    );
    assert_eq!(blocks[&people[2]], vec!["suppressed".to_owned()]);

    let lifted = setup
        .gql(
            "mutation($w: ID!) { liftAddressSuppression(workspaceId: $w, kind: EMAIL, address: \"b2@example.com\") }",
            json!({"w": setup.workspace}),
        )
        .await;
    assert_eq!(lifted.data("liftAddressSuppression"), &json!(true), "{:?}", lifted.body);
    assert_eq!(lookup("b2@example.com").await.data("addressSuppression"), &Value::Null);
    let phone = setup
        .gql(
            "mutation($w: ID!) { suppressAddresses(workspaceId: $w, kind: PHONE, addresses: [\"12\"]) { added rejected { index } } }",
            json!({"w": setup.workspace}),
        )
        .await;
    assert_eq!(phone.data("suppressAddresses.rejected.0.index"), &json!(0), "{:?}", phone.body);
}

/// A multivariate step draws one level per factor; content reads them as `experiment.*`, the
/// recorded variant names every level, and a factor no step defines is refused at publish.
async fn a_multivariate_test_varies_content_by_factor_levels(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup
        .content(
            "Offer",
            json!({"variants": [{"kind": "email",
                "subject": "{% if experiment.subject == 'short' %}Sale{% else %}Our biggest sale of the year{% endif %}",
                "body": "Colour {{ experiment.colour }} for {{ profile.first_name }}"}]}),
        )
        .await;
    let graph = |factors: Value| {
        send_journey(
            &setup.segment,
            json!([
                {"id": "mvt", "type": "multivariate", "factors": factors, "next": "mail"},
                {"id": "mail", "type": "send", "channel": channel, "content": content, "next": "end"},
                {"id": "end", "type": "exit"}]),
        )
    };
    let missing = setup
        .journey("Missing factor", graph(json!([{"name": "subject", "levels": ["short", "long"]}])))
        .await;
    let refused = setup.publish(&missing).await;
    assert!(format!("{:?}", refused.body).contains("unknown_factor"), "{:?}", refused.body);

    let journey = setup
        .journey(
            "Two factors",
            graph(json!([{"name": "subject", "levels": ["short", "long"]},
                         {"name": "colour", "levels": ["red", "green", "blue"]}])),
        )
        .await;
    let published = setup.publish(&journey).await;
    assert_eq!(published.data("publishJourney.status"), &json!("ACTIVE"), "{:?}", published.body);
    setup.people("m", 60).await;
    setup.consent_all("m", 60, "email").await;
    setup.app.run_journeys().await;
    let received = receiver.received();
    assert_eq!(received.len(), 60);
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    for message in &received {
        let content = &message.json()["content"];
        let subject = if content["subject"] == "Sale" { "short" } else { "long" };
        let body = content["body"].as_str().unwrap();
        let colour = body.strip_prefix("Colour ").unwrap().split(' ').next().unwrap();
        *seen.entry(format!("subject={subject},colour={colour}")).or_default() += 1;
    }
    let report = setup.report(&journey).await;
    let recorded: BTreeMap<String, i64> = report["byVariant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["key"].as_str().unwrap().to_owned(), c["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(recorded, seen, "what each person received is the variant recorded for them");
    assert!(seen.len() >= 5, "60 people spread over the 6 combinations: {seen:?}");
    // The send touchpoints carry the variant for measurement.
    let (variants, _) = setup
        .app
        .all_pages(
            "query($w: ID!, $j: ID!, $after: String) { touchpoints(workspaceId: $w, journeyId: $j, kind: \"send\",
               first: 50, after: $after) { edges { node { variant } } pageInfo { hasNextPage endCursor } } }",
            json!({"w": setup.workspace, "j": journey}),
            Some(&setup.token),
            "touchpoints",
            "variant",
        )
        .await;
    let mut by_variant: BTreeMap<String, i64> = BTreeMap::new();
    for variant in variants {
        *by_variant.entry(variant).or_default() += 1;
    }
    assert_eq!(by_variant, seen);
}

/// A scheduled run pages through its segment (a thousand people per round) and resumes from
/// its cursor: nobody is enrolled twice, nobody is skipped, and a one-off schedule then ends.
async fn a_scheduled_run_over_a_large_segment_resumes_where_it_stopped(backend: Backend) {
    let setup = setup(backend).await;
    seed(&setup).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Mail", "email", &receiver).await;
    let content = setup.content("Broadcast", email_template()).await;
    setup.people("x", 1001).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(1);
    let journey = setup
        .journey(
            "Broadcast",
            json!({"entry": {"trigger": {"type": "schedule", "segment": setup.segment, "at": at.to_rfc3339()},
                             "next": "mail"},
                   "steps": [{"id": "mail", "type": "send", "channel": channel, "content": content, "next": "end"},
                             {"id": "end", "type": "exit"}]}),
        )
        .await;
    setup.publish(&journey).await;
    tokio::time::sleep((at - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let schedule = || async {
        setup
            .gql(
                "query($w: ID!, $id: ID!) { journey(workspaceId: $w, id: $id) { nextScheduledRun scheduledRunInProgress } }",
                json!({"w": setup.workspace, "id": journey}),
            )
            .await
    };
    let (round, _) = setup.app.run_journeys().await;
    assert_eq!(round.enrolled, 1000, "one page per round");
    let during = schedule().await;
    assert_ne!(during.data("journey.scheduledRunInProgress"), &Value::Null, "{:?}", during.body);
    assert_eq!(during.data("journey.nextScheduledRun"), &Value::Null, "a one-off has no next run");
    let (round, _) = setup.app.run_journeys().await;
    assert_eq!(round.enrolled, 1, "the rest, from the cursor");
    assert_eq!(schedule().await.data("journey.scheduledRunInProgress"), &Value::Null);
    let (round, _) = setup.app.run_journeys().await;
    assert_eq!(round.enrolled, 0);
    let report = setup.report(&journey).await;
    let entered: i64 =
        report["byStatus"].as_array().unwrap().iter().map(|c| c["count"].as_i64().unwrap()).sum();
    assert_eq!(entered, 1001, "each member once");
}

/// `passerelle worker` as deployed: its own process state, the app's database, probes and
/// Prometheus on its own port. What it does shows in its metrics: people enrolled, sends
/// queued then delivered (as many as the receiver got), events processed and their lag.
async fn the_worker_process_is_probed_and_reports_its_work(backend: Backend) {
    let setup = setup(backend).await;
    let receiver = Receiver::start().await;
    let (channel, _) = setup.webhook_channel("Newsletter", "email", &receiver).await;
    let content = setup.content("Welcome", email_template()).await;
    let journey = setup
        .journey(
            "Observed",
            send_journey(
                &setup.segment,
                json!([
                    {"id": "mail", "type": "send", "channel": channel, "content": content, "next": "done"},
                    {"id": "done", "type": "exit"}
                ]),
            ),
        )
        .await;
    // Someone outside the segment gives the workspace the trait the template uses; the journey
    // enrolls people who enter after it is published.
    let seed = json!({"userId": "seed", "traits": {"plan": "free", "first_name": "Seed"}});
    assert_eq!(setup.app.track("identify", Some(&setup.key), &seed).await.0, 200);
    setup.app.process_events().await;
    assert_eq!(setup.publish(&journey).await.data("publishJourney.status"), &json!("ACTIVE"));
    setup.people("w", 12).await;
    setup.consent_all("w", 12, "email").await;
    setup.app.process_events_and_segments().await;

    let mut settings = setup.app.settings.clone();
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let worker = passerelle::WorkerProcess::build(settings).await.unwrap();
    let base = format!("http://{}", worker.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    // Events only the worker processes (the test processes nothing from here on).
    let batch: Vec<Value> = (0..30)
        .map(|i| json!({"type": "track", "userId": format!("w{}", i % 12), "event": "Viewed"}))
        .collect();
    let (status, body) = setup.app.track("batch", Some(&setup.key), &json!({"batch": batch})).await;
    assert_eq!(status, 200, "{body}");

    let client = reqwest::Client::new();
    let series = |name: &str, outcome: Option<&str>| match outcome {
        Some(outcome) => format!("passerelle_{name}{{outcome=\"{outcome}\"}}"),
        None => format!("passerelle_{name}"),
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let page = loop {
        let page = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        let value = |name: &str, outcome| passerelle_tests::metric_value(&page, &series(name, outcome));
        if value("journey_sends_total", Some("sent")) == Some(12.0)
            && value("events_processed_total", Some("processed")) == Some(30.0)
        {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "the worker did not finish: {page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let value = |name: &str, outcome| passerelle_tests::metric_value(&page, &series(name, outcome));
    assert_eq!(receiver.received().len(), 12);
    assert_eq!(value("journey_enrollments_total", None), Some(12.0));
    assert_eq!(value("journey_sends_total", Some("queued")), Some(12.0));
    assert!(value("journey_steps_total", None).unwrap() >= 12.0, "{page}");
    assert_eq!(value("journey_sends_total", Some("dead")), Some(0.0));
    let lag = value("ingestion_lag_seconds", None).unwrap();
    assert!((0.0..60.0).contains(&lag), "{lag}");
    assert!(value("db_pool_max_connections", None).unwrap() >= 8.0);

    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<Value>().await.unwrap(), json!({"database": "ok", "cache": "ok"}));
    assert_eq!(client.get(format!("{base}/livez")).send().await.unwrap().status(), 200);
    // Only the operations endpoints: the worker serves no API.
    let api = client.post(format!("{base}/graphql")).json(&json!({"query": "{ me { id } }"})).send().await;
    assert_eq!(api.unwrap().status(), 404);

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    assert!(client.get(format!("{base}/livez")).send().await.is_err(), "stopped with its workers");
}

on_both_backends!(
    the_worker_process_is_probed_and_reports_its_work,
    a_journey_holds_out_splits_and_sends_signed_webhooks_once,
    publishing_refuses_a_journey_with_problems_and_lists_them_all,
    caps_hold_across_two_concurrent_journeys,
    quiet_hours_defer_and_consent_is_checked_at_send_time,
    people_stay_on_the_version_they_entered,
    failed_deliveries_are_retried_then_dead_lettered_with_the_reason,
    a_killed_delivery_worker_only_retries_in_flight_sends_under_their_keys,
    branches_update_traits_and_wait_for_the_time_of_day,
    email_goes_through_an_smtp_relay,
    provider_feedback_becomes_touchpoints_and_an_unsubscribe_stops_sends,
    events_start_journeys_end_waits_and_reach_goals,
    a_simulation_runs_the_draft_on_real_people_and_writes_nothing,
    a_decision_channel_shows_the_offer_a_journey_chose,
    an_audience_channel_gets_the_segment_as_a_file_of_the_contactable,
    webhooks_cannot_reach_private_addresses_unless_allowed,
    previews_pauses_and_reentry_after_exit,
    a_scheduled_journey_enrolls_the_whole_segment_at_its_time,
    hard_bounces_complaints_and_imported_lists_suppress_addresses,
    a_multivariate_test_varies_content_by_factor_levels,
    a_scheduled_run_over_a_large_segment_resumes_where_it_stopped,
);
