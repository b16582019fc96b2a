//! Sign-in with an identity provider (docs/identity-providers.md) against a real OpenID
//! Provider on loopback (npm `oidc-provider`, `tests/it/oidc/provider.mjs`), configured both as
//! the Google preset and as a custom OpenID Connect issuer. Each refusal leaves no session and
//! no provider account behind.

use std::process::Stdio;

use latchkey_service::oauth::ProviderConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::both_backends;
use crate::harness::{Browser, TestServer};

pub(crate) const APP_CALLBACK: &str = "http://app.test:3000/sso-callback";
pub(crate) const APP_HOME: &str = "http://app.test:3000/home";

/// The loopback OpenID Provider; it exits when this is dropped (its stdin closes).
pub(crate) struct OpenIdProvider {
    pub(crate) issuer: String,
    _child: tokio::process::Child,
}

impl OpenIdProvider {
    pub(crate) async fn start() -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/oidc/provider.mjs");
        // Native clients may come back to any port of the loopback address (RFC 8252), so the
        // provider starts before the server whose port it will meet.
        let client = |id: &str| {
            json!({"client_id": id, "client_secret": format!("{id}-secret"), "application_type": "native",
                   "redirect_uris": ["http://127.0.0.1/v1/oauth_callback"]})
        };
        let config = json!({
            "clients": [client("google-client"), client("acme-client")],
            "accounts": [
                {"sub": "g-ada", "email": "ada@example.com", "email_verified": true, "given_name": "Ada", "family_name": "Lovelace"},
                {"sub": "g-eve", "email": "victim@example.com", "email_verified": false, "given_name": "Eve"},
                {"sub": "g-new", "email": "newcomer@example.com", "email_verified": true, "given_name": "Nell"},
                {"sub": "g-solo", "email": "solo@example.com", "email_verified": true},
                // No address at all: the sign-up asks for one.
                {"sub": "g-anon", "given_name": "Anon"},
                // KELVIN SIGN: lower-cases to "kevin@example.com", another mailbox all the same.
                {"sub": "g-kelvin", "email": "\u{212A}evin@example.com", "email_verified": true},
            ],
        });
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the test OpenID Provider");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(std::time::Duration::from_secs(60), BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("the provider starts within a minute")
            .expect("its first line");
        assert!(
            !line.is_empty(),
            "the loopback OpenID Provider exited before starting: it needs npm's packages (`npm ci`)"
        );
        let issuer = serde_json::from_str::<Value>(&line).expect("the issuer line")["issuer"]
            .as_str()
            .expect("issuer")
            .to_owned();
        Self { issuer, _child: child }
    }

    pub(crate) async fn control(&self, body: Value) {
        let r = reqwest::Client::new().post(format!("{}/__control", self.issuer)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{body}");
    }

    pub(crate) fn config(&self, client_id: &str) -> ProviderConfig {
        ProviderConfig {
            client_id: client_id.into(),
            client_secret: latchkey_core::secret::ConfigSecret::new(format!("{client_id}-secret")),
            issuer: Some(self.issuer.clone()),
            ..ProviderConfig::default()
        }
    }
}

pub(crate) async fn start(provider: &OpenIdProvider, backend: crate::harness::Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.oauth.insert("google".into(), provider.config("google-client"));
        // Acme signs in existing users only.
        let acme = ProviderConfig { name: Some("Acme".into()), sign_up: false, ..provider.config("acme-client") };
        c.oauth.insert("acme".into(), acme);
    })
    .await
}

