//! The isolation attack suite (DESIGN §4): from outside through GraphQL with other tenants'
//! ids, keys and tokens, and from inside on PostgreSQL as the app role.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passerelle_tests::{Backend, TestApp, on_both_backends, spawn_app};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};

/// Two agencies; A has two workspaces, B one. Keys and staff in each.
struct World {
    a_owner: String,
    a1: String,
    a2: String,
    a1_key_id: String,
    a1_read_key: String,
    a1_write_key: String,
    b_owner: String,
    b1: String,
    b1_key_id: String,
    b_user: String,
    b_membership: String,
    a_user: String,
    /// B's campaign objects: a channel, a content and a draft journey.
    b_channel: String,
    b_content: String,
    b_journey: String,
}

async fn world(app: &TestApp) -> World {
    let a = app.agency("Agency A").await;
    let b = app.agency("Agency B").await;
    let a1 = app.create_workspace(&a.owner_token, "A one").await;
    let a2 = app.create_workspace(&a.owner_token, "A two").await;
    let b1 = app.create_workspace(&b.owner_token, "B one").await;
    let (a1_key_id, a1_read_key) = app.create_api_key(&a.owner_token, &a1, "SECRET", &["READ"]).await;
    let (_, a1_write_key) = app.create_api_key(&a.owner_token, &a1, "WRITE", &[]).await;
    let (b1_key_id, _) = app.create_api_key(&b.owner_token, &b1, "SECRET", &["READ", "ADMIN"]).await;
    let (b_user, _) = app.staff(&b.owner_token, "MARKETER", Some(&b1)).await;
    let memberships = app
        .gql(
            "query($u: ID!) { user(id: $u) { memberships { edges { node { id } } } } }",
            json!({ "u": b_user }),
            Some(&b.owner_token),
        )
        .await;
    let b_membership = memberships.data("user.memberships.edges").as_array().unwrap()[0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (a_user, _) = app.staff(&a.owner_token, "VIEWER", Some(&a1)).await;
    let b_gql = |query: &'static str, variables: Value| {
        let token = b.owner_token.clone();
        async move { app.gql(query, variables, Some(&token)).await }
    };
    let b_channel = b_gql(
        "mutation($w: ID!) { createChannel(input: {workspaceId: $w, name: \"B hooks\", kind: \"sms\",
           delivery: {adapter: \"webhook\", url: \"http://127.0.0.1:9/b\"}}) { channel { id } } }",
        json!({ "w": b1 }),
    )
    .await
    .str("createChannel.channel.id");
    let b_content = b_gql(
        "mutation($w: ID!) { createContent(workspaceId: $w, name: \"B text\",
           template: {variants: [{kind: \"sms\", text: \"B\"}]}) { id } }",
        json!({ "w": b1 }),
    )
    .await
    .str("createContent.id");
    let b_journey = b_gql(
        "mutation($w: ID!) { createJourney(input: {workspaceId: $w, name: \"B journey\",
           graph: {entry: {trigger: {type: \"event_performed\", event: \"B\"}, next: \"end\"}, steps: [{id: \"end\", type: \"exit\"}]}}) { id } }",
        json!({ "w": b1 }),
    )
    .await
    .str("createJourney.id");
    World {
        a_owner: a.owner_token,
        a1,
        a2,
        a1_key_id,
        a1_read_key,
        a1_write_key,
        b_owner: b.owner_token,
        b1,
        b1_key_id,
        b_user,
        b_membership,
        a_user,
        b_channel,
        b_content,
        b_journey,
    }
}

/// Every operation that takes an id, aimed by agency A's owner at agency B's objects.
fn attacks(w: &World) -> Vec<(&'static str, Value)> {
    vec![
        ("query($id: ID!) { workspace(id: $id) { id name } }", json!({ "id": w.b1 })),
        ("query($id: ID!) { apiKeys(workspaceId: $id) { edges { node { id } } } }", json!({ "id": w.b1 })),
        ("query($id: ID!) { auditLog(workspaceId: $id) { edges { node { id } } } }", json!({ "id": w.b1 })),
        ("query($id: ID!) { user(id: $id) { id email } }", json!({ "id": w.b_user })),
        (
            "mutation($id: ID!) { renameWorkspace(input: {id: $id, name: \"pwned\"}) { id } }",
            json!({ "id": w.b1 }),
        ),
        (
            "mutation($id: ID!) { createApiKey(input: {workspaceId: $id, name: \"x\", kind: SECRET, scopes: [READ]}) { secret } }",
            json!({ "id": w.b1 }),
        ),
        (
            "mutation($w: ID!, $k: ID!) { revokeApiKey(input: {workspaceId: $w, id: $k}) { id } }",
            json!({ "w": w.b1, "k": w.b1_key_id }),
        ),
        // B's key id through A's own workspace: still not found.
        (
            "mutation($w: ID!, $k: ID!) { revokeApiKey(input: {workspaceId: $w, id: $k}) { id } }",
            json!({ "w": w.a1, "k": w.b1_key_id }),
        ),
        (
            "mutation($u: ID!) { grantRole(input: {userId: $u, role: VIEWER}) { id } }",
            json!({ "u": w.b_user }),
        ),
        (
            "mutation($u: ID!, $w: ID!) { grantRole(input: {userId: $u, role: VIEWER, workspaceId: $w}) { id } }",
            json!({ "u": w.a_user, "w": w.b1 }),
        ),
        (
            "mutation($w: ID!) { createUser(input: {email: \"spy@a.test\", role: VIEWER, workspaceId: $w}) { user { id } } }",
            json!({ "w": w.b1 }),
        ),
        ("mutation($m: ID!) { revokeRole(membershipId: $m) { id } }", json!({ "m": w.b_membership })),
        ("mutation($u: ID!) { deactivateUser(userId: $u) { id } }", json!({ "u": w.b_user })),
        // Campaigns: B's workspace, and B's objects through A's own workspace.
        ("query($w: ID!) { channels(workspaceId: $w) { id } }", json!({ "w": w.b1 })),
        ("query($w: ID!, $id: ID!) { journey(workspaceId: $w, id: $id) { id } }", json!({ "w": w.b1, "id": w.b_journey })),
        ("query($w: ID!, $id: ID!) { journey(workspaceId: $w, id: $id) { id } }", json!({ "w": w.a1, "id": w.b_journey })),
        ("query($w: ID!, $id: ID!) { content(workspaceId: $w, id: $id) { id } }", json!({ "w": w.a1, "id": w.b_content })),
        ("query($w: ID!, $id: ID!) { journeyReport(workspaceId: $w, id: $id) { holdout } }", json!({ "w": w.a1, "id": w.b_journey })),
        ("mutation($w: ID!, $id: ID!) { publishJourney(workspaceId: $w, id: $id) { id } }", json!({ "w": w.a1, "id": w.b_journey })),
        (
            "mutation($w: ID!, $id: ID!) { setJourneyStatus(workspaceId: $w, id: $id, status: ARCHIVED) { id } }",
            json!({ "w": w.b1, "id": w.b_journey }),
        ),
        (
            "mutation($w: ID!, $id: ID!) { updateContent(workspaceId: $w, id: $id, name: \"pwned\") { id } }",
            json!({ "w": w.a1, "id": w.b_content }),
        ),
        (
            "mutation($w: ID!) { createChannel(input: {workspaceId: $w, name: \"spy\", kind: \"sms\",
               delivery: {adapter: \"webhook\", url: \"http://127.0.0.1:9/spy\"}}) { channel { id } } }",
            json!({ "w": w.b1 }),
        ),
        (
            "mutation($w: ID!, $c: ID!, $j: ID!) { updateJourney(input: {workspaceId: $w, id: $j, graph: {entry:
               {trigger: {type: \"event_performed\", event: \"x\"}, next: \"s\"}, steps: [{id: \"s\", type: \"send\",
               channel: $c, content: $c, next: \"e\"}, {id: \"e\", type: \"exit\"}]}}) { id } }",
            json!({ "w": w.b1, "c": w.b_channel, "j": w.b_journey }),
        ),
    ]
}

async fn another_agencys_ids_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let w = world(&app).await;
    for (query, variables) in attacks(&w) {
        let answer = app.gql(query, variables.clone(), Some(&w.a_owner)).await;
        assert_eq!(answer.code(), Some("NOT_FOUND"), "{query} {variables} answered {}", answer.body);
        assert!(
            answer.body["data"].is_null()
                || answer.body["data"].as_object().is_some_and(|d| d.values().all(Value::is_null))
        );
    }
    // Nothing changed on B's side.
    let b_keys = app
        .gql(
            "query($w: ID!) { apiKeys(workspaceId: $w) { edges { node { id revokedAt } } } }",
            json!({ "w": w.b1 }),
            Some(&w.b_owner),
        )
        .await;
    assert_eq!(b_keys.data("apiKeys.edges").as_array().unwrap().len(), 1);
    assert!(b_keys.data("apiKeys.edges").as_array().unwrap()[0]["node"]["revokedAt"].is_null());
    let b_ws = app
        .gql("query($w: ID!) { workspace(id: $w) { name } }", json!({ "w": w.b1 }), Some(&w.b_owner))
        .await;
    assert_eq!(b_ws.str("workspace.name"), "B one");
    // And the X-Workspace-Id header is no way around it.
    let via_header = app
        .gql_with_headers(
            "{ apiKeys { edges { node { id } } } }",
            json!({}),
            Some(&w.a_owner),
            &[("x-workspace-id", &w.b1)],
        )
        .await;
    via_header.expect_code("NOT_FOUND");
    // A's own world is listed, B's never.
    let listed =
        app.gql("{ workspaces(first: 100) { edges { node { id } } } }", json!({}), Some(&w.a_owner)).await;
    let ids: Vec<&str> = listed
        .data("workspaces.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(!ids.contains(&w.b1.as_str()));
}

async fn an_api_key_reaches_only_its_own_workspace(backend: Backend) {
    let app = spawn_app(backend).await;
    let w = world(&app).await;
    let key = Some(w.a1_read_key.as_str());
    let own = app.gql("query($w: ID!) { workspace(id: $w) { id } }", json!({ "w": w.a1 }), key).await;
    assert_eq!(own.str("workspace.id"), w.a1);
    for other in [&w.a2, &w.b1] {
        app.gql("query($w: ID!) { workspace(id: $w) { id } }", json!({ "w": other }), key)
            .await
            .expect_code("NOT_FOUND");
        app.gql(
            "query($w: ID!) { apiKeys(workspaceId: $w) { edges { node { id } } } }",
            json!({ "w": other }),
            key,
        )
        .await
        .expect_code("NOT_FOUND");
    }
    let listed = app.gql("{ workspaces { edges { node { id } } } }", json!({}), key).await;
    assert_eq!(listed.data("workspaces.edges").as_array().unwrap().len(), 1);
    // A read-scoped key cannot administer its own workspace, and keys never mint keys.
    app.gql("{ apiKeys { edges { node { id } } } }", json!({}), key).await.expect_code("FORBIDDEN");
    app.gql(
        "mutation($w: ID!) { createApiKey(input: {workspaceId: $w, name: \"x\", kind: WRITE}) { secret } }",
        json!({ "w": w.a1 }),
        key,
    )
    .await
    .expect_code("FORBIDDEN");
    // Any scope may read; administering needs the admin scope.
    let (_, admin_key) = app.create_api_key(&w.a_owner, &w.a1, "SECRET", &["ADMIN"]).await;
    app.gql("query($w: ID!) { workspace(id: $w) { id } }", json!({ "w": w.a1 }), Some(&admin_key))
        .await
        .data("workspace.id");
    app.gql("{ apiKeys { edges { node { id } } } }", json!({}), Some(&admin_key)).await.data("apiKeys");
    // A write key is for ingestion only.
    app.gql("query($w: ID!) { workspace(id: $w) { id } }", json!({ "w": w.a1 }), Some(&w.a1_write_key))
        .await
        .expect_code("FORBIDDEN");
    // Key for a workspace id it does not belong to: the embedded workspace is checked with the hash.
    let forged = w.a1_read_key.replacen(
        &uuid::Uuid::parse_str(&w.a1).unwrap().simple().to_string(),
        &uuid::Uuid::parse_str(&w.b1).unwrap().simple().to_string(),
        1,
    );
    app.gql("{ workspaces { edges { node { id } } } }", json!({}), Some(&forged))
        .await
        .expect_code("UNAUTHENTICATED");

    // lastUsedAt is tracked; revocation takes effect at once.
    let keys = app
        .gql(
            "query($w: ID!) { apiKeys(workspaceId: $w) { edges { node { id lastUsedAt prefix } } } }",
            json!({ "w": w.a1 }),
            Some(&w.a_owner),
        )
        .await;
    let read_key = keys
        .data("apiKeys.edges")
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["id"] == json!(w.a1_key_id))
        .unwrap()
        .clone();
    assert!(read_key["node"]["lastUsedAt"].is_string(), "lastUsedAt must be set after use: {read_key}");
    assert!(w.a1_read_key.starts_with("pss_"));
    assert!(!read_key.to_string().contains(&w.a1_read_key), "the secret is never returned again");
    app.gql(
        "mutation($w: ID!, $k: ID!) { revokeApiKey(input: {workspaceId: $w, id: $k}) { revokedAt } }",
        json!({ "w": w.a1, "k": w.a1_key_id }),
        Some(&w.a_owner),
    )
    .await
    .data("revokeApiKey.revokedAt");
    app.gql("{ workspaces { edges { node { id } } } }", json!({}), key).await.expect_code("UNAUTHENTICATED");
    let audit = app
        .gql(
            "query($w: ID!) { auditLog(workspaceId: $w) { edges { node { action targetId } } } }",
            json!({ "w": w.a1 }),
            Some(&w.a_owner),
        )
        .await;
    let entries = audit.data("auditLog.edges").as_array().unwrap();
    let about_key = |action: &str| {
        entries
            .iter()
            .any(|e| e["node"]["action"] == json!(action) && e["node"]["targetId"] == json!(w.a1_key_id))
    };
    assert!(about_key("api_key.created") && about_key("api_key.revoked"), "{}", audit.body);
}

async fn workspace_staff_see_only_their_workspace(backend: Backend) {
    let app = spawn_app(backend).await;
    let w = world(&app).await;
    let (_, a1_admin) = app.staff(&w.a_owner, "ADMIN", Some(&w.a1)).await;
    let listed = app.gql("{ workspaces { edges { node { id } } } }", json!({}), Some(&a1_admin)).await;
    assert_eq!(listed.data("workspaces.edges").as_array().unwrap().len(), 1);
    app.gql("query($w: ID!) { workspace(id: $w) { id } }", json!({ "w": w.a2 }), Some(&a1_admin))
        .await
        .expect_code("NOT_FOUND");
    // Administers A1: may create keys there, but not workspaces (agency-wide) nor keys in A2.
    app.create_api_key(&a1_admin, &w.a1, "WRITE", &[]).await;
    app.gql("mutation { createWorkspace(input: {name: \"x\"}) { id } }", json!({}), Some(&a1_admin))
        .await
        .expect_code("FORBIDDEN");
    app.gql(
        "mutation($w: ID!) { createApiKey(input: {workspaceId: $w, name: \"x\", kind: WRITE}) { secret } }",
        json!({ "w": w.a2 }),
        Some(&a1_admin),
    )
    .await
    .expect_code("NOT_FOUND");
    // Its audit view is A1's only.
    let audit = app
        .gql(
            "query($w: ID!) { auditLog(workspaceId: $w) { edges { node { workspaceId } } } }",
            json!({ "w": w.a1 }),
            Some(&a1_admin),
        )
        .await;
    assert!(
        audit
            .data("auditLog.edges")
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["node"]["workspaceId"] == json!(w.a1))
    );
    app.gql("{ auditLog { edges { node { id } } } }", json!({}), Some(&a1_admin))
        .await
        .expect_code("FORBIDDEN");
    // Nor does it see the agency's whole staff (people of other clients' workspaces).
    app.gql("{ users { edges { node { email } } } }", json!({}), Some(&a1_admin))
        .await
        .expect_code("FORBIDDEN");
    app.gql("query($u: ID!) { user(id: $u) { email } }", json!({ "u": w.a_user }), Some(&a1_admin))
        .await
        .expect_code("NOT_FOUND");
}

/// What each agency-wide role may do: `true` allowed, `false` refused with FORBIDDEN.
async fn every_role_is_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Roles").await;
    let ws = app.create_workspace(&agency.owner_token, "Client").await;
    let checks: [(&str, &str, [bool; 5]); 6] = [
        // operation, query, allowed for [owner, admin, marketer, analyst, viewer]
        ("workspace", "query($w: ID!) { workspace(id: $w) { id } }", [true, true, true, true, true]),
        ("workspaces", "{ workspaces { edges { node { id } } } }", [true, true, true, true, true]),
        (
            "apiKeys",
            "query($w: ID!) { apiKeys(workspaceId: $w) { edges { node { id } } } }",
            [true, true, false, false, false],
        ),
        ("users", "{ users { edges { node { id } } } }", [true, true, false, false, false]),
        ("auditLog", "{ auditLog { edges { node { id } } } }", [true, true, false, false, false]),
        (
            "createWorkspace",
            "mutation { createWorkspace(input: {name: \"new\"}) { id } }",
            [true, true, false, false, false],
        ),
    ];
    let roles = ["OWNER", "ADMIN", "MARKETER", "ANALYST", "VIEWER"];
    for (index, role) in roles.iter().enumerate() {
        let (_, token) = app.staff(&agency.owner_token, role, None).await;
        for (name, query, allowed) in &checks {
            let answer = app.gql(query, json!({ "w": ws }), Some(&token)).await;
            if allowed[index] {
                assert!(
                    answer.body.get("errors").is_none(),
                    "{role} must be allowed {name}: {}",
                    answer.body
                );
            } else {
                answer.expect_code("FORBIDDEN");
            }
        }
        let key = app
            .gql(
                "mutation($w: ID!) { createApiKey(input: {workspaceId: $w, name: \"k\", kind: WRITE}) { secret } }",
                json!({ "w": ws }),
                Some(&token),
            )
            .await;
        assert_eq!(key.code().is_none(), index <= 1, "{role} createApiKey: {}", key.body);
        let rename = app
            .gql(
                "mutation($w: ID!) { renameWorkspace(input: {id: $w, name: \"renamed\"}) { name } }",
                json!({ "w": ws }),
                Some(&token),
            )
            .await;
        assert_eq!(rename.code().is_none(), index <= 1, "{role} renameWorkspace: {}", rename.body);
        let invite = app
            .gql(
                "mutation { createUser(input: {email: \"x@y.test\", role: OWNER}) { user { id } } }",
                json!({}),
                Some(&token),
            )
            .await;
        // Only owners may make owners; the others are refused (the owner's success consumes the email).
        if index == 0 {
            assert!(invite.code().is_none(), "{}", invite.body);
        } else {
            invite.expect_code("FORBIDDEN");
        }
    }
}

/// From inside: the app role sees no tenant rows without the transaction-local setting, only
/// the named tenant's with it, and cannot write rows for another tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_row_level_security_binds_the_app_role() {
    let app = spawn_app(Backend::Postgres).await;
    let w = world(&app).await;
    let conn = Database::connect(app.settings.database_url.clone().unwrap()).await.unwrap();
    let count = |sql: &'static str| Statement::from_string(DbBackend::Postgres, sql);
    let total = conn.query_one_raw(count("SELECT count(*) AS n FROM api_keys")).await.unwrap().unwrap();
    assert_eq!(total.try_get::<i64>("", "n").unwrap(), 0, "no tenant setting must mean no rows");

    let txn = conn.begin().await.unwrap();
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT set_config('app.tenant_id', $1, true)",
        [w.a1.clone().into()],
    ))
    .await
    .unwrap();
    let visible = txn
        .query_one_raw(count("SELECT count(*) AS n, count(DISTINCT tenant_id) AS t FROM api_keys"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(visible.try_get::<i64>("", "n").unwrap(), 2, "A1 has two keys");
    assert_eq!(visible.try_get::<i64>("", "t").unwrap(), 1);
    let smuggle = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO api_keys (tenant_id, id, name, kind, scopes, prefix, secret_hash, created_at)
             VALUES ($1::uuid, gen_random_uuid(), 'x', 'secret', '[]', 'pss_x', 'x', now())",
            [w.b1.clone().into()],
        ))
        .await;
    assert!(smuggle.is_err(), "writing another tenant's row must be refused");
    txn.rollback().await.unwrap();

    // The setting was transaction-local: the pooled connection forgets it.
    let after = conn.query_one_raw(count("SELECT count(*) AS n FROM api_keys")).await.unwrap().unwrap();
    assert_eq!(after.try_get::<i64>("", "n").unwrap(), 0);
    let role = conn
        .query_one_raw(count(
            "SELECT rolsuper OR rolbypassrls AS bypass FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(!role.try_get::<bool>("", "bypass").unwrap());
}

on_both_backends!(
    another_agencys_ids_are_not_found,
    an_api_key_reaches_only_its_own_workspace,
    workspace_staff_see_only_their_workspace,
    every_role_is_enforced,
);

/// Replicas and workers that start together migrate the same database at the same moment:
/// every one of them must succeed (PostgreSQL refuses concurrent GRANTs unless they queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_starting_together_migrate_one_after_another() {
    let settings = passerelle_tests::fresh_postgres_settings().await;
    let runs = (0..4).map(|_| passerelle::migrate(&settings));
    for outcome in futures::future::join_all(runs).await {
        outcome.expect("every process migrates");
    }
}
