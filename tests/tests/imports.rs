//! CSV imports end to end: a CRM file linked to online profiles, per-row errors, enrichment
//! kept as its own source, a broken upload resumed without duplicates, and who may upload.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passerelle_tests::{Backend, TestApp, on_both_backends, spawn_app};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

const CREATE: &str = "mutation($w: ID!, $i: CreateImportInput!) {
    createImport(workspaceId: $w, input: $i) { id status uploadPath delimiter columns { column to valueType } } }";

const JOB: &str = "query($w: ID!, $id: ID!) { importJob(workspaceId: $w, id: $id) {
    id name kind status rowsRead rowsImported rowsAlreadyImported rowsRejected rowsProcessed rowsUnmatched
    rowsSuppressed failure columns { column to valueType } errors { row column code message } completedAt } }";

const BY_EMAIL: &str = "query($w: ID!, $v: String!) {
    profiles(workspaceId: $w, first: 5, filter: {identifier: {kind: \"email\", value: $v}}) {
      edges { node { id eventCount traits traitDetails { name source } identities { kind value } } } } }";

async fn create_import(app: &TestApp, token: &str, workspace: &str, input: Value) -> (String, String) {
    let created = app.gql(CREATE, json!({"w": workspace, "i": input}), Some(token)).await;
    assert_eq!(created.data("createImport.status"), &json!("AWAITING_UPLOAD"), "{created:?}");
    (created.str("createImport.id"), created.str("createImport.uploadPath"))
}

async fn job(app: &TestApp, token: &str, workspace: &str, id: &str) -> Value {
    app.gql(JOB, json!({"w": workspace, "id": id}), Some(token)).await.data("importJob").clone()
}

async fn profile_by_email(app: &TestApp, token: &str, workspace: &str, email: &str) -> Option<Value> {
    let found = app.gql(BY_EMAIL, json!({"w": workspace, "v": email}), Some(token)).await;
    found.data("profiles.edges").as_array().unwrap().first().map(|e| e["node"].clone())
}

fn source_of(profile: &Value, name: &str) -> String {
    let details = profile["traitDetails"].as_array().unwrap();
    let found = details.iter().find(|d| d["name"] == name).unwrap_or_else(|| panic!("{name} in {profile}"));
    found["source"].as_str().unwrap().to_owned()
}

async fn crm_rows_link_to_online_profiles_with_row_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    // Ada is known online first: a newsletter sign-up that says she is on the free plan.
    let identify = json!({"anonymousId": "cookie-ada", "traits": {"email": "ada@example.com", "plan": "free"},
        "timestamp": "2026-11-20T10:00:00Z"});
    assert_eq!(app.track("identify", Some(&key), &identify).await.0, 200);
    app.process_events().await;

    let (id, upload) =
        create_import(&app, &token, &workspace, json!({"name": "crm-november", "kind": "CRM"})).await;
    let csv = "\u{feff}Customer ID,Email,First Name,Last Name,Plan,Date of birth,ZIP\r\n\
               C-1, ADA@Example.com ,Ada,Lovelace,gold,1815-12-10,75002\r\n\
               C-2,grace@example.com,Grace,\"Hopper, RDML\",pro,1906-12-09,10001\r\n\
               C-3,not-an-email,Bad,Row,pro,,\r\n\
               C-4,short@example.com,Too,Few\r\n\
               ,,Nobody,Known,pro,,\r\n\
               C-5,alan@example.com,Alan,Turing,free,23/06/1912,\r\n";
    let (status, summary) = app.upload_import(&token, &upload, csv.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(
        (summary["rowsRead"].clone(), summary["rowsImported"].clone()),
        (json!(6), json!(2)),
        "{summary}"
    );
    let errors: Vec<(u64, String, String)> = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["code"].as_str().unwrap().into(),
                e["column"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (4, "INVALID_IDENTIFIER".into(), "Email".into()),
            (5, "WRONG_FIELD_COUNT".into(), String::new()),
            (6, "NO_IDENTIFIER".into(), String::new()),
            (7, "INVALID_VALUE".into(), "Date of birth".into()),
        ]
    );
    let text = summary.to_string();
    assert!(!text.contains("not-an-email") && !text.contains("23/06/1912"), "errors hold no values: {text}");

    app.process_events().await;
    let done = job(&app, &token, &workspace, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!((done["rowsProcessed"].clone(), done["rowsRejected"].clone()), (json!(2), json!(4)));
    assert!(done["completedAt"].is_string());
    let mapped: Vec<String> =
        done["columns"].as_array().unwrap().iter().map(|c| c["to"].as_str().unwrap().into()).collect();
    assert_eq!(mapped[..3], ["identity:user_id", "identity:email", "trait:firstName"]);

    // The CRM row landed on the online profile, by its email.
    let ada = profile_by_email(&app, &token, &workspace, "ada@example.com").await.expect("ada");
    let ids: Vec<String> = ada["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}={}", i["kind"].as_str().unwrap(), i["value"].as_str().unwrap()))
        .collect();
    assert!(
        ids.contains(&"anonymous_id=cookie-ada".to_owned()) && ids.contains(&"user_id=C-1".to_owned()),
        "{ids:?}"
    );
    assert_eq!(ada["traits"]["firstName"], "Ada");
    assert_eq!(ada["traits"]["birthday"], "1815-12-10");
    assert_eq!(ada["traits"]["address"]["postalCode"], "75002");
    // The CRM outranks tracked events, even older; a record is not a visit.
    assert_eq!(ada["traits"]["plan"], "gold", "{ada}");
    assert_eq!(source_of(&ada, "plan"), format!("import:crm-november:{id}"));
    assert_eq!(ada["eventCount"], 1);
    // A new customer made from the CRM alone, with a quoted comma kept.
    let grace = profile_by_email(&app, &token, &workspace, "grace@example.com").await.expect("grace");
    assert_eq!(grace["traits"]["lastName"], "Hopper, RDML");
    assert!(profile_by_email(&app, &token, &workspace, "alan@example.com").await.is_none());

    // The same file again to the same job is refused: create another import for it.
    let (status, body) = app.upload_import(&token, &upload, csv.as_bytes().to_vec()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "CONFLICT");
    let listed = app
        .gql(
            "query($w: ID!) { importJobs(workspaceId: $w, first: 5) { edges { node { id name } } } }",
            json!({"w": workspace}),
            Some(&token),
        )
        .await;
    assert_eq!(listed.node_strings("importJobs", "id"), vec![id.clone()]);

    // Rows of an erased person are dropped and counted, never resurrected; rows whose only
    // identifier is blocked (test@test.com) link to nobody and are counted too.
    let erase = "mutation($w: ID!, $id: ID!) { eraseProfile(workspaceId: $w, id: $id) { profiles } }";
    let erased = app.gql(erase, json!({"w": workspace, "id": grace["id"]}), Some(&token)).await;
    assert_eq!(erased.data("eraseProfile.profiles"), &json!(1), "{erased:?}");
    let (later, later_upload) = create_import(
        &app,
        &token,
        &workspace,
        json!({"name": "crm-december", "kind": "CRM", "delimiter": "tab"}),
    )
    .await;
    let tsv = "email\tplan\nGrace@example.com\tgold\ntest@test.com\tpro\nlinus@example.com\tfree\n";
    let (status, summary) = app.upload_import(&token, &later_upload, tsv.as_bytes().to_vec()).await;
    assert_eq!((status, summary["rowsImported"].clone()), (200, json!(3)), "{summary}");
    app.process_events().await;
    let done = job(&app, &token, &workspace, &later).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    let counts = ["rowsProcessed", "rowsSuppressed", "rowsUnmatched"].map(|k| done[k].clone());
    assert_eq!(counts, [json!(1), json!(1), json!(1)], "{done}");
    assert!(profile_by_email(&app, &token, &workspace, "grace@example.com").await.is_none());
    assert!(profile_by_email(&app, &token, &workspace, "linus@example.com").await.is_some());
}

