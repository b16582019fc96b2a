//! Connecting another account at an identity provider while signed in
//! (docs/identity-providers.md, "Connecting an account"), through the Frontend API and the
//! hosted `/user` page, against the loopback OpenID Provider; each refusal joins nothing.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use crate::oauth::{at_provider, path_of, sign_in_as, signed_in_user, start, OpenIdProvider, APP_CALLBACK, APP_HOME};

/// Starts connecting `strategy` (or reauthorizing `reauthorize`) from a signed-in browser.
async fn connect(b: &Browser, strategy: &str, reauthorize: Option<&str>, extra: &[(&str, &str)]) -> Reply {
    let mut form =
        vec![("strategy", strategy), ("redirect_url", APP_CALLBACK), ("action_complete_redirect_url", APP_HOME)];
    form.extend_from_slice(extra);
    match reauthorize {
        Some(id) => {
            b.send(b.http.patch(b.url(&format!("/v1/me/external_accounts/{id}/reauthorize"))).form(&form)).await
        }
        None => b.post("/v1/me/external_accounts", &form).await,
    }
}

/// Goes through the provider as `who` and back: the callback's answer.
async fn trip(server: &TestServer, b: &Browser, started: &Reply, who: &str) -> (Reply, String) {
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let url = started.body["response"]["verification"]["external_verification_redirect_url"].as_str().unwrap();
    let back = at_provider(server, b, url, who).await;
    (b.get(&path_of(server, &back)).await, back)
}

async fn accounts(b: &Browser) -> Vec<Value> {
    b.get("/v1/me").await.body["response"]["external_accounts"].as_array().cloned().unwrap_or_default()
}

both_backends!(a_signed_in_user_connects_another_account, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let b = server.browser();
    server.sign_in(&b, "ada@example.com", "ada's long passphrase").await;

    // The answer is the account as Clerk shows one on its way: unverified, and where to go.
    let started = connect(&b, "oauth_google", None, &[]).await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let pending = &started.body["response"];
    assert_eq!((pending["object"].as_str(), pending["provider"].as_str()), (Some("external_account"), Some("google")));
    assert_eq!(pending["verification"]["status"], "unverified");
    assert_eq!(pending["verification"]["strategy"], "oauth_google");
    let id = pending["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("eac_"), "{id}");
    assert!(accounts(&b).await.is_empty(), "nothing is joined before the provider answers");

    // Any account of the person's at the provider, whatever its address (solo@example.com).
    let (done, back) = trip(&server, &b, &started, "g-solo").await;
    assert_eq!((done.status, done.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_HOME));
    assert!(!done.set_cookies().iter().any(|c| c.starts_with("__client=")), "the session stays as it was");
    let joined = accounts(&b).await;
    assert_eq!(joined.len(), 1);
    assert_eq!((joined[0]["id"].as_str(), joined[0]["provider_user_id"].as_str()), (Some(id.as_str()), Some("g-solo")));
    assert_eq!(joined[0]["verification"]["status"], "verified");

    // The same callback again is spent.
    let replay = b.get(&path_of(&server, &back)).await;
    assert_eq!(
        (replay.status, replay.error_code()),
        (StatusCode::BAD_REQUEST, "oauth_state_invalid"),
        "{}",
        replay.text
    );

    // It is a way in now: Ada signs in with it.
    let elsewhere = server.browser();
    sign_in_as(&server, &elsewhere, "oauth_google", "g-solo").await;
    assert_eq!(signed_in_user(&elsewhere).await.as_deref(), Some(ada.as_str()));

    // Reauthorized for more scopes: the same account, asked again.
    let again = connect(&b, "", Some(&id), &[("additional_scope", "offline_access")]).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["response"]["id"], id.as_str());
    assert_eq!(again.body["response"]["provider_user_id"], "g-solo");
    let url = again.body["response"]["verification"]["external_verification_redirect_url"].as_str().unwrap();
    let scope: String = url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == "scope").unwrap().1.into_owned();
    assert!(scope.split(' ').any(|s| s == "offline_access") && scope.split(' ').any(|s| s == "openid"), "{scope}");
    let (done, _) = trip(&server, &b, &again, "g-solo").await;
    assert_eq!(done.headers["location"], APP_HOME);
    assert_eq!(accounts(&b).await.len(), 1);
    // Reauthorizing with another person at the provider changes nothing.
    let other = connect(&b, "", Some(&id), &[]).await;
    let (done, _) = trip(&server, &b, &other, "g-new").await;
    assert_eq!(done.headers["location"], format!("{APP_CALLBACK}?connect_error=external_account_mismatch"));
    assert_eq!(accounts(&b).await[0]["provider_user_id"], "g-solo");
    assert!(server.store.external_account_by_subject("oauth_google", "g-new").await.unwrap().is_none());
});

