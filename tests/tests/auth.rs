//! Authentication end to end: login, refresh rotation and reuse detection, logout, lockout,
//! invitations, deactivation and the audit trail they leave.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passerelle_tests::{Backend, OWNER_PASSWORD, on_both_backends, spawn_app, spawn_app_with};
use sea_orm::ConnectionTrait;
use serde_json::json;

const ME: &str = "{ me { id email } }";
const REFRESH: &str = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Rotation").await;
    let first = app.login(&agency.owner_email, OWNER_PASSWORD).await;

    // A client still sending its stale access token can refresh all the same.
    let rotated = app.gql(REFRESH, json!({ "t": first.refresh_token }), Some("expired.or.garbage")).await;
    let second_refresh = rotated.str("refreshToken.refreshToken");
    let second_access = rotated.str("refreshToken.accessToken");
    assert_ne!(second_refresh, first.refresh_token);
    app.gql(ME, json!({}), Some(&second_access)).await.data("me.id");

    // Replaying the spent token is theft or a bug: it fails and kills the whole family.
    app.gql(REFRESH, json!({ "t": first.refresh_token }), None).await.expect_code("UNAUTHENTICATED");
    app.gql(REFRESH, json!({ "t": second_refresh }), None).await.expect_code("UNAUTHENTICATED");
    app.gql(ME, json!({}), Some(&second_access)).await.expect_code("UNAUTHENTICATED");
    // Other sessions of the same user are untouched.
    app.gql(ME, json!({}), Some(&agency.owner_token)).await.data("me.id");
    app.gql(REFRESH, json!({ "t": "prt_not-a-token" }), None).await.expect_code("UNAUTHENTICATED");
}

async fn logout_revokes_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Logout").await;
    let session = app.login(&agency.owner_email, OWNER_PASSWORD).await;
    let out = app
        .gql(
            "mutation($t: String) { logout(refreshToken: $t) }",
            json!({ "t": session.refresh_token }),
            Some(&session.access_token),
        )
        .await;
    assert_eq!(out.data("logout"), &json!(true));
    app.gql(ME, json!({}), Some(&session.access_token)).await.expect_code("UNAUTHENTICATED");
    app.gql(REFRESH, json!({ "t": session.refresh_token }), None).await.expect_code("UNAUTHENTICATED");
    app.gql("mutation { logout }", json!({}), None).await.expect_code("UNAUTHENTICATED");
}

async fn failed_logins_lock_out_without_revealing_the_email(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.auth.lockout_threshold = 3;
        s.auth.lockout_base_secs = 1;
    })
    .await;
    let agency = app.agency("Lockout").await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let unknown = "nobody@nowhere.test";
    let mut messages = Vec::new();
    for email in [agency.owner_email.as_str(), unknown] {
        for _ in 0..3 {
            let answer = app.gql(login, json!({ "e": email, "p": "wrong password!!" }), None).await;
            answer.expect_code("UNAUTHENTICATED");
            messages.push(answer.body["errors"][0]["message"].clone());
        }
        // Locked now, even with the right password, and the same way for both emails.
        let locked = app.gql(login, json!({ "e": email, "p": OWNER_PASSWORD }), None).await;
        locked.expect_code("RATE_LIMITED");
        assert!(locked.body["errors"][0]["extensions"]["retryAfter"].as_u64().unwrap() >= 1);
    }
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "failures must not reveal whether the email exists");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The lock grows: one more failure after it expires locks for twice as long.
    app.gql(login, json!({ "e": agency.owner_email, "p": "wrong password!!" }), None)
        .await
        .expect_code("UNAUTHENTICATED");
    let longer = app.gql(login, json!({ "e": agency.owner_email, "p": OWNER_PASSWORD }), None).await;
    longer.expect_code("RATE_LIMITED");
    assert_eq!(longer.body["errors"][0]["extensions"]["retryAfter"], json!(2), "{}", longer.body);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.login(&agency.owner_email, OWNER_PASSWORD).await;

    let audit = app
        .gql("{ auditLog(first: 50) { edges { node { action } } } }", json!({}), Some(&agency.owner_token))
        .await;
    let actions: Vec<&str> = audit
        .data("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "login.failed").count(), 4);
    assert!(actions.contains(&"login.succeeded"));
}