async fn enrichment_adds_traits_only_to_known_people(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let identify = json!({"userId": "u-1", "traits": {"email": "known@example.com", "gender": "declared-f"}});
    assert_eq!(app.track("identify", Some(&key), &identify).await.0, 200);
    app.process_events().await;
    let columns = json!([
        {"column": "mail", "to": "identity:email"},
        {"column": "age band", "to": "trait:ageBand"},
        {"column": "income", "to": "trait:incomeBand"},
        {"column": "gender", "to": "trait:gender"},
        {"column": "score", "to": "trait:propensity", "valueType": "NUMBER"},
    ]);
    let (id, upload) = create_import(
        &app,
        &token,
        &workspace,
        json!({"name": "acme demographics", "kind": "ENRICHMENT", "delimiter": ";", "columns": columns}),
    )
    .await;
    let csv = "mail;age band;income;gender;score;unused\nKnown@Example.com;25-34;B;m;0,82;x\nstranger@example.com;45-54;A;f;0,1;y\n";
    let (status, summary) = app.upload_import(&token, &upload, csv.as_bytes().to_vec()).await;
    assert_eq!((status, summary["rowsImported"].clone()), (200, json!(2)), "{summary}");
    app.process_events().await;
    let done = job(&app, &token, &workspace, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!((done["rowsProcessed"].clone(), done["rowsUnmatched"].clone()), (json!(1), json!(1)));

    let known = profile_by_email(&app, &token, &workspace, "known@example.com").await.expect("known");
    assert_eq!(known["traits"]["ageBand"], "25-34");
    assert_eq!(known["traits"]["propensity"], 0.82);
    assert_eq!(source_of(&known, "ageBand"), format!("enrichment:acme demographics:{id}"));
    // What the person said themselves outranks a third party's guess.
    assert_eq!(known["traits"]["gender"], "declared-f");
    // The key finds the person; it is not written over their own email, and enrichment never
    // creates anybody.
    assert_eq!(source_of(&known, "email"), "events");
    assert!(profile_by_email(&app, &token, &workspace, "stranger@example.com").await.is_none());
    let everyone = app
        .gql(
            "query($w: ID!) { profiles(workspaceId: $w, first: 10) { edges { node { id } } } }",
            json!({"w": workspace}),
            Some(&token),
        )
        .await;
    assert_eq!(everyone.data("profiles.edges").as_array().unwrap().len(), 1);
}

/// Sends the head of a body and hangs up before its declared end, like a dropped connection.
async fn broken_upload(app: &TestApp, token: &str, path: &str, head: &[u8], declared: usize) {
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: text/csv\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(head).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    drop(stream);
}

async fn broken_uploads_resume_and_bad_requests_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, write_key) = app.tracking_workspace().await;
    let rows = 2500;
    let mut csv = String::from("email,segment\n");
    for i in 0..rows {
        csv.push_str(&format!("person{i}@example.com,s{}\n", i % 7));
    }
    let (id, upload) = create_import(&app, &token, &workspace, json!({"name": "big", "kind": "CRM"})).await;

    // Who may send it: nobody without a credential, not a read-only member, not a write key.
    let (status, _) = app.upload_import("nonsense", &upload, csv.clone().into_bytes()).await;
    assert_eq!(status, 401);
    let (_, viewer) = app.staff(&token, "VIEWER", Some(&workspace)).await;
    assert_eq!(app.upload_import(&viewer, &upload, csv.clone().into_bytes()).await.0, 403);
    assert_eq!(app.upload_import(&write_key, &upload, csv.clone().into_bytes()).await.0, 403);
    let other = app.create_workspace(&token, "Other").await;
    let (status, body) =
        app.upload_import(&token, &format!("/imports/{other}/{id}"), csv.clone().into_bytes()).await;
    assert_eq!(status, 404, "another workspace's path does not reach this job: {body}");
    assert_eq!(app.upload_import(&token, "/imports/nope/nope", vec![]).await.0, 404);

    // The connection drops after about 1,700 rows: those are kept, the job can be sent again.
    let head = &csv.as_bytes()[..csv.len() * 2 / 3];
    broken_upload(&app, &token, &upload, head, csv.len()).await;
    let mut failed = job(&app, &token, &workspace, &id).await;
    for _ in 0..50 {
        if failed["status"] == "FAILED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        failed = job(&app, &token, &workspace, &id).await;
    }
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert!(failed["failure"].as_str().unwrap().contains("broke off"));
    let kept = failed["rowsImported"].as_i64().unwrap();
    assert!(kept >= 1000 && kept < rows, "{failed}");

    let (status, summary) = app.upload_import(&token, &upload, csv.clone().into_bytes()).await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["rowsImported"], json!(rows), "{summary}");
    assert_eq!(summary["rowsAlreadyImported"], json!(kept));
    app.process_events().await;
    let done = job(&app, &token, &workspace, &id).await;
    assert_eq!(
        (done["status"].clone(), done["rowsProcessed"].clone()),
        (json!("COMPLETED"), json!(rows)),
        "{done}"
    );
    let everyone = app
        .gql("query($w: ID!) { profiles(workspaceId: $w, first: 100) { pageInfo { hasNextPage } edges { node { id } } } }", json!({"w": workspace}), Some(&token))
        .await;
    assert_eq!(everyone.data("profiles.edges").as_array().unwrap().len(), 100);

    // A mapping naming a column the file lacks fails the job with the reason, before any row.
    let columns = json!([{"column": "mail", "to": "identity:email"}]);
    let (bad, bad_upload) =
        create_import(&app, &token, &workspace, json!({"name": "typo", "kind": "CRM", "columns": columns}))
            .await;
    let (status, body) = app.upload_import(&token, &bad_upload, b"email\na@b.io\n".to_vec()).await;
    assert_eq!(status, 400, "{body}");
    let failed = job(&app, &token, &workspace, &bad).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(failed["failure"].as_str().unwrap().contains("no column named `mail`"), "{failed}");
    assert_eq!(failed["rowsImported"], 0);
    // An empty file, bad targets and bad names are refused with clear codes.
    let (_, empty) = create_import(&app, &token, &workspace, json!({"name": "empty", "kind": "CRM"})).await;
    assert_eq!(app.upload_import(&token, &empty, Vec::new()).await.0, 400);
    for input in [
        json!({"name": "x", "kind": "CRM", "columns": [{"column": "a", "to": "somewhere"}]}),
        json!({"name": "x", "kind": "CRM", "columns": [{"column": "a", "to": "identity:postal"}]}),
        json!({"name": "a:b", "kind": "CRM"}),
        json!({"name": "", "kind": "CRM"}),
        json!({"name": "x", "kind": "CRM", "delimiter": "::"}),
        json!({"name": "x", "kind": "CRM", "columns": []}),
    ] {
        app.gql(CREATE, json!({"w": workspace, "i": input}), Some(&token))
            .await
            .expect_code("BAD_USER_INPUT");
    }
}