/// Starts a sign-in with `strategy`; the provider URL.
pub(crate) async fn begin(b: &Browser, strategy: &str) -> String {
    let r = b
        .post(
            "/v1/client/sign_ins",
            &[("strategy", strategy), ("redirect_url", APP_CALLBACK), ("action_complete_redirect_url", APP_HOME)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let v = &r.body["response"]["first_factor_verification"];
    assert_eq!((v["object"].as_str(), v["status"].as_str()), (Some("verification_oauth"), Some("unverified")));
    assert!(v["error"].is_null());
    v["external_verification_redirect_url"].as_str().expect("the provider URL").to_owned()
}

/// Goes through the provider as `who` (its `login_hint`): the callback URL it sends back to.
pub(crate) async fn at_provider(server: &TestServer, b: &Browser, url: &str, who: &str) -> String {
    let mut next = format!("{url}&login_hint={who}");
    for _ in 0..10 {
        let r = b.http.get(&next).send().await.unwrap();
        assert!(r.status().is_redirection(), "{next}: {}", r.status());
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        if to.starts_with(&server.url) {
            return to;
        }
        next = url::Url::parse(&next).unwrap().join(&to).unwrap().to_string();
    }
    panic!("the provider never sent the browser back");
}

pub(crate) fn path_of(server: &TestServer, url: &str) -> String {
    url.strip_prefix(&server.url).expect("a latchkey URL").to_owned()
}

/// The whole trip: start, the provider, the callback; the callback's answer.
pub(crate) async fn sign_in_as(server: &TestServer, b: &Browser, strategy: &str, who: &str) -> crate::harness::Reply {
    let url = begin(b, strategy).await;
    let back = at_provider(server, b, &url, who).await;
    b.get(&path_of(server, &back)).await
}

pub(crate) async fn signed_in_user(b: &Browser) -> Option<String> {
    let c = b.get("/v1/client").await;
    c.body["response"]["sessions"][0]["user"]["id"].as_str().map(str::to_owned)
}

pub(crate) async fn current_sign_in(b: &Browser) -> Value {
    b.get("/v1/client").await.body["response"]["sign_in"].clone()
}

both_backends!(a_provider_signs_in_the_account_with_its_verified_address, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;

    // The environment offers both providers, by Clerk's strategy names.
    let env = server.browser().get("/v1/environment").await;
    assert_eq!(env.body["user_settings"]["social"]["oauth_google"]["name"], "Google");
    assert_eq!(env.body["user_settings"]["social"]["oauth_custom_acme"]["name"], "Acme");

    let b = server.browser();
    let url = begin(&b, "oauth_google").await;
    let u = url::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    assert!(url.starts_with(&provider.issuer), "{url}");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{}/v1/oauth_callback", server.url));
    assert!(q.contains_key("nonce") && q.contains_key("state"));
    let back = at_provider(&server, &b, &url, "g-ada").await;
    let done = b.get(&path_of(&server, &back)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    assert_eq!(done.headers["location"], APP_HOME);
    assert!(done.set_cookies().iter().any(|c| c.starts_with("__session=ey")), "{:?}", done.set_cookies());
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(ada.as_str()));

    let accounts = server.store.external_accounts_for_user(&ada).await.unwrap();
    assert_eq!(accounts.len(), 1);
    let a = &accounts[0];
    assert_eq!((a.provider.as_str(), a.provider_user_id.as_str()), ("oauth_google", "g-ada"));
    assert_eq!((a.email_address.as_deref(), a.email_verified), (Some("ada@example.com"), true));
    assert_eq!(a.first_name.as_deref(), Some("Ada"));
    let sealed = a.access_token_sealed.as_deref().unwrap();
    assert!(!sealed.is_empty() && sealed.len() > 40, "the token is stored sealed");

    // The same callback again (a replay) is refused: the attempt moved on.
    let replay = b.get(&path_of(&server, &back)).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text);
    assert_eq!(replay.error_code(), "oauth_state_invalid");

    // Next time the provider account itself names the user; the custom provider is another
    // account (another client id at the same issuer) and joins the same user.
    let again = server.browser();
    assert_eq!(sign_in_as(&server, &again, "oauth_google", "g-ada").await.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in_user(&again).await.as_deref(), Some(ada.as_str()));
    let acme = server.browser();
    assert_eq!(sign_in_as(&server, &acme, "oauth_custom_acme", "g-ada").await.status, StatusCode::SEE_OTHER);
    let mut providers: Vec<String> =
        server.store.external_accounts_for_user(&ada).await.unwrap().into_iter().map(|a| a.provider).collect();
    providers.sort();
    assert_eq!(providers, ["oauth_custom_acme", "oauth_google"]);
});

