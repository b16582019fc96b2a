//! `POST /v1/me/remove_password` (clerk-js `user.removePassword`, docs/frontend-api.md §9): the
//! current password and a recent check are needed, and the account must keep another way in;
//! every refusal leaves the password as it was.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{Browser, TestServer};
use crate::webhooks::Admin;

const PASSWORD: &str = "correct horse battery staple";

async fn remove(b: &Browser, current: &str) -> crate::harness::Reply {
    b.post("/v1/me/remove_password", &[("current_password", current)]).await
}

crate::both_backends!(a_password_is_removed_only_with_another_way_in, |backend| async move {
    let server = TestServer::start(backend).await;
    let b = server.browser();
    server.sign_up(&b, "ada@example.com", PASSWORD).await;

    let wrong = remove(&b, "not the password").await;
    assert_eq!((wrong.status, wrong.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_password_incorrect"));
    let missing = b.post("/v1/me/remove_password", &[]).await;
    assert_eq!((missing.status, missing.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_missing"));

    // A check older than Clerk's strict level (10 minutes) must be made again first.
    server.clock.advance_ms(11 * 60_000);
    let stale = remove(&b, PASSWORD).await;
    assert_eq!(
        (stale.status, stale.error_code()),
        (StatusCode::FORBIDDEN, "session_reverification_required"),
        "{}",
        stale.text
    );
    assert_eq!(
        server.sign_in(&server.browser(), "ada@example.com", PASSWORD).await.status,
        StatusCode::OK,
        "still there"
    );

    let fresh = server.browser();
    server.sign_in(&fresh, "ada@example.com", PASSWORD).await;
    let done = remove(&fresh, PASSWORD).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.body["response"]["password_enabled"], false);
    let again = remove(&fresh, PASSWORD).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "no_password_set"));
    let by_password = server.sign_in(&server.browser(), "ada@example.com", PASSWORD).await;
    assert_eq!(by_password.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", by_password.text);
});

crate::both_backends!(the_only_way_in_is_kept, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let created = admin.post("/v1/users", json!({"username": "solo_user", "password": PASSWORD})).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let b = server.browser();
    assert_eq!(server.sign_in(&b, "solo_user", PASSWORD).await.status, StatusCode::OK);
    let refused = remove(&b, PASSWORD).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "password_required"),
        "{}",
        refused.text
    );
    assert_eq!(
        server.sign_in(&server.browser(), "solo_user", PASSWORD).await.status,
        StatusCode::OK,
        "the password stays"
    );
});
