//! Sign-in with GitHub (docs/identity-providers.md, "GitHub and Discord"): plain OAuth 2.0 and
//! GitHub's user API, against the loopback stand-in of `github_standin.rs` (GitHub has no
//! local implementation). The same linking rules as OpenID Connect: only a verified primary
//! address joins an account; each refusal signs in nobody and joins nothing.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::{Browser, Reply, TestServer};
use github_standin::{GitHubAccount, GitHubStandIn, UserApi};

/// GitHub's stand-in lives beside this file and serves these tests only.
#[path = "github_standin.rs"]
mod github_standin;

const APP_CALLBACK: &str = "http://app.test:3000/sso-callback";
const APP_HOME: &str = "http://app.test:3000/home";

fn accounts() -> Vec<GitHubAccount> {
    let account = |id, login, name, emails| GitHubAccount { id, login, name, emails };
    vec![
        account(
            1001,
            "ada-l",
            Some("Ada Lovelace"),
            vec![("ada@work.example", false, true), ("ada@example.com", true, true)],
        ),
        // The victim's address, as Eve's primary one, which GitHub has not verified.
        account(1002, "eve", Some("Eve"), vec![("victim@example.com", true, false), ("eve@example.com", false, true)]),
        // The victim's address verified, but not Mallory's primary one.
        account(1003, "mallory", None, vec![("mallory@example.com", true, true), ("victim@example.com", false, true)]),
        account(1004, "nell", Some("Nell Newcomer"), vec![("nell@example.com", true, true)]),
    ]
}

async fn start(backend: crate::harness::Backend) -> (GitHubStandIn, TestServer) {
    let github = GitHubStandIn::start(accounts()).await;
    let config = github.config();
    let server = TestServer::start_with(backend, |c| {
        c.oauth.insert("github".into(), config);
    })
    .await;
    (github, server)
}

/// Starts a sign-in with GitHub: the URL of GitHub's authorization endpoint.
async fn begin(b: &Browser) -> String {
    let r = b
        .post(
            "/v1/client/sign_ins",
            &[("strategy", "oauth_github"), ("redirect_url", APP_CALLBACK), ("action_complete_redirect_url", APP_HOME)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = &r.body["response"]["first_factor_verification"];
    assert_eq!((v["object"].as_str(), v["status"].as_str()), (Some("verification_oauth"), Some("unverified")));
    v["external_verification_redirect_url"].as_str().expect("the provider URL").to_owned()
}

/// Through GitHub as `login`: the callback URL it sends the browser back to.
async fn at_github(server: &TestServer, b: &Browser, url: &str, login: &str) -> String {
    let r = b.http.get(format!("{url}&login={login}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{url}");
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&format!("{}/v1/oauth_callback?", server.url)), "{back}");
    back
}

fn path_of(server: &TestServer, url: &str) -> String {
    url.strip_prefix(&server.url).expect("a latchkey URL").to_owned()
}

async fn sign_in_as(server: &TestServer, b: &Browser, login: &str) -> Reply {
    let url = begin(b).await;
    let back = at_github(server, b, &url, login).await;
    b.get(&path_of(server, &back)).await
}

async fn signed_in_user(b: &Browser) -> Option<String> {
    let c = b.get("/v1/client").await;
    c.body["response"]["sessions"][0]["user"]["id"].as_str().map(str::to_owned)
}

async fn current_sign_in(b: &Browser) -> Value {
    b.get("/v1/client").await.body["response"]["sign_in"].clone()
}

fn has_session_cookie(r: &Reply) -> bool {
    r.set_cookies().iter().any(|c| c.starts_with("__session=ey"))
}

both_backends!(github_signs_in_the_account_of_its_verified_primary_address, |backend| async move {
    let (github, server) = start(backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let env = server.browser().get("/v1/environment").await;
    assert_eq!(env.body["user_settings"]["social"]["oauth_github"]["name"], "GitHub");

    let b = server.browser();
    let url = begin(&b).await;
    let q: HashMap<_, _> = url::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    assert!(url.starts_with(&format!("{}/login/oauth/authorize?", github.url)), "{url}");
    assert_eq!(q["client_id"], github.client_id);
    assert_eq!(q["redirect_uri"], format!("{}/v1/oauth_callback", server.url));
    assert_eq!(q["scope"], "read:user user:email");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q.contains_key("state") && !q.contains_key("nonce"), "no nonce without OpenID Connect: {url}");

    let back = at_github(&server, &b, &url, "ada-l").await;
    let done = b.get(&path_of(&server, &back)).await;
    assert_eq!((done.status, done.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_HOME));
    assert!(has_session_cookie(&done), "{:?}", done.set_cookies());
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(ada.as_str()));

    let accounts = server.store.external_accounts_for_user(&ada).await.unwrap();
    assert_eq!(accounts.len(), 1);
    let a = &accounts[0];
    assert_eq!((a.provider.as_str(), a.provider_user_id.as_str()), ("oauth_github", "1001"));
    assert_eq!((a.email_address.as_deref(), a.email_verified), (Some("ada@example.com"), true));
    assert_eq!((a.first_name.as_deref(), a.last_name.as_deref()), (Some("Ada"), Some("Lovelace")));
    assert_eq!(a.username.as_deref(), Some("ada-l"));
    assert_eq!(a.image_url.as_deref(), Some("https://avatars.githubusercontent.com/u/1001?v=4"));
    assert_eq!(a.approved_scopes, "read:user user:email");
    let sealed = a.access_token_sealed.as_deref().unwrap();
    assert!(sealed.len() > 40 && !sealed.contains("gho_"), "the token is stored sealed");

    // The same callback again (a replay) is refused before GitHub is asked anything.
    let replay = b.get(&path_of(&server, &back)).await;
    assert_eq!((replay.status, replay.error_code()), (StatusCode::BAD_REQUEST, "oauth_state_invalid"));
    assert!(!has_session_cookie(&replay));

    // Next time the GitHub account itself names the user (its id, not the address).
    let again = server.browser();
    assert_eq!(sign_in_as(&server, &again, "ada-l").await.headers["location"], APP_HOME);
    assert_eq!(signed_in_user(&again).await.as_deref(), Some(ada.as_str()));
    assert_eq!(server.store.external_accounts_for_user(&ada).await.unwrap().len(), 1);
});