both_backends!(an_address_the_provider_does_not_vouch_for_takes_over_nothing, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (victim, _) = server.sign_up(&server.browser(), "victim@example.com", "victim's passphrase").await;

    // The provider names the victim's address but does not say it is verified: no takeover.
    let b = server.browser();
    let r = sign_in_as(&server, &b, "oauth_google", "g-eve").await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_CALLBACK));
    assert!(!r.set_cookies().iter().any(|c| c.starts_with("__session=ey")));
    assert_eq!(signed_in_user(&b).await, None);
    let attempt = current_sign_in(&b).await;
    assert_eq!(attempt["status"], "needs_identifier");
    assert_eq!(attempt["first_factor_verification"]["status"], "transferable");
    assert_eq!(attempt["first_factor_verification"]["error"]["code"], "external_account_not_found");
    assert!(server.store.external_accounts_for_user(&victim).await.unwrap().is_empty());
    assert!(server.store.external_account_by_subject("oauth_google", "g-eve").await.unwrap().is_none());

    // A verified look-alike of someone's address is not their address.
    let (kevin, _) = server.sign_up(&server.browser(), "kevin@example.com", "kevin's passphrase").await;
    let k = server.browser();
    sign_in_as(&server, &k, "oauth_google", "g-kelvin").await;
    assert_eq!(signed_in_user(&k).await, None);
    assert_eq!(current_sign_in(&k).await["first_factor_verification"]["status"], "transferable");
    assert!(server.store.external_accounts_for_user(&kevin).await.unwrap().is_empty());

    // A person with no account at all: the same, the attempt waits for a sign-up.
    let newcomer = server.browser();
    let r = sign_in_as(&server, &newcomer, "oauth_google", "g-new").await;
    assert_eq!(r.headers["location"], APP_CALLBACK);
    assert_eq!(current_sign_in(&newcomer).await["first_factor_verification"]["status"], "transferable");
});

