//! A user's accounts at identity providers once joined (docs/identity-providers.md, "On the
//! user"): shown on the user by both APIs and in webhooks, the provider's access token for a
//! backend, removed by their owner or a backend; against the loopback OpenID Provider.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::harness::TestServer;
use crate::oauth::{sign_in_as, signed_in_user, start, OpenIdProvider};
use crate::webhooks::{drain, worker, Admin, Receiver};

/// The webhook payloads of `event` received so far for `user_id`.
async fn events_for(rx: &Receiver, event: &str, user_id: &str) -> Vec<Value> {
    rx.got
        .lock()
        .await
        .iter()
        .map(|r| r.json())
        .filter(|e| e["type"] == event && e["data"]["id"] == user_id)
        .map(|e| e["data"].clone())
        .collect()
}

both_backends!(joined_accounts_show_on_the_user_and_their_tokens_work, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server: TestServer = start(&provider, backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &[]).await;
    let hooks = worker(&server);
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;

    let b = server.browser();
    assert_eq!(sign_in_as(&server, &b, "oauth_google", "g-ada").await.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(ada.as_str()));
    // Joining the account changed the user: user.updated carries it.
    drain(&hooks).await;
    let updated = events_for(&rx, "user.updated", &ada).await;
    assert_eq!(updated.len(), 1, "{updated:?}");
    assert_eq!(updated[0]["external_accounts"][0]["provider_user_id"], "g-ada");

    // The Frontend API names the provider as Clerk's components expect (`google`: they prepend
    // `oauth_`), with the profile the provider gave and a verified verification.
    let me = b.get("/v1/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    let accounts = me.body["response"]["external_accounts"].as_array().unwrap().clone();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    let a = &accounts[0];
    assert_eq!(a["object"], "external_account");
    assert_eq!(a["provider"], "google");
    assert_eq!(a["provider_user_id"], "g-ada");
    assert_eq!(
        (a["email_address"].as_str(), a["email_address_verified"].as_bool()),
        (Some("ada@example.com"), Some(true))
    );
    assert_eq!((a["first_name"].as_str(), a["last_name"].as_str()), (Some("Ada"), Some("Lovelace")));
    assert_eq!(a["verification"]["status"], "verified");
    assert_eq!(a["verification"]["strategy"], "oauth_google");
    assert!(a["approved_scopes"].as_str().unwrap().split(' ').any(|s| s == "openid"), "{a}");
    assert!(a.get("access_token").is_none() && !me.text.contains("sealed"), "no token reaches the browser");
    let account_id = a["id"].as_str().unwrap().to_owned();

    // The Backend API names the strategy.
    let user = admin.get(&format!("/v1/users/{ada}")).await;
    assert_eq!(user.body["external_accounts"][0]["provider"], "oauth_google", "{}", user.text);
    assert_eq!(user.body["external_accounts"][0]["id"], account_id.as_str());

    // The provider's access token, opened for a backend: the provider accepts it.
    let tokens = admin.get(&format!("/v1/users/{ada}/oauth_access_tokens/oauth_google")).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    let t = &tokens.body[0];
    assert_eq!(
        (t["object"].as_str(), t["external_account_id"].as_str()),
        (Some("oauth_access_token"), Some(account_id.as_str()))
    );
    assert_eq!((t["provider"].as_str(), t["provider_user_id"].as_str()), (Some("oauth_google"), Some("g-ada")));
    assert!(t["scopes"].as_array().unwrap().iter().any(|s| s == "openid"), "{t}");
    let expires_at = t["expires_at"].as_i64().unwrap();
    assert!(expires_at > 1_000_000_000 && expires_at < 100_000_000_000, "seconds since 1970: {expires_at}");
    let info = reqwest::Client::new()
        .get(format!("{}/me", provider.issuer))
        .bearer_auth(t["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    assert_eq!(info.json::<Value>().await.unwrap()["sub"], "g-ada");
    // No account at that provider: none; no such user: 404.
    let none = admin.get(&format!("/v1/users/{ada}/oauth_access_tokens/oauth_custom_acme")).await;
    assert_eq!((none.status, none.body.clone()), (StatusCode::OK, json!([])));
    let missing = admin.get("/v1/users/user_missing/oauth_access_tokens/oauth_google").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text);
    let anonymous = server.browser().get(&format!("/v1/users/{ada}/oauth_access_tokens/oauth_google")).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // A newcomer made by taking the attempt over: user.created carries the account.
    let nell = server.browser();
    sign_in_as(&server, &nell, "oauth_google", "g-new").await;
    let up = nell.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(up.body["response"]["status"], "complete", "{}", up.text);
    let nell_id = up.body["response"]["created_user_id"].as_str().unwrap().to_owned();
    drain(&hooks).await;
    let created = events_for(&rx, "user.created", &nell_id).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["external_accounts"][0]["provider"], "oauth_google");
    assert_eq!(created[0]["external_accounts"][0]["provider_user_id"], "g-new");
});

