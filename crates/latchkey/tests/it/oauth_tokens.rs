//! The provider's access token a backend asks for, renewed once expired
//! (docs/identity-providers.md, "Provider tokens for a backend"), against the loopback OpenID
//! Provider. Latchkey decides by its own clock (advanced here); the provider accepts or refuses
//! tokens by real time, so what it accepts is checked with real tokens.

use latchkey_store::ExternalAccountRow;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestServer;
use crate::oauth::{sign_in_as, start, OpenIdProvider};
use crate::webhooks::Admin;

const HOUR_MS: i64 = 60 * 60 * 1000;

/// Ada, signed up with a password, then signed in with the provider: her user id.
async fn ada_signed_in(server: &TestServer) -> String {
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let r = sign_in_as(server, &server.browser(), "oauth_google", "g-ada").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    ada
}

async fn stored(server: &TestServer, user_id: &str) -> ExternalAccountRow {
    let mut accounts = server.store.external_accounts_for_user(user_id).await.unwrap();
    assert_eq!(accounts.len(), 1);
    accounts.remove(0)
}

/// The Backend API's answer for the user's Google account: (token, expires_at in seconds).
async fn access_token(admin: &Admin, user_id: &str) -> (String, i64) {
    let r = admin.get(&format!("/v1/users/{user_id}/oauth_access_tokens/oauth_google")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let t = &r.body[0];
    (t["token"].as_str().unwrap().to_owned(), t["expires_at"].as_i64().unwrap())
}

/// Who the provider's userinfo endpoint says the token belongs to (`None`: refused).
async fn userinfo(provider: &OpenIdProvider, token: &str) -> Option<String> {
    let r = reqwest::Client::new().get(format!("{}/me", provider.issuer)).bearer_auth(token).send().await.unwrap();
    if !r.status().is_success() {
        return None;
    }
    r.json::<Value>().await.unwrap()["sub"].as_str().map(str::to_owned)
}

both_backends!(an_expired_token_is_renewed_with_the_refresh_token, |backend| async move {
    let provider = OpenIdProvider::start().await;
    provider.control(json!({"refresh_tokens": true})).await;
    let server = start(&provider, backend).await;
    let admin = Admin::new(&server).await;
    let ada = ada_signed_in(&server).await;
    let signed_in = stored(&server, &ada).await;
    assert!(signed_in.refresh_token_sealed.is_some(), "the provider issued a refresh token");

    // Still valid: handed out as stored, nothing written.
    let (first, _) = access_token(&admin, &ada).await;
    assert_eq!(stored(&server, &ada).await, signed_in);

    // Expired by latchkey's clock: renewed at the provider, and the new one works there.
    server.clock.advance_ms(2 * HOUR_MS);
    let (renewed, expires_at) = access_token(&admin, &ada).await;
    assert_ne!(renewed, first);
    assert_eq!(userinfo(&provider, &renewed).await.as_deref(), Some("g-ada"));
    let now_s = server.services.now() / 1000;
    assert!(expires_at > now_s + 60 && expires_at <= now_s + 3600, "{expires_at} vs {now_s}");
    let after = stored(&server, &ada).await;
    let sealed = after.access_token_sealed.as_deref().unwrap();
    assert_ne!(Some(sealed), signed_in.access_token_sealed.as_deref());
    assert!(!sealed.contains(&renewed), "stored sealed");
    assert_eq!(after.token_expires_at.map(|ms| ms / 1000), Some(expires_at));
    // The provider kept its refresh token: so does latchkey.
    assert_eq!(after.refresh_token_sealed, signed_in.refresh_token_sealed);
    assert!(after.approved_scopes.split(' ').any(|s| s == "openid"), "{}", after.approved_scopes);
    // Valid again: the same token, not renewed twice.
    assert_eq!(access_token(&admin, &ada).await.0, renewed);
    assert_eq!(stored(&server, &ada).await, after);

    // A provider that rotates refresh tokens: the new one replaces the old (the old one is
    // spent: using it again would make the provider revoke the grant).
    provider.control(json!({"rotate_refresh_tokens": true})).await;
    server.clock.advance_ms(2 * HOUR_MS);
    let (rotated, _) = access_token(&admin, &ada).await;
    assert_ne!(rotated, renewed);
    let after_rotation = stored(&server, &ada).await;
    assert_ne!(after_rotation.refresh_token_sealed, after.refresh_token_sealed);
    server.clock.advance_ms(2 * HOUR_MS);
    let (next, _) = access_token(&admin, &ada).await;
    assert_ne!(next, rotated);
    assert_eq!(userinfo(&provider, &next).await.as_deref(), Some("g-ada"));

    // Two backends asking at once after expiry: one refresh, both get the same working token
    // (two refreshes with one rotating refresh token would revoke the grant).
    server.clock.advance_ms(2 * HOUR_MS);
    let path = format!("/v1/users/{ada}/oauth_access_tokens/oauth_google");
    let (one, two) = tokio::join!(admin.get(&path), admin.get(&path));
    assert_eq!((one.status, two.status), (StatusCode::OK, StatusCode::OK), "{} {}", one.text, two.text);
    let token = one.body[0]["token"].as_str().unwrap();
    assert_eq!(Some(token), two.body[0]["token"].as_str());
    assert_ne!(token, next);
    assert_eq!(userinfo(&provider, token).await.as_deref(), Some("g-ada"));
});

both_backends!(a_refused_refresh_changes_nothing, |backend| async move {
    let provider = OpenIdProvider::start().await;
    provider.control(json!({"refresh_tokens": true})).await;
    let server = start(&provider, backend).await;
    let admin = Admin::new(&server).await;
    let ada = ada_signed_in(&server).await;
    let before = stored(&server, &ada).await;
    let (first, _) = access_token(&admin, &ada).await;
    server.clock.advance_ms(2 * HOUR_MS);
    let path = format!("/v1/users/{ada}/oauth_access_tokens/oauth_google");

    // The provider is down: 503, try again later; the stored tokens stay.
    provider.control(json!({"down": true})).await;
    let r = admin.get(&path).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "oauth_provider_unavailable"),
        "{}",
        r.text
    );
    assert_eq!(stored(&server, &ada).await, before);
    provider.control(json!({"down": false})).await;

    // The provider forgot the grant (the person revoked it): it refuses the refresh token,
    // which is Clerk's 400 oauth_token_retrieval_error; the stored tokens stay.
    provider.control(json!({"revoke_grants": true})).await;
    let r = admin.get(&path).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "oauth_token_retrieval_error"), "{}", r.text);
    assert_eq!(r.body["errors"][0]["long_message"], "Failed to retrieve a new access token from the OAuth provider");
    assert!(!r.text.contains("invalid_grant"), "the provider's words stay in the log: {}", r.text);
    assert_eq!(stored(&server, &ada).await, before);
    assert_eq!(userinfo(&provider, &first).await, None, "the grant is gone at the provider");

    // Signing in again grants anew: the tokens work again. (The provider's ID token is checked
    // against latchkey's clock: back to the real time of the first sign-in.)
    server.clock.set_ms(before.updated_at);
    sign_in_as(&server, &server.browser(), "oauth_google", "g-ada").await;
    server.clock.advance_ms(2 * HOUR_MS);
    let (token, _) = access_token(&admin, &ada).await;
    assert_eq!(userinfo(&provider, &token).await.as_deref(), Some("g-ada"));
});

both_backends!(without_a_refresh_token_the_stored_token_is_returned, |backend| async move {
    // The provider issues no refresh token (its default without offline_access).
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let admin = Admin::new(&server).await;
    let ada = ada_signed_in(&server).await;
    let before = stored(&server, &ada).await;
    assert_eq!(before.refresh_token_sealed, None);
    let (token, expires_at) = access_token(&admin, &ada).await;

    // Expired: the stored token all the same, its expiry in the past for the caller to see.
    server.clock.advance_ms(2 * HOUR_MS);
    let (expired, same_expiry) = access_token(&admin, &ada).await;
    assert_eq!((expired.as_str(), same_expiry), (token.as_str(), expires_at));
    assert!(same_expiry < server.services.now() / 1000);
    assert_eq!(stored(&server, &ada).await, before);
});
