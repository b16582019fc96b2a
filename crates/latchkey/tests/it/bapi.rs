//! The Backend API's secret-key authentication.

use reqwest::StatusCode;

use crate::harness::{Backend, TestServer};

#[tokio::test]
async fn the_backend_api_needs_a_live_secret_key() {
    let server = TestServer::start(Backend::Sqlite).await;
    let b = server.browser();
    let none = b.get("/v1/jwks").await;
    assert_eq!((none.status, none.error_code()), (StatusCode::UNAUTHORIZED, "authentication_invalid"));
    assert_eq!(none.content_type(), "application/json");
    for wrong in ["sk_live_wrong", "pk_live_MTI3LjAuMC4xOjQwMDAk", "x"] {
        let r = b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(wrong)).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNAUTHORIZED, "clerk_key_invalid"), "{wrong}");
        assert!(r.body["clerk_trace_id"].is_string());
    }
    let (row, secret) = server.services.create_secret_key("test").await.unwrap();
    let ok = b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&secret)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.content_type(), "application/json");
    assert_eq!(ok.body["keys"][0]["alg"], "RS256");
    assert_eq!(ok.body["keys"], b.get("/.well-known/jwks.json").await.body["keys"]);
    let (_, second) = server.services.create_secret_key("second").await.unwrap();
    server.services.revoke_secret_key(&row.id).await.unwrap();
    assert_eq!(b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&secret)).await.error_code(), "clerk_key_invalid");
    assert_eq!(
        b.send(b.http.get(b.url("/v1/jwks")).bearer_auth(&second)).await.status,
        StatusCode::OK,
        "several keys per instance"
    );
    assert!(server.services.revoke_secret_key(&row.id).await.is_err(), "revoking twice is refused");
}
