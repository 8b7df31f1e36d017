//! Authentication, tokens, logout, roles and user management.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_hashed_expire_and_end_at_logout() {
    let shop = Shop::open("auth").await;
    let app = &shop.app;

    let wrong = app
        .post(
            "/api/authenticate",
            None,
            json!({ "email": "admin@example.com", "password": "not the password" }),
        )
        .await;
    wrong.expect_error(401, "invalid_credentials");
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
    let unknown = app
        .post(
            "/api/authenticate",
            None,
            json!({ "email": "nobody@example.com", "password": PASSWORD }),
        )
        .await;
    unknown.expect_error(401, "invalid_credentials");
    assert_eq!(
        wrong.json["error"]["message"], unknown.json["error"]["message"],
        "an unknown email and a wrong password look the same"
    );
    let missing = app
        .post("/api/authenticate", None, json!({ "email": "a@b.c" }))
        .await;
    missing.expect_error(400, "missing_field");
    assert_eq!(missing.field(), Some("password"));

    // Case-insensitive email; the response describes the token and user.
    let reply = app
        .post(
            "/api/authenticate",
            None,
            json!({ "email": "Admin@Example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.json["token"].as_str().unwrap().to_owned();
    assert_eq!(reply.json["token_type"], "Bearer");
    assert_eq!(reply.json["user"]["role"], "admin");
    assert!(reply.json["user"].get("password_hash").is_none());
    assert!(reply.json["expires_at"].as_str().unwrap().ends_with('Z'));

    // Only the SHA-256 is stored, with an expiry about TOKEN_TTL (24 h) ahead.
    let client = shop.tenant.superuser().await;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE token_hash = $1), \
                    count(*) FILTER (WHERE position($2::bytea in token_hash) > 0), \
                    max(extract(epoch FROM expiry - now()))::float8 \
             FROM public.tokens",
            &[
                &Sha256::digest(token.as_bytes()).to_vec(),
                &token.as_bytes(),
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, i64>(1), 0);
    let ttl: f64 = row.get(2);
    assert!((86_000.0..=86_400.0).contains(&ttl), "{ttl}");

    assert_eq!(app.get("/api/statuses", Some(&token)).await.status, 200);
    for header in ["Bearer", "Basic abc", "Bearer    ", "bearer nonsense-token"] {
        let reply = raw(
            app.addr,
            "GET",
            "/api/statuses",
            &[("Authorization", header)],
            b"",
        )
        .await;
        reply.expect_error(401, "invalid_token");
    }

    let out = app.post("/api/logout", Some(&token), json!({})).await;
    assert_eq!(out.status, 204, "{}", out.text);
    app.get("/api/statuses", Some(&token))
        .await
        .expect_error(401, "token_expired");

    // Expiry is enforced by the database clock.
    client
        .execute(
            "UPDATE public.tokens SET expiry = now() - interval '1 second' WHERE token_hash = $1",
            &[&Sha256::digest(shop.developer.as_bytes()).to_vec()],
        )
        .await
        .unwrap();
    app.get("/api/customers", Some(&shop.developer))
        .await
        .expect_error(401, "token_expired");

    // Signing in again clears the user's ended tokens (the one logged out above), not live ones.
    let ended_before: i64 = client
        .query_one(
            "SELECT count(*) FROM public.tokens t JOIN public.users u ON u.id = t.user_id \
             WHERE u.email = 'admin@example.com' AND t.expiry <= now()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ended_before >= 1, "the logged-out token is still there");
    let again = app
        .post(
            "/api/authenticate",
            None,
            json!({ "email": "admin@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE t.expiry <= now()), count(*) FILTER (WHERE t.expiry > now()) \
             FROM public.tokens t JOIN public.users u ON u.id = t.user_id \
             WHERE u.email = 'admin@example.com'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "ended tokens were removed");
    assert!(row.get::<_, i64>(1) >= 2, "live tokens were kept");
    assert_eq!(
        app.get("/api/statuses", Some(&shop.admin)).await.status,
        200,
        "the fixture's admin token still works"
    );
    shop.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_application_users() {
    let shop = Shop::open("users").await;
    let app = &shop.app;

    let list = app.get("/api/users", Some(&shop.admin)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(list.json["total"], 3);
    assert!(!list.text.contains("argon2"), "no password hashes leave");
    app.get("/api/users", Some(&shop.developer))
        .await
        .expect_error(403, "forbidden");

    let new = json!({
        "first_name": "Grace", "last_name": "Hopper", "email": "grace@example.com",
        "password": "cobol rules ok", "role": "developer"
    });
    app.post("/api/users", Some(&shop.developer), new.clone())
        .await
        .expect_error(403, "forbidden");
    let created = app.post("/api/users", Some(&shop.admin), new.clone()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let grace = created.json["id"].as_i64().unwrap();
    assert_eq!(created.json["role"], "developer");
    app.post("/api/users", Some(&shop.admin), new.clone())
        .await
        .expect_error(409, "duplicate");
    let mut weak = new.clone();
    weak["email"] = json!("weak@example.com");
    weak["password"] = json!("short");
    let weak = app.post("/api/users", Some(&shop.admin), weak).await;
    weak.expect_error(400, "invalid_field");
    assert_eq!(weak.field(), Some("password"));
    let mut bad_role = new.clone();
    bad_role["email"] = json!("role@example.com");
    bad_role["role"] = json!("owner");
    let bad_role = app.post("/api/users", Some(&shop.admin), bad_role).await;
    assert_eq!(bad_role.field(), Some("role"), "{}", bad_role.text);

    let login = app
        .post(
            "/api/authenticate",
            None,
            json!({ "email": "grace@example.com", "password": "cobol rules ok" }),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let grace_token = login.json["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/customers", Some(&grace_token)).await.status,
        200
    );

    let one = app
        .get(&format!("/api/users/{grace}"), Some(&shop.admin))
        .await;
    assert_eq!(one.json["email"], "grace@example.com");
    app.get("/api/users/999999", Some(&shop.admin))
        .await
        .expect_error(404, "not_found");

    // A role change takes effect at once; a password change ends existing sessions.
    let promoted = app
        .patch(
            &format!("/api/users/{grace}"),
            Some(&shop.admin),
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.text);
    assert_eq!(app.get("/api/users", Some(&grace_token)).await.status, 200);
    let repassworded = app
        .patch(
            &format!("/api/users/{grace}"),
            Some(&shop.admin),
            json!({ "password": "a brand new one" }),
        )
        .await;
    assert_eq!(repassworded.status, 200, "{}", repassworded.text);
    app.get("/api/users", Some(&grace_token))
        .await
        .expect_error(401, "token_expired");

    // Admins cannot lock themselves out.
    let me = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "admin@example.com")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    app.delete(&format!("/api/users/{me}"), Some(&shop.admin))
        .await
        .expect_error(409, "own_account");
    app.patch(
        &format!("/api/users/{me}"),
        Some(&shop.admin),
        json!({ "role": "customer" }),
    )
    .await
    .expect_error(409, "own_role");

    let deleted = app
        .delete(&format!("/api/users/{grace}"), Some(&shop.admin))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    app.delete(&format!("/api/users/{grace}"), Some(&shop.admin))
        .await
        .expect_error(404, "not_found");
    assert_eq!(shop.tenant.count("users").await, 3);
    shop.app.stop().await;
}