/// The lists written in raw SQL page with cursors: profiles oldest first, a timeline and the
/// import jobs newest first, every item once.
async fn lists_page_with_cursors(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, workspace, key) = app.tracking_workspace().await;
    let batch: Vec<Value> = (0..7)
        .map(|i| {
            json!({"type": "track", "event": format!("Step {i}"), "userId": format!("u-{}", i % 3),
            "messageId": format!("m-{i}"), "timestamp": format!("2026-11-0{}T10:00:00Z", i + 1)})
        })
        .collect();
    let (status, body) = app.track("batch", Some(&key), &json!({ "batch": batch })).await;
    assert_eq!(status, 200, "{body}");
    app.process_events().await;

    let profiles = "query($w: ID!, $after: String) { profiles(workspaceId: $w, first: 2, after: $after) {
        edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let (ids, pages) = app.all_pages(profiles, json!({"w": workspace}), Some(&token), "profiles", "id").await;
    assert_eq!((ids.len(), pages), (3, 2), "{ids:?}");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "oldest first");

    let user = "query($w: ID!, $v: String!) { profiles(workspaceId: $w, first: 1,
        filter: {identifier: {kind: \"user_id\", value: $v}}) { edges { node { id } } } }";
    let found = app.gql(user, json!({"w": workspace, "v": "u-0"}), Some(&token)).await;
    let profile = found.str("profiles.edges.0.node.id");
    let timeline = "query($w: ID!, $id: ID!, $after: String) { profile(workspaceId: $w, id: $id) {
        events(first: 2, after: $after) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } } }";
    let (names, pages) = app
        .all_pages(timeline, json!({"w": workspace, "id": profile}), Some(&token), "profile.events", "name")
        .await;
    assert_eq!(names, vec!["Step 6", "Step 3", "Step 0"], "newest first");
    assert_eq!(pages, 2);

    let mut created = Vec::new();
    for name in ["first", "second", "third"] {
        created.push(create_import(&app, &token, &workspace, json!({"name": name, "kind": "CRM"})).await.0);
    }
    let jobs = "query($w: ID!, $after: String) { importJobs(workspaceId: $w, first: 2, after: $after) {
        edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let (ids, pages) = app.all_pages(jobs, json!({"w": workspace}), Some(&token), "importJobs", "id").await;
    created.reverse();
    assert_eq!((ids, pages), (created, 2), "newest first");
}

on_both_backends!(
    lists_page_with_cursors,
    crm_rows_link_to_online_profiles_with_row_errors,
    enrichment_adds_traits_only_to_known_people,
    broken_uploads_resume_and_bad_requests_are_refused,
);