both_backends!(accounts_are_removed_by_their_owner_or_a_backend, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &["user.updated"]).await;
    let hooks = worker(&server);
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let b = server.browser();
    sign_in_as(&server, &b, "oauth_google", "g-ada").await;
    let acme = server.browser();
    sign_in_as(&server, &acme, "oauth_custom_acme", "g-ada").await;
    let nell = server.browser();
    sign_in_as(&server, &nell, "oauth_google", "g-new").await;
    let up = nell.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    let nell_id = up.body["response"]["created_user_id"].as_str().unwrap().to_owned();
    let ids = |v: &Value| -> Vec<String> {
        v["external_accounts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect()
    };
    let ada_accounts = ids(&admin.get(&format!("/v1/users/{ada}")).await.body);
    let nell_accounts = ids(&admin.get(&format!("/v1/users/{nell_id}")).await.body);
    assert_eq!((ada_accounts.len(), nell_accounts.len()), (2, 1));

    // Someone else's account, or none, is not found, and stays.
    for id in [nell_accounts[0].as_str(), "eac_missing"] {
        let r = b.send(b.http.delete(b.url(&format!("/v1/me/external_accounts/{id}")))).await;
        assert_eq!((r.status, r.error_code()), (StatusCode::NOT_FOUND, "resource_not_found"), "{}", r.text);
    }
    assert_eq!(ids(&admin.get(&format!("/v1/users/{nell_id}")).await.body), nell_accounts);
    // Signed out: 401.
    let out = server.browser();
    let r = out.send(out.http.delete(out.url(&format!("/v1/me/external_accounts/{}", ada_accounts[0])))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // The owner removes one (a password and a verified address remain): the envelope names
    // it, the user no longer lists it, and user.updated says so.
    let r = b.send(b.http.delete(b.url(&format!("/v1/me/external_accounts/{}", ada_accounts[0])))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["response"], json!({"object": "external_account", "id": ada_accounts[0], "deleted": true}));
    let me = b.get("/v1/me").await;
    assert_eq!(ids(&me.body["response"]), vec![ada_accounts[1].clone()]);
    drain(&hooks).await;
    // Deliveries need not arrive in order: one of Ada's user.updated events (the joins sent
    // theirs too) lists only the account left.
    let updated = events_for(&rx, "user.updated", &ada).await;
    assert!(updated.iter().map(ids).any(|left| left == vec![ada_accounts[1].clone()]), "{updated:?}");

    // A backend removes one; the wrong user's path finds nothing.
    let wrong = admin.delete(&format!("/v1/users/{ada}/external_accounts/{}", nell_accounts[0])).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND, "{}", wrong.text);
    let r = admin.delete(&format!("/v1/users/{nell_id}/external_accounts/{}", nell_accounts[0])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"object": "external_account", "id": nell_accounts[0], "deleted": true}));
    assert!(server.store.external_accounts_for_user(&nell_id).await.unwrap().is_empty());
    // Removed, the provider account is a stranger again: its next sign-in links by the
    // verified address once more, as for anyone.
    let again = server.browser();
    sign_in_as(&server, &again, "oauth_google", "g-new").await;
    assert_eq!(signed_in_user(&again).await.as_deref(), Some(nell_id.as_str()));
});