async fn invited_staff_choose_their_password_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Invites").await;
    let invited = app
        .gql(
            "mutation { createUser(input: {email: \"New.Person@Invites.test\", role: MARKETER}) {
               user { id email invitationPending } invitationToken } }",
            json!({}),
            Some(&agency.owner_token),
        )
        .await;
    assert_eq!(invited.str("createUser.user.email"), "new.person@invites.test");
    assert_eq!(invited.data("createUser.user.invitationPending"), &json!(true));
    let token = invited.str("createUser.invitationToken");
    let accept =
        "mutation($t: String!, $p: String!) { acceptInvitation(token: $t, password: $p) { accessToken } }";
    app.gql(accept, json!({ "t": token, "p": "short" }), None).await.expect_code("BAD_USER_INPUT");
    let accepted = app.gql(accept, json!({ "t": token, "p": "a long enough passphrase" }), None).await;
    let access = accepted.str("acceptInvitation.accessToken");
    assert_eq!(app.gql(ME, json!({}), Some(&access)).await.str("me.email"), "new.person@invites.test");
    app.gql(accept, json!({ "t": token, "p": "another long passphrase" }), None)
        .await
        .expect_code("UNAUTHENTICATED");
    app.login("new.person@invites.test", "a long enough passphrase").await;
    let duplicate = app
        .gql("mutation { createUser(input: {email: \"new.person@invites.test\", role: VIEWER}) { user { id } } }", json!({}), Some(&agency.owner_token))
        .await;
    duplicate.expect_code("CONFLICT");
}

async fn deactivation_and_role_changes_take_effect_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Deactivate").await;
    let workspace = app.create_workspace(&agency.owner_token, "Client").await;
    let (user_id, token) = app.staff(&agency.owner_token, "ADMIN", None).await;
    let workspaces = "{ workspaces { edges { node { id } } } }";
    assert_eq!(
        app.gql(workspaces, json!({}), Some(&token)).await.data("workspaces.edges").as_array().unwrap().len(),
        1
    );

    // Downgraded to viewer: the same token loses admin powers on its next request.
    let grant = app
        .gql(
            "mutation($u: ID!) { grantRole(input: {userId: $u, role: VIEWER}) { id role agencyWide } }",
            json!({ "u": user_id }),
            Some(&agency.owner_token),
        )
        .await;
    assert_eq!(grant.str("grantRole.role"), "VIEWER");
    app.gql("mutation { createWorkspace(input: {name: \"x\"}) { id } }", json!({}), Some(&token))
        .await
        .expect_code("FORBIDDEN");
    let revoked = app
        .gql(
            "mutation($m: ID!) { revokeRole(membershipId: $m) { role } }",
            json!({ "m": grant.str("grantRole.id") }),
            Some(&agency.owner_token),
        )
        .await;
    assert_eq!(revoked.str("revokeRole.role"), "VIEWER");
    app.gql("query($w: ID!) { workspace(id: $w) { id } }", json!({ "w": workspace }), Some(&token))
        .await
        .expect_code("NOT_FOUND");

    let deactivated = app
        .gql(
            "mutation($u: ID!) { deactivateUser(userId: $u) { active } }",
            json!({ "u": user_id }),
            Some(&agency.owner_token),
        )
        .await;
    assert_eq!(deactivated.data("deactivateUser.active"), &json!(false));
    app.gql(ME, json!({}), Some(&token)).await.expect_code("UNAUTHENTICATED");
    let me = app.gql(ME, json!({}), Some(&agency.owner_token)).await;
    let owner_id = me.str("me.id");
    app.gql(
        "mutation($u: ID!) { deactivateUser(userId: $u) { active } }",
        json!({ "u": owner_id }),
        Some(&agency.owner_token),
    )
    .await
    .expect_code("CONFLICT");

    let audit = app
        .gql(
            "{ auditLog(first: 100) { edges { node { action targetId } } } }",
            json!({}),
            Some(&agency.owner_token),
        )
        .await;
    let actions: Vec<String> = audit
        .data("auditLog.edges")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_owned())
        .collect();
    for expected in ["user.created", "role.granted", "role.revoked", "user.deactivated", "workspace.created"]
    {
        assert!(actions.iter().any(|a| a == expected), "{expected} missing from {actions:?}");
    }
}

