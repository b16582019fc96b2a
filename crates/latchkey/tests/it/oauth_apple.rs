//! Sign in with Apple's `response_mode=form_post` (docs/identity-providers.md): the provider
//! posts the code back cross-site; `POST /v1/oauth_callback` passes the origin guard and turns
//! it into the same GET on latchkey's origin, where the browser's cookies and the state decide.
//! The loopback OpenID Provider stands in for Apple (the preset, its issuer replaced). Also: a
//! provider that cannot be reached gets a page that says so on the hosted pages, not a 5xx.

use latchkey_service::oauth::ProviderConfig;
use reqwest::StatusCode;

use crate::both_backends;
use crate::harness::{Browser, TestServer};
use crate::oauth::{begin, path_of, signed_in_user, OpenIdProvider, APP_HOME};

/// The `name="…" value="…"` pairs of the provider's auto-submitting form.
fn form_fields(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&").replace("&quot;", "\"").replace("&#x2F;", "/"))
    };
    html.split("<input").skip(1).filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?))).collect()
}

/// Goes through the provider as `who` up to its form post: the fields it posts back.
async fn at_provider_form(b: &Browser, url: &str, who: &str) -> Vec<(String, String)> {
    let mut next = format!("{url}&login_hint={who}");
    for _ in 0..10 {
        let r = b.http.get(&next).send().await.unwrap();
        if r.status().is_redirection() {
            let to = r.headers()["location"].to_str().unwrap().to_owned();
            next = url::Url::parse(&next).unwrap().join(&to).unwrap().to_string();
            continue;
        }
        assert_eq!(r.status(), StatusCode::OK, "{next}");
        return form_fields(&r.text().await.unwrap());
    }
    panic!("the provider never posted back");
}

both_backends!(apple_posts_the_code_back_and_the_browser_signs_in, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = TestServer::start_with(backend, |c| {
        let apple = ProviderConfig {
            preset: Some("apple".into()),
            scopes: Some(vec!["openid".into(), "email".into()]),
            ..provider.config("acme-client")
        };
        c.oauth.insert("apple".into(), apple);
    })
    .await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;

    let b = server.browser();
    let url = begin(&b, "oauth_apple").await;
    assert!(url.contains("response_mode=form_post"), "{url}");
    let fields = at_provider_form(&b, &url, "g-ada").await;
    assert!(fields.iter().any(|(k, _)| k == "code") && fields.iter().any(|(k, _)| k == "state"), "{fields:?}");

    // The provider's page posts cross-site: no cookie rides along, and the guard lets it by.
    let posted = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut form = fields.clone();
    form.push(("user".into(), r#"{"name":{"firstName":"Ada"}}"#.into()));
    let r = posted
        .post(format!("{}/v1/oauth_callback", server.url))
        .header("origin", provider.issuer.as_str())
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/v1/oauth_callback?state=") && to.contains("&code=") && !to.contains("user="), "{to}");
    assert!(r.headers().get("set-cookie").is_none());

    // The same GET in the browser that started: signed in.
    let done = b.get(&to).await;
    assert_eq!((done.status, done.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_HOME));
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(ada.as_str()));
    assert_eq!(server.store.external_accounts_for_user(&ada).await.unwrap()[0].provider, "oauth_apple");

    // Another browser following the same post gets nothing: the state is not its client's.
    let other = server.browser();
    other.post("/v1/client", &[]).await;
    let r = other.get(&path_of(&server, &format!("{}{to}", server.url))).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "oauth_state_invalid"));
});

both_backends!(a_provider_that_is_down_gets_a_clear_page_not_a_5xx, |backend| async move {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = TestServer::start_with(backend, |c| {
        let down = ProviderConfig {
            client_id: "c".into(),
            client_secret: latchkey_core::secret::ConfigSecret::new("s".to_owned()),
            issuer: Some(dead),
            name: Some("Down".into()),
            ..ProviderConfig::default()
        };
        c.oauth.insert("down".into(), down);
    })
    .await;
    let b = server.browser();
    let csrf = crate::pages::form(&b, "/sign-in").await;
    let r = b.post("/sign-in/oauth", &[("csrf", csrf.as_str()), ("strategy", "oauth_custom_down")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("cannot be reached right now") && r.text.contains("Back to sign in"), "{}", r.text);
    assert_eq!(signed_in_user(&b).await, None);

    // Connecting it from /user says the same.
    server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let me = server.browser();
    server.sign_in(&me, "ada@example.com", "ada's long passphrase").await;
    let csrf = crate::pages::form(&me, "/user").await;
    let r = me.post("/user/accounts/connect", &[("csrf", csrf.as_str()), ("strategy", "oauth_custom_down")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("cannot be reached right now"), "{}", r.text);
});