both_backends!(connections_that_must_not_join_join_nothing, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    // g-new belongs to Nell.
    let nell = server.browser();
    sign_in_as(&server, &nell, "oauth_google", "g-new").await;
    let up = nell.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    let nell_id = up.body["response"]["created_user_id"].as_str().unwrap().to_owned();
    let b = server.browser();
    server.sign_in(&b, "ada@example.com", "ada's long passphrase").await;

    // Signed out: 401; bad input: 422 naming the field.
    let out = server.browser();
    assert_eq!(connect(&out, "oauth_google", None, &[]).await.status, StatusCode::UNAUTHORIZED);
    for (strategy, extra, code, param) in [
        ("oauth_github", vec![], "strategy_for_user_invalid", "strategy"),
        ("", vec![], "form_param_missing", "strategy"),
        ("oauth_google", vec![("additional_scope", "a\"b")], "form_param_format_invalid", "additional_scope"),
    ] {
        let r = connect(&b, strategy, None, &extra).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, code), "{}", r.text);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], param);
    }
    let r = b
        .post("/v1/me/external_accounts", &[("strategy", "oauth_google"), ("redirect_url", "https://evil.test/cb")])
        .await;
    assert_eq!((r.status, r.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid"));
    let r = connect(&b, "", Some("eac_missing"), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);

    // Someone else's provider account is never moved.
    let (done, _) = trip(&server, &b, &connect(&b, "oauth_google", None, &[]).await, "g-new").await;
    assert_eq!(done.headers["location"], format!("{APP_CALLBACK}?connect_error=external_account_exists"));
    assert_eq!(
        server.store.external_account_by_subject("oauth_google", "g-new").await.unwrap().unwrap().user_id,
        nell_id
    );
    // The person says no at the provider.
    let (done, _) = trip(&server, &b, &connect(&b, "oauth_google", None, &[]).await, "deny").await;
    assert_eq!(done.headers["location"], format!("{APP_CALLBACK}?connect_error=oauth_access_denied"));
    // Another browser cannot bring the trip back, nor can this one once signed out.
    let started = connect(&b, "oauth_google", None, &[]).await;
    let url =
        started.body["response"]["verification"]["external_verification_redirect_url"].as_str().unwrap().to_owned();
    let back = at_provider(&server, &b, &url, "g-solo").await;
    let stranger = server.browser();
    stranger.post("/v1/client", &[]).await;
    let r = stranger.get(&path_of(&server, &back)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "oauth_state_invalid"), "{}", r.text);
    let sid = b.get("/v1/client").await.body["response"]["last_active_session_id"].as_str().unwrap().to_owned();
    assert_eq!(b.post(&format!("/v1/client/sessions/{sid}/remove"), &[]).await.status, StatusCode::OK);
    let r = b.get(&path_of(&server, &back)).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "oauth_state_invalid"), "{}", r.text);
    assert!(server.store.external_accounts_for_user(&ada).await.unwrap().is_empty());
    assert!(server.store.external_account_by_subject("oauth_google", "g-solo").await.unwrap().is_none());
});

both_backends!(the_profile_page_connects_an_account, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let b = server.browser();
    server.sign_in(&b, "ada@example.com", "ada's long passphrase").await;
    let page = b.get("/user").await;
    assert!(page.text.contains("Connect Google") && page.text.contains("Connect Acme"), "{}", page.text);
    let csrf = crate::pages::form(&b, "/user").await;

    let r = b.post("/user/accounts/connect", &[("csrf", csrf.as_str()), ("strategy", "oauth_custom_acme")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let to_provider = r.headers["location"].to_str().unwrap().to_owned();
    assert!(to_provider.starts_with(&provider.issuer), "{to_provider}");
    let back = at_provider(&server, &b, &to_provider, "g-ada").await;
    let done = b.get(&path_of(&server, &back)).await;
    assert_eq!(done.headers["location"], "/user?notice=account_connected");
    let page = b.get("/user?notice=account_connected").await;
    assert!(page.text.contains("Account connected.") && !page.text.contains("Connect Acme"), "{}", page.text);
    assert_eq!(server.store.external_accounts_for_user(&ada).await.unwrap()[0].provider, "oauth_custom_acme");

    // A refusal comes back in words.
    let r = b.post("/user/accounts/connect", &[("csrf", csrf.as_str()), ("strategy", "oauth_google")]).await;
    let back = at_provider(&server, &b, r.headers["location"].to_str().unwrap(), "deny").await;
    let done = b.get(&path_of(&server, &back)).await;
    assert_eq!(done.headers["location"], "/user?connect_error=oauth_access_denied");
    let page = b.get("/user?connect_error=oauth_access_denied").await;
    assert!(page.text.contains("You did not grant access"), "{}", page.text);
    assert_eq!(server.store.external_accounts_for_user(&ada).await.unwrap().len(), 1);
});
