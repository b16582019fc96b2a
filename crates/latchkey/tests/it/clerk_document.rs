//! Deviations from Clerk's Backend API document that its oracle (sdk/python/clerk_oracle.py)
//! found, each pinned here on both databases: filters that were ignored, a partial `query`,
//! fields Clerk's schemas require, and parameters refused rather than ignored
//! (docs/clerk-conformance.md).

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::TestServer;
use crate::webhooks::Admin;

fn ids(list: &Value) -> Vec<String> {
    let items = list.as_array().or_else(|| list["data"].as_array()).cloned().unwrap_or_default();
    let mut ids: Vec<String> = items.iter().filter_map(|u| u["id"].as_str().map(str::to_owned)).collect();
    ids.sort();
    ids
}

crate::both_backends!(users_filter_by_banned_and_match_parts_of_values, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let ada = admin.post("/v1/users", json!({"email_address": ["ada@example.com"], "first_name": "Ada"})).await;
    let bob = admin.post("/v1/users", json!({"email_address": ["bob@sample.org"], "last_name": "Rocketeer"})).await;
    let (ada, bob) = (ada.body["id"].as_str().unwrap().to_owned(), bob.body["id"].as_str().unwrap().to_owned());
    assert_eq!(admin.post(&format!("/v1/users/{bob}/ban"), json!({})).await.status, StatusCode::OK);

    assert_eq!(ids(&admin.get("/v1/users?banned=true").await.body), vec![bob.clone()]);
    assert_eq!(ids(&admin.get("/v1/users?banned=false").await.body), vec![ada.clone()]);
    assert_eq!(admin.get("/v1/users/count?banned=true").await.body["total_count"], 1);
    assert_eq!(admin.get("/v1/users/count").await.body["total_count"], 2, "no filter: everyone");
    let bad = admin.get("/v1/users?banned=maybe").await;
    assert_eq!((bad.status, bad.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid"));

    // A part of a value anywhere in it, in any case, as Clerk matches; wildcards are literal.
    assert_eq!(ids(&admin.get("/v1/users?query=EXAMPLE").await.body), vec![ada.clone()]);
    assert_eq!(ids(&admin.get("/v1/users?query=cket").await.body), vec![bob.clone()]);
    assert_eq!(ids(&admin.get("/v1/users?query=%25").await.body), Vec::<String>::new(), "% matches itself only");
    assert_eq!(admin.get("/v1/users/count?query=sample").await.body["total_count"], 1);

    let org = admin.post("/v1/organizations", json!({"name": "Acme Rockets", "created_by": ada})).await;
    let org = org.body["id"].as_str().unwrap().to_owned();
    assert_eq!(ids(&admin.get("/v1/organizations?query=rockets").await.body), vec![org.clone()]);
    assert_eq!(ids(&admin.get("/v1/organizations?query=zzz").await.body), Vec::<String>::new());
});

crate::both_backends!(users_filter_by_provider_account, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let mut users = Vec::new();
    for address in ["ada@example.com", "bob@example.com", "cy@example.com"] {
        let created = admin.post("/v1/users", json!({"email_address": [address]})).await;
        users.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let (ada, bob) = (users[0].clone(), users[1].clone());
    for account in [
        latchkey_store::conformance::provider_account(&ada, "oauth_google", "g-ada"),
        latchkey_store::conformance::provider_account(&bob, "oauth_google", "g-bob"),
        latchkey_store::conformance::provider_account(&bob, "oauth_github", "g-ada"),
    ] {
        server.store.save_external_account(&account).await.unwrap();
    }

    let found = admin.get("/v1/users?provider=oauth_google&provider_user_id=g-ada").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(ids(&found.body), vec![ada.clone()]);
    assert_eq!(found.body[0]["external_accounts"][0]["provider_user_id"], "g-ada");
    let both = "provider=oauth_google&provider_user_id=g-ada&provider_user_id=g-bob&provider_user_id=g-nobody";
    let mut expected = vec![ada.clone(), bob.clone()];
    expected.sort();
    assert_eq!(ids(&admin.get(&format!("/v1/users?{both}")).await.body), expected, "ids not found are ignored");
    assert_eq!(admin.get(&format!("/v1/users/count?{both}")).await.body["total_count"], 2);
    assert_eq!(
        ids(&admin.get("/v1/users?provider=oauth_github&provider_user_id[]=g-ada").await.body),
        vec![bob.clone()],
        "the same id at another provider is another person"
    );
    let none = admin.get("/v1/users/count?provider=oauth_gitlab&provider_user_id=g-ada").await;
    assert_eq!((none.status, &none.body["total_count"]), (StatusCode::OK, &json!(0)));
    let narrowed = admin.get(&format!("/v1/users?{both}&email_address=bob@example.com")).await;
    assert_eq!(ids(&narrowed.body), vec![bob.clone()], "with the other filters");

    // Each needs the other, as Clerk's document says.
    for (query, missing) in [
        ("provider=oauth_google", "provider_user_id"),
        ("provider_user_id=g-ada", "provider"),
        ("provider=oauth_google&provider_user_id=", "provider_user_id"),
    ] {
        for path in ["/v1/users", "/v1/users/count"] {
            let refused = admin.get(&format!("{path}?{query}")).await;
            assert_eq!(
                (refused.status, refused.error_code()),
                (StatusCode::UNPROCESSABLE_ENTITY, "form_param_missing"),
                "{path}?{query}: {}",
                refused.text
            );
            assert_eq!(refused.body["errors"][0]["meta"]["param_name"], missing, "{path}?{query}");
        }
    }
});

crate::both_backends!(sessions_start_in_the_organization_asked_for, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let ada = admin.post("/v1/users", json!({"email_address": ["ada@example.com"]})).await.body["id"].clone();
    let bob = admin.post("/v1/users", json!({"email_address": ["bob@example.com"]})).await.body["id"].clone();
    let org = admin.post("/v1/organizations", json!({"name": "Acme", "slug": "acme", "created_by": ada})).await;
    let org = org.body["id"].as_str().unwrap().to_owned();

    let session = admin.post("/v1/sessions", json!({"user_id": ada, "active_organization_id": "acme"})).await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.text);
    assert_eq!(session.body["last_active_organization_id"], org.as_str(), "by slug, stored as the id");
    let token = admin.post(&format!("/v1/sessions/{}/tokens", session.body["id"].as_str().unwrap()), json!({})).await;
    let payload = token.body["jwt"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["o"]["id"], org.as_str(), "the token names the organization: {claims}");

    // Not a member: refused, naming the parameter, and no session is made.
    let refused = admin.post("/v1/sessions", json!({"user_id": bob, "active_organization_id": org})).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::NOT_FOUND, "resource_not_found"));
    assert_eq!(refused.body["errors"][0]["meta"]["param_name"], "active_organization_id");
    let bobs = admin.get(&format!("/v1/sessions?user_id={}", bob.as_str().unwrap())).await;
    assert_eq!(bobs.body.as_array().map(Vec::len), Some(0), "{}", bobs.text);
});