both_backends!(the_profile_page_lists_and_disconnects_accounts, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let (ada, _) = server.sign_up(&server.browser(), "ada@example.com", "ada's long passphrase").await;
    let b = server.browser();
    sign_in_as(&server, &b, "oauth_google", "g-ada").await;
    let nell = server.browser();
    sign_in_as(&server, &nell, "oauth_google", "g-new").await;
    let nell_id = nell.post("/v1/client/sign_ups", &[("transfer", "true")]).await.body["response"]["created_user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = server.store.external_accounts_for_user(&nell_id).await.unwrap()[0].id.clone();
    let mine = server.store.external_accounts_for_user(&ada).await.unwrap()[0].id.clone();

    let page = b.get("/user").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Connected accounts") && page.text.contains("Google"), "{}", page.text);
    assert!(page.text.contains(&format!("/user/accounts/{mine}/delete")));
    let csrf = crate::pages::form(&b, "/user").await;

    // Someone else's account: not found, and it stays.
    let r = b.post(&format!("/user/accounts/{theirs}/delete"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert_eq!(server.store.external_accounts_for_user(&nell_id).await.unwrap().len(), 1);

    let r = b.post(&format!("/user/accounts/{mine}/delete"), &[("csrf", csrf.as_str())]).await;
    assert_eq!(
        (r.status, r.headers["location"].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/user?notice=account_removed")
    );
    assert!(server.store.external_accounts_for_user(&ada).await.unwrap().is_empty());
    let page = b.get("/user?notice=account_removed").await;
    assert!(
        page.text.contains("Account disconnected.") && page.text.contains("No account is connected."),
        "{}",
        page.text
    );
});

both_backends!(a_provider_without_an_address_leaves_the_sign_up_missing_it, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    let b = server.browser();
    sign_in_as(&server, &b, "oauth_google", "g-anon").await;
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let up = &r.body["response"];
    assert_eq!(up["status"], "missing_requirements", "{up}");
    assert_eq!(up["missing_fields"], json!(["email_address"]));
    assert_eq!(up["verifications"]["external_account"]["status"], "verified");
    let id = up["id"].as_str().unwrap().to_owned();

    // The person gives an address and proves it with the mailed code, as Clerk's flow does:
    // the code mailed with the address stands when clerk-js asks for one right after.
    let sent = server.mail_count("anon@example.com").await;
    let r = b
        .send(b.http.patch(b.url(&format!("/v1/client/sign_ups/{id}"))).form(&[("email_address", "anon@example.com")]))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = b.post(&format!("/v1/client/sign_ups/{id}/prepare_verification"), &[("strategy", "email_code")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let code = server.code_after("anon@example.com", sent).await;
    let r = b
        .post(&format!("/v1/client/sign_ups/{id}/attempt_verification"), &[("strategy", "email_code"), ("code", &code)])
        .await;
    assert_eq!(r.body["response"]["status"], "complete", "{}", r.text);
    let user_id = r.body["response"]["created_user_id"].as_str().unwrap().to_owned();
    let accounts = server.store.external_accounts_for_user(&user_id).await.unwrap();
    assert_eq!((accounts.len(), accounts[0].provider_user_id.as_str()), (1, "g-anon"));
    assert_eq!(signed_in_user(&b).await.as_deref(), Some(user_id.as_str()));
});

both_backends!(a_look_alike_address_makes_no_verified_address_on_sign_up, |backend| async move {
    let provider = OpenIdProvider::start().await;
    let server = start(&provider, backend).await;
    // The provider vouches for "\u{212A}evin@example.com", which normalizes to kevin@example.com:
    // another person's mailbox, so the sign-up must prove it like any unvouched address.
    let b = server.browser();
    sign_in_as(&server, &b, "oauth_google", "g-kelvin").await;
    let sent = server.mail_count("kevin@example.com").await;
    let r = b.post("/v1/client/sign_ups", &[("transfer", "true")]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let up = &r.body["response"];
    assert_eq!(up["status"], "missing_requirements", "{up}");
    assert_eq!(up["unverified_fields"], json!(["email_address"]));
    assert!(up["created_user_id"].is_null());
    assert_eq!(signed_in_user(&b).await, None);
    // The code went to the mailbox the address names, not to whoever holds the provider account.
    assert_eq!(server.mail_count("kevin@example.com").await, sent + 1);
    let listed = crate::webhooks::Admin::new(&server).await.get("/v1/users?email_address=kevin@example.com").await;
    assert_eq!(listed.body, json!([]));
});