both_backends!(states_that_are_not_this_browsers_are_refused, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;

    let b = server.browser();
    let url = begin(&b, "oauth_google").await;
    let back = at_provider(&server, &b, &url, "g-ada").await;
    let callback = path_of(&server, &back);
    // Another browser (an attacker handing the victim their callback, or the reverse).
    let other = server.browser();
    other.post("/v1/client", &[]).await;
    let r = other.get(&callback).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(signed_in_user(&other).await, None);
    // No state, a forged one, and a state whose signature was altered.
    let code = url::Url::parse(&back).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    for bad in [format!("/v1/oauth_callback?code={code}"), format!("/v1/oauth_callback?code={code}&state=abc.def")] {
        let r = b.get(&bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let state = url::Url::parse(&back).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let (payload, _) = state.split_once('.').unwrap();
    let r = b.get(&format!("/v1/oauth_callback?code={code}&state={payload}.AAAA")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(signed_in_user(&b).await, None, "nothing signed in so far");
    // The real one still works in its own browser, once.
    assert_eq!(b.get(&callback).await.status, StatusCode::SEE_OTHER);
    assert!(signed_in_user(&b).await.is_some());

    // A state outlives its ten minutes at the provider: refused.
    let late = server.browser();
    let url = begin(&late, "oauth_google").await;
    let back = at_provider(&server, &late, &url, "g-ada").await;
    server.clock.advance_ms(10 * 60 * 1000 + 1);
    assert_eq!(late.get(&path_of(&server, &back)).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(signed_in_user(&late).await, None);
});

both_backends!(provider_refusals_and_bad_id_tokens_sign_in_nobody, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;

    // The person said no at the provider.
    let b = server.browser();
    let r = sign_in_as(&server, &b, "oauth_google", "deny").await;
    assert_eq!(r.headers["location"], APP_CALLBACK);
    let v = &current_sign_in(&b).await["first_factor_verification"];
    assert_eq!((v["status"].as_str(), v["error"]["code"].as_str()), (Some("failed"), Some("oauth_access_denied")));

    // ID tokens that must not verify, one by one.
    for tamper in ["wrong_aud", "wrong_iss", "expired", "wrong_nonce", "bad_signature", "alg_none"] {
        provider.control(json!({"tamper": tamper})).await;
        let b = server.browser();
        let r = sign_in_as(&server, &b, "oauth_google", "g-ada").await;
        assert_eq!(r.headers["location"], APP_CALLBACK, "{tamper}");
        assert!(!r.set_cookies().iter().any(|c| c.starts_with("__session=ey")), "{tamper}");
        assert_eq!(signed_in_user(&b).await, None, "{tamper}");
        let v = &current_sign_in(&b).await["first_factor_verification"];
        assert_eq!(v["error"]["code"], "oauth_id_token_invalid", "{tamper}");
    }
    // The provider's token endpoint is down: a clear failure, not a 5xx.
    provider.control(json!({"down": true})).await;
    let b = server.browser();
    let r = sign_in_as(&server, &b, "oauth_google", "g-ada").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(current_sign_in(&b).await["first_factor_verification"]["error"]["code"], "oauth_provider_unavailable");
    provider.control(json!({"down": false})).await;
    assert!(server.store.external_accounts_for_user(&ada).await.unwrap().is_empty(), "no account was joined");
    // Only the session of ada's own sign-up exists.
    assert_eq!(server.store.sessions_for_user(&ada).await.unwrap().len(), 1);
});

both_backends!(bad_starts_are_refused_before_anything_is_stored, |backend| async move {
    let provider = OpenIdProvider::start().await;
    // A second provider whose issuer does not answer.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let server = TestServer::start_with(backend, |c| {
        c.oauth.insert("google".into(), provider.config("google-client"));
        let down = ProviderConfig { issuer: Some(dead), ..provider.config("acme-client") };
        c.oauth.insert("down".into(), down);
    })
    .await;
    let b = server.browser();
    for (fields, code, param) in [
        (vec![("strategy", "oauth_github"), ("redirect_url", APP_CALLBACK)], "strategy_for_user_invalid", "strategy"),
        (vec![("strategy", "oauth_google")], "form_param_missing", "redirect_url"),
        (
            vec![("strategy", "oauth_google"), ("redirect_url", "https://evil.test/cb")],
            "form_param_format_invalid",
            "redirect_url",
        ),
        (
            vec![
                ("strategy", "oauth_google"),
                ("redirect_url", APP_CALLBACK),
                ("action_complete_redirect_url", "//evil.test"),
            ],
            "form_param_format_invalid",
            "action_complete_redirect_url",
        ),
    ] {
        let r = b.post("/v1/client/sign_ins", &fields).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}: {}", r.text);
        assert_eq!(r.error_code(), code);
        assert_eq!(r.body["errors"][0]["meta"]["param_name"], param);
    }
    let r = b.post("/v1/client/sign_ins", &[("strategy", "oauth_custom_down"), ("redirect_url", APP_CALLBACK)]).await;
    assert_eq!(
        (r.status, r.error_code()),
        (StatusCode::SERVICE_UNAVAILABLE, "oauth_provider_unavailable"),
        "{}",
        r.text
    );
    assert!(current_sign_in(&b).await.is_null(), "no attempt was stored");
});