async fn the_last_owner_cannot_be_removed(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Owners").await;
    let me = app
        .gql("{ me { id memberships { edges { node { id role } } } } }", json!({}), Some(&agency.owner_token))
        .await;
    let membership =
        me.data("me.memberships.edges").as_array().unwrap()[0]["node"]["id"].as_str().unwrap().to_owned();
    app.gql(
        "mutation($m: ID!) { revokeRole(membershipId: $m) { id } }",
        json!({ "m": membership }),
        Some(&agency.owner_token),
    )
    .await
    .expect_code("CONFLICT");
    let (admin_id, admin) = app.staff(&agency.owner_token, "ADMIN", None).await;
    // An admin can neither make themselves owner nor demote the owner.
    app.gql(
        "mutation($u: ID!) { grantRole(input: {userId: $u, role: OWNER}) { id } }",
        json!({ "u": admin_id }),
        Some(&admin),
    )
    .await
    .expect_code("FORBIDDEN");
    app.gql(
        "mutation($m: ID!) { revokeRole(membershipId: $m) { id } }",
        json!({ "m": membership }),
        Some(&admin),
    )
    .await
    .expect_code("FORBIDDEN");
}

async fn parallel_guesses_cannot_outrun_the_lockout(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.auth.lockout_threshold = 3;
        s.auth.lockout_base_secs = 60;
    })
    .await;
    let agency = app.agency("Parallel").await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let guesses = (0..12).map(|i| {
        let variables = json!({ "e": agency.owner_email, "p": format!("wrong guess number {i}") });
        app.gql(login, variables, None)
    });
    let answers = futures::future::join_all(guesses).await;
    let checked = answers.iter().filter(|a| a.code() == Some("UNAUTHENTICATED")).count();
    let refused = answers.iter().filter(|a| a.code() == Some("RATE_LIMITED")).count();
    assert_eq!(checked + refused, 12);
    assert!(
        (1..=3).contains(&checked),
        "at most the threshold's worth of guesses may be checked, {checked} were"
    );
}

async fn a_deactivated_owner_does_not_count_as_the_remaining_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Owners two").await;
    let (second_owner, _) = app.staff(&agency.owner_token, "OWNER", None).await;
    app.gql(
        "mutation($u: ID!) { deactivateUser(userId: $u) { active } }",
        json!({ "u": second_owner }),
        Some(&agency.owner_token),
    )
    .await
    .data("deactivateUser.active");
    let me = app
        .gql("{ me { memberships { edges { node { id } } } } }", json!({}), Some(&agency.owner_token))
        .await;
    let own = me.node_strings("me.memberships", "id")[0].clone();
    app.gql(
        "mutation($m: ID!) { revokeRole(membershipId: $m) { id } }",
        json!({ "m": own }),
        Some(&agency.owner_token),
    )
    .await
    .expect_code("CONFLICT");
}

/// A password hashed under older argon2 parameters is re-hashed with the current ones at the
/// next successful login: two app instances share one database, the second with stronger
/// settings.
async fn passwords_are_rehashed_when_the_parameters_change(backend: Backend) {
    let before = spawn_app(backend).await;
    let agency = before.agency("Rehash").await;
    let stored_hash = |settings: platform::Settings, email: String| async move {
        let conn = sea_orm::Database::connect(settings.app_database_url()).await.unwrap();
        let sql = match backend {
            Backend::Sqlite => "SELECT password_hash FROM users WHERE email = ?",
            Backend::Postgres => "SELECT password_hash FROM users WHERE email = $1",
        };
        let statement =
            sea_orm::Statement::from_sql_and_values(conn.get_database_backend(), sql, [email.into()]);
        let row = conn.query_one_raw(statement).await.unwrap().unwrap();
        row.try_get::<String>("", "password_hash").unwrap()
    };
    assert!(
        stored_hash(before.settings.clone(), agency.owner_email.clone()).await.contains("$m=19456,t=2,p=1$")
    );

    let shared = before.settings.clone();
    let after = spawn_app_with(backend, move |s| {
        s.database_url = Some(shared.app_database_url());
        s.migration_database_url = shared.migration_database_url.clone();
        s.auth.argon2_memory_kib = 24 * 1024;
        s.auth.argon2_iterations = 3;
    })
    .await;
    after.login(&agency.owner_email, OWNER_PASSWORD).await;
    let upgraded = stored_hash(before.settings.clone(), agency.owner_email.clone()).await;
    assert!(upgraded.contains("$argon2id$v=19$m=24576,t=3,p=1$"), "{upgraded}");
    // The upgraded hash still checks the same password, on either instance.
    after.login(&agency.owner_email, OWNER_PASSWORD).await;
}

on_both_backends!(
    passwords_are_rehashed_when_the_parameters_change,
    parallel_guesses_cannot_outrun_the_lockout,
    a_deactivated_owner_does_not_count_as_the_remaining_owner,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    logout_revokes_the_session,
    failed_logins_lock_out_without_revealing_the_email,
    invited_staff_choose_their_password_once,
    deactivation_and_role_changes_take_effect_at_once,
    the_last_owner_cannot_be_removed,
);