crate::both_backends!(memberships_and_invitations_carry_the_fields_clerk_requires, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let ada = admin.post("/v1/users", json!({"email_address": ["ada@example.com"], "first_name": "Ada"})).await;
    let ada = ada.body["id"].as_str().unwrap().to_owned();
    let org = admin.post("/v1/organizations", json!({"name": "Acme", "created_by": ada})).await;
    let org = org.body["id"].as_str().unwrap().to_owned();

    let members = admin.get(&format!("/v1/organizations/{org}/memberships")).await;
    let data = &members.body["data"][0]["public_user_data"];
    assert!(data["profile_image_url"].is_string(), "{data}");
    assert_eq!(data["image_url"], data["profile_image_url"]);

    let path = format!("/v1/organizations/{org}/invitations");
    let by_ada = admin.post(&path, json!({"email_address": "carol@example.com", "inviter_user_id": ada})).await;
    assert_eq!(by_ada.body["inviter_id"], ada.as_str(), "{}", by_ada.text);
    assert_eq!(by_ada.body["public_inviter_data"]["identifier"], "ada@example.com");
    assert_eq!(by_ada.body["public_inviter_data"]["first_name"], "Ada");
    assert!(by_ada.body.get("inviter_user_id").is_none(), "Clerk's name is inviter_id");
    let by_operator = admin.post(&path, json!({"email_address": "dan@example.com"})).await;
    assert_eq!(
        (by_operator.body["inviter_id"].clone(), by_operator.body["public_inviter_data"].clone()),
        (Value::Null, Value::Null)
    );
    let listed = admin.get(&path).await;
    let with_inviter =
        listed.body["data"].as_array().unwrap().iter().find(|i| i["email_address"] == "carol@example.com").cloned();
    assert_eq!(with_inviter.unwrap()["public_inviter_data"]["user_id"], ada.as_str(), "lists carry it too");

    // An inviter who is gone: the id stays, their data is null.
    let cy = admin.post("/v1/users", json!({"email_address": ["cy@example.com"]})).await.body["id"].clone();
    let by_cy = admin.post(&path, json!({"email_address": "eve@example.com", "inviter_user_id": cy})).await;
    assert_eq!(by_cy.status, StatusCode::OK, "{}", by_cy.text);
    assert_eq!(
        admin.call(reqwest::Method::DELETE, &format!("/v1/users/{}", cy.as_str().unwrap()), None).await.status,
        StatusCode::OK
    );
    let listed = admin.get(&path).await;
    let by_gone = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email_address"] == "eve@example.com")
        .cloned()
        .unwrap();
    assert_eq!((by_gone["inviter_id"].clone(), by_gone["public_inviter_data"].clone()), (cy, Value::Null));
});