both_backends!(a_newcomer_signs_up_by_taking_the_attempt_over, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;

    // Nothing to take over yet.
    let b = server.browser();
    b.post("/v1/client", &[]).await;
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::BAD_REQUEST, "transfer_invalid"), "{}", r.text);

    // The provider vouches for the address: the account is made at once, no code, no password.
    let sent = server.mail_count("newcomer@example.com").await;
    assert_eq!(sign_in_as(&server, &b, "oauth_google", "g-new").await.headers["location"], APP_CALLBACK);
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let up = &r.body["response"];
    assert_eq!(up["status"], "complete", "{up}");
    assert_eq!(up["verifications"]["external_account"]["status"], "verified");
    assert_eq!(up["verifications"]["external_account"]["strategy"], "oauth_google");
    assert_eq!(up["missing_fields"], json!([]));
    let user_id = up["created_user_id"].as_str().unwrap().to_owned();
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(user_id.as_str()));
    assert_eq!(server.mail_count("newcomer@example.com").await, sent, "no code was needed");
    let accounts = server.store.external_accounts_for_user(&user_id).await.unwrap();
    assert_eq!((accounts.len(), accounts[0].provider_user_id.as_str()), (1, "g-new"));
    let user = server.store.get_user(&user_id).await.unwrap().unwrap();
    assert_eq!(user.emails[0].email, "newcomer@example.com");
    assert!(user.emails[0].verified);
    assert_eq!(user.user.first_name.as_deref(), Some("Nell"));
    assert!(user.user.password_hash.is_none());
    // Next time the provider account signs the new user in.
    let later = server.browser();
    assert_eq!(sign_in_as(&server, &later, "oauth_google", "g-new").await.headers["location"], APP_HOME);
    assert_eq!(signed_in_user(&later).await.as_deref(), Some(user_id.as_str()));

    // A provider that may not create accounts.
    let c = server.browser();
    sign_in_as(&server, &c, "oauth_custom_acme", "g-solo").await;
    assert_eq!(current_sign_in(&c).await["first_factor_verification"]["status"], "transferable");
    let r = c.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "oauth_sign_up_disabled"), "{}", r.text);
    assert!(server.store.external_account_by_subject("oauth_custom_acme", "g-solo").await.unwrap().is_none());
});

both_backends!(an_unvouched_address_must_be_proven_before_any_account_exists, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (victim, _) = server.sign_up(&server.browser(), "victim@example.com", "victim's passphrase").await;

    let b = server.browser();
    sign_in_as(&server, &b, "oauth_google", "g-eve").await;
    let sent = server.mail_count("victim@example.com").await;
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let up = &r.body["response"];
    assert_eq!(up["status"], "missing_requirements");
    assert_eq!(up["unverified_fields"], json!(["email_address"]));
    let id = up["id"].as_str().unwrap().to_owned();
    // The code goes to the address's owner, never to whoever started this.
    let code = server.code_after("victim@example.com", sent).await;
    let r = b
        .post(
            &format!("/v1/client/sign_ups/{id}/attempt_verification"),
            &[("strategy", "email_code"), ("code", "000000")],
        )
        .await;
    assert_eq!(r.error_code(), "form_code_incorrect");
    // Even with the owner's code, the address stays the owner's: nothing is joined to them.
    let r = b
        .post(&format!("/v1/client/sign_ups/{id}/attempt_verification"), &[("strategy", "email_code"), ("code", &code)])
        .await;
    assert_eq!(r.error_code(), "form_identifier_exists", "{}", r.text);
    assert_eq!(signed_in_user(&b).await, None);
    assert!(server.store.external_accounts_for_user(&victim).await.unwrap().is_empty());
    assert!(server.store.external_account_by_subject("oauth_google", "g-eve").await.unwrap().is_none());
    // The attempt was taken over once; it cannot be taken over again.
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(r.error_code(), "transfer_invalid");
});