both_backends!(a_github_newcomer_signs_up_by_taking_the_attempt_over, |backend| async move {
    let (_github, server) = start(backend).await;
    let b = server.browser();
    let sent = server.mail_count("nell@example.com").await;
    let r = sign_in_as(&server, &b, "nell").await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_CALLBACK));
    let attempt = current_sign_in(&b).await;
    assert_eq!(attempt["status"], "needs_identifier");
    assert_eq!(attempt["first_factor_verification"]["status"], "transferable");
    assert_eq!(attempt["first_factor_verification"]["error"]["code"], "external_account_not_found");

    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let up = &r.body["response"];
    assert_eq!(up["status"], "complete", "{up}");
    assert_eq!(up["verifications"]["external_account"]["strategy"], "oauth_github");
    let user_id = up["created_user_id"].as_str().unwrap().to_owned();
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(user_id.as_str()));
    assert_eq!(server.mail_count("nell@example.com").await, sent, "GitHub vouched: no code");
    let user = server.store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!((user.emails[0].email.as_str(), user.emails[0].verified), ("nell@example.com", true));
    assert_eq!(user.user.first_name.as_deref(), Some("Nell"));
    let accounts = server.store.external_accounts_for_user(&user_id).await.unwrap();
    assert_eq!((accounts.len(), accounts[0].provider_user_id.as_str()), (1, "1004"));
    assert_eq!(accounts[0].username.as_deref(), Some("nell"));

    // Taken over once only.
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_ne!(r.status, StatusCode::OK);
});

both_backends!(addresses_github_does_not_vouch_for_link_nobody, |backend| async move {
    let (_github, server) = start(backend).await;
    let (victim, _) = server.sign_up(&server.browser(), "victim@example.com", "victim's passphrase").await;

    // Eve's primary address is the victim's, unverified at GitHub; Mallory's verified one is a
    // secondary address. Neither joins the victim's account.
    for (login, id) in [("eve", "1002"), ("mallory", "1003")] {
        let b = server.browser();
        let r = sign_in_as(&server, &b, login).await;
        assert_eq!(r.headers["location"], APP_CALLBACK, "{login}");
        assert!(!has_session_cookie(&r), "{login}");
        assert_eq!(signed_in_user(&b).await, None, "{login}");
        let v = &current_sign_in(&b).await["first_factor_verification"];
        assert_eq!(v["status"], "transferable", "{login}");
        assert!(server.store.external_account_by_subject("oauth_github", id).await.unwrap().is_none());
    }
    assert!(server.store.external_accounts_for_user(&victim).await.unwrap().is_empty());

    // Eve's sign-up must prove the address first, which only its owner can.
    let b = server.browser();
    sign_in_as(&server, &b, "eve").await;
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"]["status"], "missing_requirements");
    assert_eq!(r.body["response"]["unverified_fields"], json!(["email_address"]));
    assert_eq!(signed_in_user(&b).await, None);
    assert!(server.store.external_accounts_for_user(&victim).await.unwrap().is_empty());
});