crate::both_backends!(query_parameters_are_honoured_or_refused, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    admin.post("/v1/users", json!({"email_address": ["ada@example.com"]})).await;
    for (path, name) in [
        ("/v1/users?email_address_query=ada", "email_address_query"),
        ("/v1/users?limit=5&starting_after=user_x", "starting_after"),
        (
            "/v1/organizations?include_missing_member_with_elevated_permissions=true",
            "include_missing_member_with_elevated_permissions",
        ),
        ("/v1/jwt_templates?nonsense=1", "nonsense"),
    ] {
        let refused = admin.get(path).await;
        assert_eq!((refused.status, refused.error_code()), (StatusCode::BAD_REQUEST, "query_param_unknown"), "{path}");
        assert_eq!(refused.body["errors"][0]["meta"]["param_name"], name, "{path}");
    }
    let anonymous = server.browser().get("/v1/users?nonsense=1").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "the key is checked first");
    let listed = admin.get("/v1/users?limit=5&email_address[]=ada@example.com").await;
    assert_eq!(listed.status, StatusCode::OK, "documented keys pass, bracketed too: {}", listed.text);
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
});

crate::both_backends!(members_see_no_username_but_their_own, |backend| async move {
    // `username` joined public_user_data for Clerk's schema; a username signs in, so the
    // Frontend API shows it to its owner only, like an address (docs/SECURITY.md).
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let ada = crate::orgs::Person::sign_up(&server, "ada@example.com").await;
    let bob = crate::orgs::Person::sign_up(&server, "bob@example.com").await;
    for (id, name) in [(&ada.user_id, "ada_l"), (&bob.user_id, "bob_b")] {
        let r = admin.patch(&format!("/v1/users/{id}"), json!({"username": name})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let org = ada.call("POST", "/v1/organizations", &[("name", "Family")]).await.body["response"]["id"].clone();
    let org = org.as_str().unwrap().to_owned();
    let added = admin.post(&format!("/v1/organizations/{org}/memberships"), json!({"user_id": bob.user_id})).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);

    let path = format!("/v1/organizations/{org}/memberships?_clerk_session_id={}", bob.session_id);
    let members = bob.b.get(&path).await;
    let usernames: Vec<(String, Value)> = members.body["response"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", members.text))
        .iter()
        .map(|m| {
            (m["public_user_data"]["user_id"].as_str().unwrap().to_owned(), m["public_user_data"]["username"].clone())
        })
        .collect();
    assert!(usernames.contains(&(bob.user_id.clone(), json!("bob_b"))), "{usernames:?}");
    assert!(usernames.contains(&(ada.user_id.clone(), Value::Null)), "{usernames:?}");
    assert!(!members.text.contains("ada_l"));
    let backend_view = admin.get(&format!("/v1/organizations/{org}/memberships")).await;
    assert!(backend_view.text.contains("ada_l"), "the Backend API sees it");
});

crate::both_backends!(frontend_api_objects_follow_clerks_document, |backend| async move {
    // From the Frontend API oracle's findings (docs/clerk-conformance.md, "Frontend API"): a
    // password first factor is a `verification_password`; the environment's lockout settings
    // carry the fields the document requires.
    let server = TestServer::start(backend).await;
    let ada = crate::orgs::Person::sign_up(&server, "ada@example.com").await;
    let fresh = server.browser();
    let signed = fresh
        .post(
            "/v1/client/sign_ins",
            &[("identifier", "ada@example.com"), ("strategy", "password"), ("password", crate::orgs::PASSWORD)],
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text);
    let verification = &signed.body["response"]["first_factor_verification"];
    assert_eq!(
        (verification["object"].as_str(), verification["strategy"].as_str()),
        (Some("verification_password"), Some("password")),
        "{verification}"
    );
    assert_eq!(verification["status"], "verified");
    assert!(!ada.user_id.is_empty());

    let env = fresh.get("/v1/environment").await;
    let lockout = &env.body["user_settings"]["attack_protection"]["user_lockout"];
    assert!(lockout["max_attempts"].is_i64() && lockout["duration_in_minutes"].is_i64(), "{lockout}");
});

crate::both_backends!(body_fields_are_honoured_or_refused, |backend| async move {
    let server = TestServer::start(backend).await;
    let admin = Admin::new(&server).await;
    let refused =
        admin.post("/v1/users", json!({"email_address": ["ada@example.com"], "bypass_client_trust": true})).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::BAD_REQUEST, "form_param_unknown"),
        "{}",
        refused.text
    );
    assert_eq!(refused.body["errors"][0]["meta"]["param_name"], "bypass_client_trust");
    assert!(refused.body["errors"][0]["long_message"].as_str().unwrap().contains("email_address"));
    let users = admin.get("/v1/users/count").await;
    assert_eq!(users.body["total_count"], 0, "nothing was created");
    // Each entry of a bulk body is checked, and a bad entry creates nothing.
    let bulk = admin
        .post(
            "/v1/invitations/bulk",
            json!([{"email_address": "bo@example.com"}, {"email_address": "cy@example.com", "template_slug": "x"}]),
        )
        .await;
    assert_eq!((bulk.status, bulk.error_code()), (StatusCode::BAD_REQUEST, "form_param_unknown"), "{}", bulk.text);
    assert_eq!(bulk.body["errors"][0]["meta"]["param_name"], "template_slug");
    assert_eq!(admin.get("/v1/invitations").await.body.as_array().map(Vec::len), Some(0), "nothing was sent");
    let anonymous = server.browser().post_json("/v1/users", &json!({"nonsense": 1})).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "the key is checked first");
    let created = admin.post("/v1/users", json!({"email_address": ["ada@example.com"], "first_name": "Ada"})).await;
    assert_eq!(created.status, StatusCode::OK, "documented fields pass: {}", created.text);
});
