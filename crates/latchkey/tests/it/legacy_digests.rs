//! Users imported with another system's password digest (Clerk's `password_hasher` values):
//! each signs in through the Frontend API with its password, a wrong one is refused, and the
//! first sign-in replaces the digest with argon2id. A malformed digest is refused at import
//! with the reason, and nothing is stored; so is `awscognito`, which no digest can stand for.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Backend, Browser, TestServer};

async fn imported_users_sign_in_and_move_to_argon2id(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = server.services.create_secret_key(&latchkey::operator(), "import").await.unwrap().1;
    let admin = Browser::new(&server.url);
    for (i, (hasher, password, digest)) in latchkey_core::legacy_digest::VECTORS.iter().enumerate() {
        let email = format!("imported{i}@example.com");
        let body = json!({"email_address": [email], "password_digest": digest, "password_hasher": hasher});
        let created = admin.send(admin.http.post(admin.url("/v1/users")).bearer_auth(&key).json(&body)).await;
        assert_eq!(created.status, StatusCode::OK, "{hasher}: {}", created.text);
        assert_eq!(created.body["password_enabled"], true, "{hasher}");
        let user_id = created.body["id"].as_str().unwrap().to_owned();

        let wrong = server.sign_in(&server.browser(), &email, "not the password").await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "{hasher}: {}", wrong.text);
        let signed_in = server.sign_in(&server.browser(), &email, password).await;
        assert_eq!(signed_in.status, StatusCode::OK, "{hasher}: {}", signed_in.text);
        assert_eq!(signed_in.body["response"]["status"], "complete", "{hasher}");

        let stored = server.store.get_user(&user_id).await.unwrap().unwrap().user.password_hash.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{hasher}: the digest was replaced, now {stored}");
        let again = server.sign_in(&server.browser(), &email, password).await;
        assert_eq!(again.status, StatusCode::OK, "{hasher}: the new argon2id hash holds the same password");
    }

    // A malformed digest: 422 naming the field and why, and no user.
    let body = json!({"email_address": ["broken@example.com"], "password_digest": "$2b$10$short", "password_hasher": "bcrypt"});
    let refused = admin.send(admin.http.post(admin.url("/v1/users")).bearer_auth(&key).json(&body)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    assert_eq!(refused.body["errors"][0]["meta"]["param_name"], "password_digest");
    assert!(refused.body["errors"][0]["long_message"].as_str().unwrap().contains("bcrypt"), "{}", refused.text);
    let list =
        admin.send(admin.http.get(admin.url("/v1/users?email_address=broken@example.com")).bearer_auth(&key)).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(0), "{}", list.text);
    // awscognito names a Cognito user pool, not a digest: refused, and the reason says so.
    let cognito = json!({"email_address": ["cognito@example.com"], "password_hasher": "awscognito",
        "password_digest": "awscognito#us-east-1_AbCdEf#client123#cognito@example.com"});
    let refused = admin.send(admin.http.post(admin.url("/v1/users")).bearer_auth(&key).json(&cognito)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.text);
    let reason = refused.body["errors"][0]["long_message"].as_str().unwrap();
    assert!(reason.contains("Cognito passwords cannot be imported") && reason.contains("reset"), "{reason}");
    let list =
        admin.send(admin.http.get(admin.url("/v1/users?email_address=cognito@example.com")).bearer_auth(&key)).await;
    assert_eq!(list.body.as_array().map(Vec::len), Some(0), "{}", list.text);
    // An argon2 digest asking for more work than a sign-in can bear (here terabytes, which
    // would abort the process at the first attempt) is refused at import.
    for params in ["m=4294967295,t=4294967295,p=1", "m=262145,t=1,p=1", "m=65536,t=17,p=1", "m=4096,t=1,p=17"] {
        let digest = format!("$argon2id$v=19${params}$c2FsdHNhbHQ$iGXEpMBTDYQ8G/71tF0qGjxRHEmR3gpGULcE93zUJVU");
        let body =
            json!({"email_address": ["heavy@example.com"], "password_digest": digest, "password_hasher": "argon2id"});
        let r = admin.send(admin.http.post(admin.url("/v1/users")).bearer_auth(&key).json(&body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{params}: {}", r.text);
        assert!(
            r.body["errors"][0]["long_message"].as_str().unwrap().contains("costs a sign-in can bear"),
            "{}",
            r.text
        );
    }
    let unknown = json!({"email_address": ["x@example.com"], "password_digest": "abc", "password_hasher": "rot13"});
    let r = admin.send(admin.http.post(admin.url("/v1/users")).bearer_auth(&key).json(&unknown)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid"));
}

crate::both_backends!(imported_digests, imported_users_sign_in_and_move_to_argon2id);