both_backends!(github_refusals_and_user_api_failures_sign_in_nobody, |backend| async move {
    let (github, server) = start(backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;

    let failed_with = |code: &'static str| {
        let server = &server;
        async move {
            let b = server.browser();
            let r = sign_in_as(server, &b, if code == "oauth_access_denied" { "deny" } else { "ada-l" }).await;
            assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_CALLBACK));
            assert!(!has_session_cookie(&r), "{code}");
            assert_eq!(signed_in_user(&b).await, None, "{code}");
            let v = &current_sign_in(&b).await["first_factor_verification"];
            assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("failed"), Some(code)));
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    };
    // The person said no at GitHub.
    failed_with("oauth_access_denied").await;
    // The user API is down, or refuses the token it was just given.
    github.set_user_api(UserApi::Fails);
    failed_with("oauth_fetch_user_error").await;
    github.set_user_api(UserApi::RefusesTokens);
    failed_with("oauth_fetch_user_error").await;
    github.set_user_api(UserApi::Works);

    assert!(server.store.external_accounts_for_user(&ada).await.unwrap().is_empty(), "no account was joined");
    assert_eq!(server.store.sessions_for_user(&ada).await.unwrap().len(), 1, "only ada's own sign-up's");
    // A code GitHub never issued is refused at its token endpoint.
    let b = server.browser();
    let url = begin(&b).await;
    let back = at_github(&server, &b, &url, "ada-l").await;
    let forged = url::Url::parse(&back).unwrap();
    let state = forged.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let r = b.get(&format!("/v1/oauth_callback?code=made-up&state={state}")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(current_sign_in(&b).await["first_factor_verification"]["error"]["code"], "oauth_token_exchange_error");
    assert_eq!(signed_in_user(&b).await, None);
});

/// The stand-in refuses what GitHub refuses, so the tests above prove latchkey sends it.
#[tokio::test]
async fn the_github_standin_checks_what_github_checks() {
    let github = GitHubStandIn::start(accounts()).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let redirect = "http://127.0.0.1:1/v1/oauth_callback";
    let code = || async {
        let r = http
            .get(format!("{}/login/oauth/authorize", github.url))
            .query(&[
                ("client_id", github.client_id.as_str()),
                ("redirect_uri", redirect),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("state", "s"),
                ("login", "ada-l"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        let to = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        to.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
    };
    let exchange = |code: String, secret: &'static str, redirect_uri: &'static str, verifier: &'static str| {
        let http = http.clone();
        let (url, id) = (format!("{}/login/oauth/access_token", github.url), github.client_id.clone());
        async move {
            let form = [
                ("client_id", id.as_str()),
                ("client_secret", secret),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ];
            let r = http.post(url).header("accept", "application/json").form(&form).send().await.unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    // A plain challenge is not S256.
    let r = http
        .get(format!("{}/login/oauth/authorize", github.url))
        .query(&[("client_id", github.client_id.as_str()), ("redirect_uri", redirect), ("code_challenge", challenge)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(exchange(code().await, "wrong", redirect, verifier).await["error"], "incorrect_client_credentials");
    let other = "http://127.0.0.1:2/v1/oauth_callback";
    assert_eq!(exchange(code().await, "gh-client-secret", other, verifier).await["error"], "redirect_uri_mismatch");
    let wrong_verifier = "another-verifier-of-forty-three-characters-x";
    assert_eq!(
        exchange(code().await, "gh-client-secret", redirect, wrong_verifier).await["error"],
        "bad_verification_code"
    );
    let c = code().await;
    let token = exchange(c.clone(), "gh-client-secret", redirect, verifier).await;
    let access = token["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(exchange(c, "gh-client-secret", redirect, verifier).await["error"], "bad_verification_code");
    // Without `Accept: application/json`, GitHub answers form-encoded.
    let form = [
        ("client_id", github.client_id.clone()),
        ("client_secret", github.client_secret.clone()),
        ("code", code().await),
        ("redirect_uri", redirect.to_owned()),
        ("code_verifier", verifier.to_owned()),
    ];
    let text = http.post(format!("{}/login/oauth/access_token", github.url)).form(&form).send().await.unwrap();
    assert!(text.text().await.unwrap().starts_with("access_token=gho_"));
    // The user API wants a User-Agent and the Bearer token.
    let user = format!("{}/user", github.url);
    assert_eq!(http.get(&user).bearer_auth(&access).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    let get = |token: &str| http.get(&user).header("user-agent", "t").bearer_auth(token).send();
    assert_eq!(get("gho_made_up").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let me: Value = get(&access).await.unwrap().json().await.unwrap();
    assert_eq!((me["id"].as_u64(), me["login"].as_str()), (Some(1001), Some("ada-l")));
}
