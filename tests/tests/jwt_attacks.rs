//! Forged and mangled access tokens are all `UNAUTHENTICATED`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use passerelle_tests::{Backend, on_both_backends, spawn_app, spawn_app_with};
use serde_json::{Value, json};

const ME: &str = "{ me { id } }";

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, kid: Option<&str>, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

async fn forged_tokens_are_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let agency = app.agency("Jwt").await;
    let genuine = agency.owner_token.clone();
    app.gql(ME, json!({}), Some(&genuine)).await.data("me.id");

    let (kid, secret) = app.jwt_spec.split_once(':').unwrap();
    let secret = STANDARD.decode(secret).unwrap();
    let claims = claims_of(&genuine);
    let now = chrono::Utc::now().timestamp();
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    // Sanity: the harness can mint a valid token, so each failure below is the mutation's.
    app.gql(ME, json!({}), Some(&sign(&claims, Some(kid), &secret))).await.data("me.id");

    let header_none = URL_SAFE_NO_PAD.encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut forged: Vec<(&str, String)> = vec![
        ("alg none", format!("{header_none}.{body}.")),
        ("wrong key", sign(&claims, Some(kid), b"another secret that is long enough!!")),
        ("expired", sign(&with("exp", json!(now - 120)), Some(kid), &secret)),
        ("not yet valid", sign(&with("nbf", json!(now + 600)), Some(kid), &secret)),
        ("wrong audience", sign(&with("aud", json!("someone-else")), Some(kid), &secret)),
        ("wrong issuer", sign(&with("iss", json!("evil")), Some(kid), &secret)),
        ("no kid", sign(&claims, None, &secret)),
        ("unknown kid", sign(&claims, Some("other"), &secret)),
        ("other agency", sign(&with("agency", json!(uuid::Uuid::now_v7())), Some(kid), &secret)),
        ("garbage", "not.a.jwt".into()),
    ];
    let mut missing_exp = claims.clone();
    missing_exp.as_object_mut().unwrap().remove("exp");
    forged.push(("missing exp", sign(&missing_exp, Some(kid), &secret)));
    // Tampered payload: a valid signature over other claims.
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered_body = URL_SAFE_NO_PAD.encode(with("sub", json!(uuid::Uuid::now_v7())).to_string());
    forged.push(("tampered payload", format!("{}.{}.{}", parts[0], tampered_body, parts[2])));
    let hs512 = jsonwebtoken::encode(
        &Header { kid: Some(kid.into()), ..Header::new(Algorithm::HS512) },
        &claims,
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    forged.push(("other algorithm", hs512));

    for (attack, token) in forged {
        let answer = app.gql(ME, json!({}), Some(&token)).await;
        assert_eq!(answer.code(), Some("UNAUTHENTICATED"), "{attack}: {}", answer.body);
        assert!(answer.body["data"].is_null(), "{attack} must not execute");
    }
    app.gql(ME, json!({}), None).await.expect_code("UNAUTHENTICATED");
}

async fn keys_rotate_without_logging_anyone_out(backend: Backend) {
    let old = tenancy::JwtKeys::generate_spec().replacen('k', "old", 1);
    let new = tenancy::JwtKeys::generate_spec().replacen('k', "new", 1);
    let rotating = format!("{new},{old}");
    let app = spawn_app_with(backend, move |s| s.auth.jwt_keys = Some(rotating)).await;
    let agency = app.agency("Rotate").await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(agency.owner_token.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert!(header["kid"].as_str().unwrap().starts_with("new"), "the first key signs");
    let (old_kid, old_secret) = old.split_once(':').unwrap();
    let by_old_key =
        sign(&claims_of(&agency.owner_token), Some(old_kid), &STANDARD.decode(old_secret).unwrap());
    app.gql(ME, json!({}), Some(&by_old_key)).await.data("me.id");
}

on_both_backends!(forged_tokens_are_unauthenticated, keys_rotate_without_logging_anyone_out);