both_backends!(the_hosted_pages_continue_with_a_provider, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let q = format!("?redirect_url={}", url::form_urlencoded::byte_serialize(APP_HOME.as_bytes()).collect::<String>());

    // The sign-in and sign-up pages show a button per provider.
    let b = server.browser();
    for page in ["/sign-in", "/sign-up"] {
        let r = b.get(&format!("{page}{q}")).await;
        assert!(r.text.contains("Continue with Google") && r.text.contains("Continue with Acme"), "{page}");
    }
    // Through the provider and back: the existing user, signed in, at the app.
    let trip = |who: &'static str| hosted_trip(&server, &provider, &q, who);
    let (b, r) = trip("g-ada").await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_HOME));
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(ada.as_str()));

    // A new person the provider vouches for: the sso-callback page makes the account.
    let (b, r) = trip("g-new").await;
    let sso = r.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(sso, format!("/sign-in/sso-callback{q}"));
    let r = b.get(&sso).await;
    assert_eq!((r.status, r.headers["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, APP_HOME), "{}", r.text);
    let newcomer = signed_in_user(&b).await.expect("signed in");
    assert_ne!(newcomer, ada);
    assert_eq!(server.store.external_accounts_for_user(&newcomer).await.unwrap().len(), 1);

    // An address the provider does not vouch for goes to the code page.
    let (b, r) = trip("g-eve").await;
    let r = b.get(r.headers["location"].to_str().unwrap()).await;
    assert_eq!(r.headers["location"], format!("/sign-up/verify{q}"));
    assert!(b.get(&format!("/sign-up/verify{q}")).await.text.contains("victim@example.com"));

    // The person said no: the page says so, and nobody is signed in.
    let (b, r) = trip("deny").await;
    let r = b.get(r.headers["location"].to_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("You did not grant access"), "{}", r.text);
    assert_eq!(signed_in_user(&b).await, None);
});

/// "Continue with Google" on the hosted sign-in page of a new browser, through the provider as
/// `who`: the browser and the callback's answer.
async fn hosted_trip(
    server: &TestServer,
    provider: &OpenIdProvider,
    q: &str,
    who: &str,
) -> (Browser, crate::harness::Reply) {
    let b = server.browser();
    let csrf = crate::pages::form(&b, &format!("/sign-in{q}")).await;
    let r = b.post(&format!("/sign-in/oauth{q}"), &[("csrf", csrf.as_str()), ("strategy", "oauth_google")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let to_provider = r.headers["location"].to_str().unwrap().to_owned();
    assert!(to_provider.starts_with(&provider.issuer));
    let back = at_provider(server, &b, &to_provider, who).await;
    let r = b.get(&path_of(server, &back)).await;
    (b, r)
}

both_backends!(relative_targets_are_paths_of_the_calling_app, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;

    // Clerk's components send `action_complete_redirect_url=/` from the app's page: the app's
    // root, not latchkey's.
    let b = server.browser();
    let start = |origin: &'static str, back: &'static str| {
        b.send(b.http.post(b.url("/v1/client/sign_ins")).header("origin", origin).form(&[
            ("strategy", "oauth_google"),
            ("redirect_url", back),
            ("action_complete_redirect_url", "/"),
        ]))
    };
    let r = start("http://app.test:3000", "/sso-callback").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let url = r.body["response"]["first_factor_verification"]["external_verification_redirect_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = at_provider(&server, &b, &url, "g-ada").await;
    assert_eq!(b.get(&path_of(&server, &back)).await.headers["location"], "http://app.test:3000/");

    // An origin that is not trusted lends nothing: the request itself is refused.
    let other = server.browser();
    let r = other
        .send(
            other
                .http
                .post(other.url("/v1/client/sign_ins"))
                .header("origin", "https://evil.test")
                .form(&[("strategy", "oauth_google"), ("redirect_url", "https://evil.test/sso-callback")]),
        )
        .await;
    assert_eq!((r.status, r.error_code()), (StatusCode::FORBIDDEN, "origin_invalid"), "{}", r.text);
    assert!(current_sign_in(&other).await.is_null());
});
