//! Organizations end to end: the Frontend API as a signed-in member uses it, the tokens that
//! carry the active organization, invitations, the Backend API, and the authorization
//! matrix of every organization endpoint for every kind of caller.

use latchkey_core::authz::{has, unpack_permissions, AuthState, Check};
use latchkey_service::orgs::RoleConfig;
use latchkey_token::SessionClaims;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::flows::verifier_for;
use crate::harness::{Backend, Browser, Reply, TestServer};

pub const PASSWORD: &str = "correct horse battery staple";

/// An instance with one permission of the app's own and a custom role.
pub async fn server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.organizations.permissions = vec!["org:invoices:create".into()];
        c.organizations.roles = vec![RoleConfig {
            key: "billing".into(),
            name: "Billing".into(),
            description: "Sends invoices".into(),
            permissions: vec!["org:invoices:create".into(), "org:invoices:read".into()],
        }];
    })
    .await
}

/// A signed-in person with their own browser.
pub struct Person {
    pub b: Browser,
    pub user_id: String,
    pub session_id: String,
}

impl Person {
    pub async fn sign_up(server: &TestServer, email: &str) -> Self {
        let b = server.browser();
        let (user_id, session_id) = server.sign_up(&b, email, PASSWORD).await;
        Self { b, user_id, session_id }
    }

    fn with_session(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}_clerk_session_id={}", self.session_id)
    }

    /// A Frontend API call the way clerk-js makes it: GET, or POST with `_method` tunnelling
    /// and a form body.
    pub async fn call(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Reply {
        if method == "GET" {
            return self.b.get(&self.with_session(path)).await;
        }
        let path = if method == "POST" { path.to_owned() } else { format!("{path}?_method={method}") };
        self.b.post(&self.with_session(&path), form).await
    }

    pub async fn select_org(&self, org: &str) -> Reply {
        self.b
            .post(
                &format!("/v1/client/sessions/{}/touch", self.session_id),
                &[("active_organization_id", org), ("intent", "select_org")],
            )
            .await
    }

    pub async fn claims(&self, server: &TestServer) -> SessionClaims {
        let r = self.b.token(&self.session_id).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let now = latchkey_core::Clock::now_secs(&server.clock);
        verifier_for(server).await.verify(r.body["jwt"].as_str().unwrap(), now).unwrap().session_claims().unwrap()
    }
}

/// `toAuth()` of a token as the SDK computes it, for `has()`.
fn auth_state(c: &SessionClaims) -> AuthState {
    let o = c.o.as_ref();
    AuthState {
        user_id: Some(c.sub.clone()),
        org_id: o.map(|o| o.id.clone()),
        org_role: o.map(|o| format!("org:{}", o.rol)),
        org_permissions: o
            .map(|o| unpack_permissions(c.fea.as_deref().unwrap_or(""), Some(&o.per), Some(&o.fpm)))
            .unwrap_or_default(),
        factor_verification_age: Some(c.fva),
    }
}

fn permission(p: &str) -> Check {
    Check::Permission(p.into())
}

both_backends!(members_create_switch_invite_and_change_roles, |backend| async move {
    let server = server(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;

    // Create: the creator is the admin; the slug comes from the name.
    let created = ada.call("POST", "/v1/organizations", &[("name", "The Lovelace Family")]).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let org = &created.body["response"];
    assert_eq!((org["object"].as_str(), org["slug"].as_str()), (Some("organization"), Some("the-lovelace-family")));
    assert_eq!((org["members_count"].as_i64(), org["pending_invitations_count"].as_i64()), (Some(1), Some(0)));
    let org_id = org["id"].as_str().unwrap().to_owned();
    assert!(org_id.starts_with("org_") && org_id.len() == 31, "{org_id}");
    let mine = &created.body["client"]["sessions"][0]["user"]["organization_memberships"];
    assert_eq!(mine[0]["organization"]["id"], org_id.as_str(), "the client piggy-backs the new membership");
    assert_eq!(mine[0]["role"], "org:admin");
    let perms: Vec<&str> = mine[0]["permissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    for p in ["org:sys_profile:manage", "org:sys_memberships:manage", "org:invoices:create", "org:invoices:read"] {
        assert!(perms.contains(&p), "admin lacks {p}: {perms:?}");
    }
    let again = ada.call("POST", "/v1/organizations", &[("name", "Other"), ("slug", "the-lovelace-family")]).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_identifier_exists"));
    assert_eq!(again.body["errors"][0]["meta"]["param_name"], "slug");
    let bad = ada.call("POST", "/v1/organizations", &[("name", "Bad"), ("slug", "Not A Slug")]).await;
    assert_eq!((bad.status, bad.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_format_invalid"));
    let nameless = ada.call("POST", "/v1/organizations", &[("name", "  ")]).await;
    assert_eq!(nameless.error_code(), "form_param_missing");

    // No active organization yet: no `o` claim. Selecting it puts it in the next token.
    assert!(ada.claims(&server).await.o.is_none());
    let touched = ada.select_org(&org_id).await;
    assert_eq!(touched.status, StatusCode::OK, "{}", touched.text);
    assert_eq!(touched.body["response"]["last_active_organization_id"], org_id.as_str());
    let claims = ada.claims(&server).await;
    let o = claims.o.clone().expect("o claim");
    assert_eq!((o.id.as_str(), o.slg.as_str(), o.rol.as_str()), (org_id.as_str(), "the-lovelace-family", "admin"));
    let state = auth_state(&claims);
    assert!(has(&state, &[Check::Role("org:admin".into())]) && has(&state, &[Check::Role("admin".into())]));
    assert!(has(&state, &[permission("org:invoices:create")]) && has(&state, &[permission("org:invoices:read")]));
    assert!(!has(&state, &[permission("org:sys_memberships:manage")]), "system permissions stay out of tokens");
    let by_slug = ada.select_org("the-lovelace-family").await;
    assert_eq!(by_slug.body["response"]["last_active_organization_id"], org_id.as_str(), "a slug selects too");

    // Invite by email: the invitee signs up with that address and is a member at once.
    let invited = ada
        .call("POST", &format!("/v1/organizations/{org_id}/invitations"), &[("email_address", "bob@example.com")])
        .await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.text);
    assert_eq!(
        (invited.body["response"]["role"].as_str(), invited.body["response"]["status"].as_str()),
        (Some("org:member"), Some("pending"))
    );
    let mail = server.mail_to("bob@example.com").await;
    assert!(
        mail.iter().any(|m| m.text.contains("__clerk_ticket=") && m.text.contains("The Lovelace Family")),
        "{mail:?}"
    );
    let dup = ada
        .call("POST", &format!("/v1/organizations/{org_id}/invitations"), &[("email_address", "BOB@example.com")])
        .await;
    assert_eq!(dup.error_code(), "duplicate_record");
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let bobs = bob.call("GET", "/v1/me/organization_memberships", &[]).await;
    assert_eq!(bobs.body["response"]["total_count"], 1, "{}", bobs.text);
    assert_eq!(bobs.body["response"]["data"][0]["role"], "org:member");
    assert_eq!(bobs.body["response"]["data"][0]["permissions"], json!(["org:sys_memberships:read"]));
    assert_eq!(bobs.body["response"]["data"][0]["public_user_data"]["identifier"], "bob@example.com");
    let listed = ada.call("GET", &format!("/v1/organizations/{org_id}/invitations?status=accepted"), &[]).await;
    assert_eq!(listed.body["response"]["total_count"], 1, "the invitation is accepted: {}", listed.text);

    // Bob's token as a member: the role without `org:`, no invoice permissions.
    bob.select_org(&org_id).await;
    let state = auth_state(&bob.claims(&server).await);
    assert!(has(&state, &[Check::Role("org:member".into())]) && !has(&state, &[Check::Role("org:admin".into())]));
    assert!(!has(&state, &[permission("org:invoices:create")]));

    // A role change shows in the next token.
    let changed = ada
        .call("PATCH", &format!("/v1/organizations/{org_id}/memberships/{}", bob.user_id), &[("role", "billing")])
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(
        (changed.body["response"]["role"].as_str(), changed.body["response"]["role_name"].as_str()),
        (Some("org:billing"), Some("Billing"))
    );
    let state = auth_state(&bob.claims(&server).await);
    assert!(has(&state, &[Check::Role("billing".into()), permission("org:invoices:create")]));
    let unknown = ada
        .call("PATCH", &format!("/v1/organizations/{org_id}/memberships/{}", bob.user_id), &[("role", "org:owner")])
        .await;
    assert_eq!((unknown.status, unknown.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid"));

    // Roles are listed; the last admin can neither leave nor be demoted while others remain.
    let roles = ada.call("GET", &format!("/v1/organizations/{org_id}/roles"), &[]).await;
    let keys: Vec<&str> =
        roles.body["response"]["data"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["org:admin", "org:member", "org:billing"]);
    let leave = ada.call("DELETE", &format!("/v1/me/organization_memberships/{org_id}"), &[]).await;
    assert_eq!(
        (leave.status, leave.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "organization_minimum_permissions_needed")
    );
    let demote = ada
        .call("PATCH", &format!("/v1/organizations/{org_id}/memberships/{}", ada.user_id), &[("role", "org:member")])
        .await;
    assert_eq!(demote.error_code(), "organization_minimum_permissions_needed");

    // Removal shows in the next token: no `o` claim, `has()` false.
    let removed = ada.call("DELETE", &format!("/v1/organizations/{org_id}/memberships/{}", bob.user_id), &[]).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    let claims = bob.claims(&server).await;
    assert!(claims.o.is_none() && !has(&auth_state(&claims), &[Check::Role("org:billing".into())]));
    let gone = bob.select_org(&org_id).await;
    assert_eq!((gone.status, gone.error_code()), (StatusCode::NOT_FOUND, "resource_not_found"), "no longer a member");
    let personal = bob.select_org("").await;
    assert_eq!(personal.body["response"]["last_active_organization_id"], Value::Null);

    // A token for another organization on request, only for a member.
    let token = bob
        .b
        .post(&format!("/v1/client/sessions/{}/tokens", bob.session_id), &[("organization_id", org_id.as_str())])
        .await;
    assert_eq!(token.status, StatusCode::NOT_FOUND, "{}", token.text);
    let token = ada.b.post(&format!("/v1/client/sessions/{}/tokens", ada.session_id), &[("organization_id", "")]).await;
    assert_eq!(token.status, StatusCode::OK, "an empty organization_id is the personal account");

    // The admin renames, then deletes; the organization leaves the creator's memberships.
    let renamed = ada
        .call("PATCH", &format!("/v1/organizations/{org_id}"), &[("name", "Lovelaces"), ("slug", "lovelaces")])
        .await;
    assert_eq!(
        (renamed.body["response"]["name"].as_str(), renamed.body["response"]["slug"].as_str()),
        (Some("Lovelaces"), Some("lovelaces"))
    );
    let privileged =
        ada.call("PATCH", &format!("/v1/organizations/{org_id}"), &[("max_allowed_memberships", "100")]).await;
    assert_eq!((privileged.status, privileged.error_code()), (StatusCode::BAD_REQUEST, "form_param_unknown"));

    // Where the operator turned deletion by admins off, the admin's delete is refused and the
    // organization stays (the rule lives in the service, whichever door asks).
    let operator_access = latchkey::operator().organization(&org_id);
    let off = latchkey_service::orgs::OrganizationUpdate { admin_delete_enabled: Some(false), ..Default::default() };
    server.services.orgs().update_organization(&operator_access, off).await.unwrap();
    let refused = ada.call("DELETE", &format!("/v1/organizations/{org_id}"), &[]).await;
    assert_eq!(
        (refused.status, refused.error_code()),
        (StatusCode::FORBIDDEN, "organization_deletion_not_allowed"),
        "{}",
        refused.text
    );
    assert_eq!(ada.call("GET", &format!("/v1/organizations/{org_id}"), &[]).await.status, StatusCode::OK);
    let on = latchkey_service::orgs::OrganizationUpdate { admin_delete_enabled: Some(true), ..Default::default() };
    server.services.orgs().update_organization(&operator_access, on).await.unwrap();

    let deleted = ada.call("DELETE", &format!("/v1/organizations/{org_id}"), &[]).await;
    assert_eq!(
        deleted.body["response"],
        json!({"object": "organization", "id": org_id, "slug": "lovelaces", "deleted": true})
    );
    assert_eq!(ada.call("GET", "/v1/me/organization_memberships", &[]).await.body["response"]["total_count"], 0);
    assert!(ada.claims(&server).await.o.is_none(), "a deleted organization leaves the token");
});

both_backends!(invitations_are_accepted_at_sign_up_or_explicitly_and_expire, |backend| async move {
    let server = server(backend).await;
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let org = ada.call("POST", "/v1/organizations", &[("name", "Acme")]).await.body["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cyd = Person::sign_up(&server, "cyd@example.com").await;
    let dee = Person::sign_up(&server, "dee@example.com").await;

    // An existing user sees the invitation and accepts it explicitly.
    let inv = ada
        .call(
            "POST",
            &format!("/v1/organizations/{org}/invitations"),
            &[("email_address", "cyd@example.com"), ("role", "org:billing")],
        )
        .await;
    let inv_id = inv.body["response"]["id"].as_str().unwrap().to_owned();
    let pending = cyd.call("GET", "/v1/me/organization_invitations?status=pending", &[]).await;
    assert_eq!(pending.body["response"]["total_count"], 1, "{}", pending.text);
    assert_eq!(pending.body["response"]["data"][0]["public_organization_data"]["name"], "Acme");
    assert_eq!(
        dee.call("GET", "/v1/me/organization_invitations", &[]).await.body["response"]["total_count"],
        0,
        "only the invitee sees it"
    );
    let stolen = dee.call("POST", &format!("/v1/me/organization_invitations/{inv_id}/accept"), &[]).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "another user cannot accept it");
    let accepted = cyd.call("POST", &format!("/v1/me/organization_invitations/{inv_id}/accept"), &[]).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    assert_eq!(accepted.body["response"]["status"], "accepted");
    let memberships = &accepted.body["client"]["sessions"][0]["user"]["organization_memberships"];
    assert_eq!(memberships[0]["role"], "org:billing", "the invited role, piggy-backed on the client");
    let twice = cyd.call("POST", &format!("/v1/me/organization_invitations/{inv_id}/accept"), &[]).await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);

    // An existing user invited later is not made a member by signing in: they accept.
    ada.call("POST", &format!("/v1/organizations/{org}/invitations"), &[("email_address", "dee@example.com")]).await;
    let again = server.browser();
    assert_eq!(server.sign_in(&again, "dee@example.com", PASSWORD).await.status, StatusCode::OK);
    let members = ada.call("GET", &format!("/v1/organizations/{org}/memberships"), &[]).await;
    assert_eq!(members.body["response"]["total_count"], 2, "signing in accepts nothing: {}", members.text);
    let waiting = dee.call("GET", "/v1/me/organization_invitations?status=pending", &[]).await;
    let dee_inv = waiting.body["response"]["data"][0]["id"].as_str().unwrap().to_owned();
    let accepted = dee.call("POST", &format!("/v1/me/organization_invitations/{dee_inv}/accept"), &[]).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.text);
    let members = ada.call("GET", &format!("/v1/organizations/{org}/memberships"), &[]).await;
    assert_eq!(members.body["response"]["total_count"], 3, "{}", members.text);

    // A revoked invitation is not accepted; an expired one neither, and shows as expired.
    let revoke_me = ada
        .call("POST", &format!("/v1/organizations/{org}/invitations"), &[("email_address", "eve@example.com")])
        .await;
    let revoke_id = revoke_me.body["response"]["id"].as_str().unwrap().to_owned();
    let revoked = ada.call("POST", &format!("/v1/organizations/{org}/invitations/{revoke_id}/revoke"), &[]).await;
    assert_eq!(revoked.body["response"]["status"], "revoked");
    let twice = ada.call("POST", &format!("/v1/organizations/{org}/invitations/{revoke_id}/revoke"), &[]).await;
    assert_eq!((twice.status, twice.error_code()), (StatusCode::BAD_REQUEST, "invitation_not_pending"));
    ada.call("POST", &format!("/v1/organizations/{org}/invitations"), &[("email_address", "fay@example.com")]).await;
    server.clock.advance_ms(31 * 24 * 3_600_000);
    let eve = Person::sign_up(&server, "eve@example.com").await;
    let fay = Person::sign_up(&server, "fay@example.com").await;
    for p in [&eve, &fay] {
        assert_eq!(p.call("GET", "/v1/me/organization_memberships", &[]).await.body["response"]["total_count"], 0);
    }
    // Sessions last 7 days, so the admin signs in again to look.
    let b = server.browser();
    let r = server.sign_in(&b, "ada@example.com", PASSWORD).await;
    let ada = Person {
        b,
        user_id: ada.user_id,
        session_id: r.body["response"]["created_session_id"].as_str().unwrap().to_owned(),
    };
    let expired = ada.call("GET", &format!("/v1/organizations/{org}/invitations?status=expired"), &[]).await;
    let emails: Vec<&str> = expired.body["response"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["email_address"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["fay@example.com"], "{}", expired.text);
    let counted = ada.call("GET", &format!("/v1/organizations/{org}"), &[]).await;
    assert_eq!(
        (
            counted.body["response"]["members_count"].as_i64(),
            counted.body["response"]["pending_invitations_count"].as_i64()
        ),
        (Some(3), Some(0))
    );
});

/// A Backend API caller.
struct Admin {
    b: Browser,
    key: String,
}

impl Admin {
    async fn new(server: &TestServer) -> Self {
        let (_, key) = server.services.create_secret_key(&latchkey::operator(), "tests").await.unwrap();
        Self { b: server.browser(), key }
    }
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut req = self.b.http.request(method, self.b.url(path)).bearer_auth(&self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.b.send(req).await
    }
    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }
}

both_backends!(backend_api_organizations_memberships_and_invitations, |backend| async move {
    let server = server(backend).await;
    let admin = Admin::new(&server).await;
    let mut users = Vec::new();
    for i in 0..4 {
        let r = admin
            .post("/v1/users", json!({"email_address": [format!("m{i}@example.com")], "first_name": format!("M{i}")}))
            .await;
        users.push(r.body["id"].as_str().unwrap().to_owned());
    }

    let created = admin
        .post("/v1/organizations", json!({"name": "Acme Inc", "slug": "acme", "created_by": users[0], "max_allowed_memberships": 3, "public_metadata": {"plan": "pro", "keep": 1}, "private_metadata": {"stripe": "cus_1"}}))
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    assert_eq!(created.content_type(), "application/json");
    let org = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (created.body["created_by"].as_str(), created.body["private_metadata"]["stripe"].as_str()),
        (Some(users[0].as_str()), Some("cus_1"))
    );
    let other = admin.post("/v1/organizations", json!({"name": "Beta"})).await;
    assert_eq!(other.body["slug"], "beta");
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin.post("/v1/organizations", json!({"name": "X", "slug": "acme"})).await.error_code(),
        "form_identifier_exists"
    );
    assert_eq!(admin.post("/v1/organizations", json!({"slug": "nameless"})).await.error_code(), "form_param_missing");
    let ghost = admin.post("/v1/organizations", json!({"name": "Ghost", "created_by": "user_nobody"})).await;
    assert_eq!(
        (ghost.status, ghost.body["errors"][0]["meta"]["param_name"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("created_by"))
    );

    // Get by id or slug; members counted on request.
    let by_slug = admin.get("/v1/organizations/acme?include_members_count=true").await;
    assert_eq!((by_slug.body["id"].as_str(), by_slug.body["members_count"].as_i64()), (Some(org.as_str()), Some(1)));
    assert!(admin.get(&format!("/v1/organizations/{org}")).await.body.get("members_count").is_none());
    assert_eq!(admin.get("/v1/organizations/nope").await.status, StatusCode::NOT_FOUND);

    // Memberships: create, the limit, one per user, list, update, metadata, delete.
    server.clock.advance_ms(1_000);
    let m = admin
        .post(&format!("/v1/organizations/{org}/memberships"), json!({"user_id": users[1], "role": "org:member"}))
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    assert_eq!(
        (m.body["object"].as_str(), m.body["organization"]["id"].as_str()),
        (Some("organization_membership"), Some(org.as_str()))
    );
    assert_eq!(m.body["public_user_data"]["identifier"], "m1@example.com");
    server.clock.advance_ms(1_000);
    admin.post(&format!("/v1/organizations/{org}/memberships"), json!({"user_id": users[2]})).await;
    let full = admin.post(&format!("/v1/organizations/{org}/memberships"), json!({"user_id": users[3]})).await;
    assert_eq!(
        (full.status, full.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "organization_membership_quota_exceeded")
    );
    let twice = admin.post(&format!("/v1/organizations/{org}/memberships"), json!({"user_id": users[1]})).await;
    assert_eq!(twice.error_code(), "already_a_member_in_organization");
    let list = admin.get(&format!("/v1/organizations/{org}/memberships?limit=2")).await;
    assert_eq!((list.body["total_count"].as_i64(), list.body["data"].as_array().unwrap().len()), (Some(3), 2));
    assert_eq!(list.body["data"][0]["public_user_data"]["user_id"], users[2].as_str(), "newest first by default");
    let oldest = admin.get(&format!("/v1/organizations/{org}/memberships?order_by=%2Bcreated_at&limit=1")).await;
    assert_eq!(oldest.body["data"][0]["public_user_data"]["user_id"], users[0].as_str());
    let admins = admin.get(&format!("/v1/organizations/{org}/memberships?role=org:admin")).await;
    assert_eq!(admins.body["total_count"], 1);
    let promoted = admin
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/memberships/{}", users[1]),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.body["role"], "org:admin", "{}", promoted.text);
    let meta = admin
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/memberships/{}/metadata", users[1]),
            Some(json!({"public_metadata": {"seat": 7}, "private_metadata": {"note": "vip"}})),
        )
        .await;
    assert_eq!(
        (meta.body["public_metadata"]["seat"].as_i64(), meta.body["private_metadata"]["note"].as_str()),
        (Some(7), Some("vip"))
    );
    let dropped = admin.call(Method::DELETE, &format!("/v1/organizations/{org}/memberships/{}", users[2]), None).await;
    assert_eq!((dropped.status, dropped.body["object"].as_str()), (StatusCode::OK, Some("organization_membership")));
    assert_eq!(
        admin.call(Method::DELETE, &format!("/v1/organizations/{org}/memberships/{}", users[2]), None).await.status,
        StatusCode::NOT_FOUND
    );
    admin
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/memberships/{}", users[0]),
            Some(json!({"role": "org:member"})),
        )
        .await;
    let last = admin.call(Method::DELETE, &format!("/v1/organizations/{org}/memberships/{}", users[1]), None).await;
    assert_eq!(last.error_code(), "organization_minimum_permissions_needed", "{}", last.text);

    // A user's memberships, the instance-wide list, and users filtered by organization.
    let of_user = admin.get(&format!("/v1/users/{}/organization_memberships", users[1])).await;
    assert_eq!(
        (of_user.body["total_count"].as_i64(), of_user.body["data"][0]["organization"]["slug"].as_str()),
        (Some(1), Some("acme"))
    );
    assert_eq!(admin.get("/v1/users/user_nobody/organization_memberships").await.status, StatusCode::NOT_FOUND);
    admin
        .post(&format!("/v1/organizations/{other_id}/memberships"), json!({"user_id": users[3], "role": "org:admin"}))
        .await;
    assert_eq!(admin.get("/v1/organization_memberships").await.body["total_count"], 3);
    let in_org = admin.get(&format!("/v1/users?organization_id={org}&order_by=%2Bcreated_at")).await;
    let mut ids: Vec<&str> = in_org.body.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut want = vec![users[0].as_str(), users[1].as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "the members, and only them");
    assert_eq!(admin.get(&format!("/v1/users/count?organization_id={other_id}")).await.body["total_count"], 1);

    // Lists: query, ids, ordering, members count.
    let q = admin.get("/v1/organizations?query=ACM&include_members_count=true").await;
    assert_eq!((q.body["total_count"].as_i64(), q.body["data"][0]["members_count"].as_i64()), (Some(1), Some(2)));
    let by_name = admin.get("/v1/organizations?order_by=name").await;
    let names: Vec<&str> =
        by_name.body["data"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Acme Inc", "Beta"]);
    let by_members = admin.get("/v1/organizations?order_by=-members_count").await;
    assert_eq!(by_members.body["data"][0]["id"], org.as_str());
    let bad_order = admin.get("/v1/organizations?order_by=slug").await;
    assert_eq!(
        (bad_order.status, bad_order.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "form_param_value_invalid")
    );
    assert_eq!(admin.get(&format!("/v1/organizations?organization_id={other_id}")).await.body["total_count"], 1);
    assert_eq!(admin.get("/v1/organizations?limit=0").await.error_code(), "form_param_value_invalid");

    // Update and metadata: merge with null deleting, replace.
    let updated = admin
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}"),
            Some(json!({"name": "Acme", "admin_delete_enabled": false, "max_allowed_memberships": 10})),
        )
        .await;
    assert_eq!(
        (
            updated.body["name"].as_str(),
            updated.body["admin_delete_enabled"].as_bool(),
            updated.body["max_allowed_memberships"].as_i64()
        ),
        (Some("Acme"), Some(false), Some(10))
    );
    let bad = admin.call(Method::PATCH, &format!("/v1/organizations/{org}"), Some(json!({"slug": "Bad Slug"}))).await;
    assert_eq!(bad.body["errors"][0]["meta"]["param_name"], "slug");
    let merged = admin
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/metadata"),
            Some(json!({"public_metadata": {"keep": null, "seats": 5}})),
        )
        .await;
    assert_eq!(merged.body["public_metadata"], json!({"plan": "pro", "seats": 5}));
    assert_eq!(merged.body["private_metadata"], json!({"stripe": "cus_1"}), "untouched");
    let replaced = admin
        .call(
            Method::PUT,
            &format!("/v1/organizations/{org}/metadata"),
            Some(json!({"private_metadata": {"new": true}})),
        )
        .await;
    assert_eq!(
        (replaced.body["private_metadata"].clone(), replaced.body["public_metadata"]["plan"].as_str()),
        (json!({"new": true}), Some("pro"))
    );
    let not_object = admin
        .call(Method::PATCH, &format!("/v1/organizations/{org}/metadata"), Some(json!({"public_metadata": [1]})))
        .await;
    assert_eq!(not_object.error_code(), "form_param_format_invalid");

    // Invitations: create, bulk all-or-nothing, list by status, get, revoke.
    let inv = admin.post(&format!("/v1/organizations/{org}/invitations"), json!({"email_address": "new@example.com", "role": "org:billing", "inviter_user_id": users[0], "public_metadata": {"team": "ops"}})).await;
    assert_eq!(inv.status, StatusCode::OK, "{}", inv.text);
    assert_eq!(
        (inv.body["object"].as_str(), inv.body["role_name"].as_str()),
        (Some("organization_invitation"), Some("Billing"))
    );
    assert!(inv.body["url"].as_str().unwrap().contains("__clerk_ticket="));
    let inv_id = inv.body["id"].as_str().unwrap().to_owned();
    let member_invite =
        admin.post(&format!("/v1/organizations/{org}/invitations"), json!({"email_address": "m1@example.com"})).await;
    assert_eq!(member_invite.error_code(), "already_a_member_in_organization");
    let half_bad = admin
        .call(
            Method::POST,
            &format!("/v1/organizations/{org}/invitations/bulk"),
            Some(json!([{"email_address": "b1@example.com"}, {"email_address": "nope"}])),
        )
        .await;
    assert_eq!(half_bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        admin.get(&format!("/v1/organizations/{org}/invitations")).await.body["total_count"],
        1,
        "none of the bulk was created"
    );
    let bulk = admin
        .call(
            Method::POST,
            &format!("/v1/organizations/{org}/invitations/bulk"),
            Some(
                json!([{"email_address": "b1@example.com"}, {"email_address": "b2@example.com", "role": "org:admin"}]),
            ),
        )
        .await;
    assert_eq!(bulk.body["total_count"], 2, "{}", bulk.text);
    let not_array = admin
        .call(
            Method::POST,
            &format!("/v1/organizations/{org}/invitations/bulk"),
            Some(json!({"email_address": "x@example.com"})),
        )
        .await;
    assert_eq!((not_array.status, not_array.error_code()), (StatusCode::BAD_REQUEST, "malformed_request_body"));
    let got = admin.get(&format!("/v1/organizations/{org}/invitations/{inv_id}")).await;
    assert_eq!(
        (got.body["public_metadata"]["team"].as_str(), got.body["url"].clone()),
        (Some("ops"), Value::Null),
        "the link is shown once"
    );
    assert_eq!(
        admin.get(&format!("/v1/organizations/{other_id}/invitations/{inv_id}")).await.status,
        StatusCode::NOT_FOUND,
        "not across organizations"
    );
    let revoked = admin
        .post(&format!("/v1/organizations/{org}/invitations/{inv_id}/revoke"), json!({"requesting_user_id": users[0]}))
        .await;
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(admin.get(&format!("/v1/organizations/{org}/invitations?status=pending")).await.body["total_count"], 2);
    assert_eq!(
        admin.get(&format!("/v1/organizations/{org}/invitations?status=bogus")).await.error_code(),
        "form_param_value_invalid"
    );

    // Deleting removes the memberships and invitations with it.
    let deleted = admin.call(Method::DELETE, &format!("/v1/organizations/{org}"), None).await;
    assert_eq!(deleted.body, json!({"object": "organization", "id": org, "slug": "acme", "deleted": true}));
    assert_eq!(admin.get(&format!("/v1/users/{}/organization_memberships", users[1])).await.body["total_count"], 0);
    assert!(server.store.get_org_invitation(&inv_id).await.unwrap().is_none());
    assert_eq!(
        admin.call(Method::DELETE, &format!("/v1/organizations/{org}"), None).await.status,
        StatusCode::NOT_FOUND
    );
});

/// Who calls, in the order each row is tried: the admin last, so that the refused calls
/// of the others meet the state the row starts from.
const CALLERS: [&str; 4] = ["signed out", "member", "admin of another organization", "admin"];

/// What the organization looks like in the store, to prove a refused call changed nothing.
async fn snapshot(server: &TestServer, org: &str) -> String {
    let s = &server.store;
    let query = latchkey_store::MembershipQuery { organization_id: Some(org.into()), limit: 100, ..Default::default() };
    format!(
        "{:?} {:?} {:?}",
        s.get_organization(org).await.unwrap(),
        s.list_memberships(&query).await.unwrap(),
        s.list_org_invitations(org, &[], 100, 0).await.unwrap()
    )
}

both_backends!(authorization_matrix_of_every_organization_endpoint, |backend| async move {
    let server = server(backend).await;
    let admin = Person::sign_up(&server, "admin@example.com").await;
    let member = Person::sign_up(&server, "member@example.com").await;
    let other = Person::sign_up(&server, "other@example.com").await;
    let x = admin.call("POST", "/v1/organizations", &[("name", "X")]).await.body["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let y = other.call("POST", "/v1/organizations", &[("name", "Y")]).await.body["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = Admin::new(&server).await;
    key.post(&format!("/v1/organizations/{x}/memberships"), json!({"user_id": member.user_id})).await;
    let spare = key.post("/v1/users", json!({"email_address": ["spare@example.com"]})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The operator adds the spare user (the Backend API acts for them).
    key.post(&format!("/v1/organizations/{x}/memberships"), json!({"user_id": spare})).await;
    let inv =
        key.post(&format!("/v1/organizations/{x}/invitations"), json!({"email_address": "invitee@example.com"})).await;
    let inv = inv.body["id"].as_str().unwrap().to_owned();
    let foreign_inv =
        key.post(&format!("/v1/organizations/{y}/invitations"), json!({"email_address": "someone@example.com"})).await;
    let foreign_inv = foreign_inv.body["id"].as_str().unwrap().to_owned();
    let people = [None, Some(&member), Some(&other), Some(&admin)];

    // (method, path, form, expected status for each of CALLERS; None = not called).
    // `{sid}` is the caller's own session.
    let o = format!("/v1/organizations/{x}");
    type Row = (&'static str, String, Vec<(&'static str, String)>, [Option<u16>; 4]);
    let all = |so, m, oth, a| [Some(so), Some(m), Some(oth), Some(a)];
    let rows: Vec<Row> = vec![
        ("GET", o.clone(), vec![], all(401, 200, 404, 200)),
        ("GET", "/v1/organizations/x-slug-of-nothing".into(), vec![], all(401, 404, 404, 404)),
        ("PATCH", o.clone(), vec![("name", "X renamed".into())], all(401, 403, 404, 200)),
        ("GET", format!("{o}/memberships"), vec![], all(401, 200, 404, 200)),
        // Members join by invitation: nobody adds a user directly through the Frontend API.
        ("POST", format!("{o}/memberships"), vec![("user_id", spare.clone())], all(401, 403, 404, 403)),
        ("PATCH", format!("{o}/memberships/{spare}"), vec![("role", "org:billing".into())], all(401, 403, 404, 200)),
        ("DELETE", format!("{o}/memberships/{spare}"), vec![], all(401, 403, 404, 200)),
        (
            "PATCH",
            format!("{o}/memberships/{}", admin.user_id),
            vec![("role", "org:member".into())],
            all(401, 403, 404, 422),
        ),
        ("GET", format!("{o}/invitations"), vec![], all(401, 403, 404, 200)),
        (
            "POST",
            format!("{o}/invitations"),
            vec![("email_address", "new@example.com".into())],
            all(401, 403, 404, 200),
        ),
        (
            "POST",
            format!("{o}/invitations/bulk"),
            vec![("email_address", "bulk@example.com".into())],
            all(401, 403, 404, 200),
        ),
        ("POST", format!("{o}/invitations/{inv}/revoke"), vec![], all(401, 403, 404, 200)),
        ("POST", format!("/v1/organizations/{y}/invitations/{foreign_inv}/revoke"), vec![], all(401, 404, 200, 404)),
        ("GET", format!("{o}/roles"), vec![], all(401, 200, 404, 200)),
        ("GET", format!("{o}/domains"), vec![], all(401, 200, 404, 200)),
        ("GET", format!("{o}/membership_requests"), vec![], all(401, 200, 404, 200)),
        ("GET", "/v1/me/organization_memberships".into(), vec![], all(401, 200, 200, 200)),
        ("GET", "/v1/me/organization_invitations".into(), vec![], all(401, 200, 200, 200)),
        ("GET", "/v1/me/organization_suggestions".into(), vec![], all(401, 200, 200, 200)),
        ("POST", format!("/v1/me/organization_invitations/{foreign_inv}/accept"), vec![], all(401, 404, 404, 404)),
        (
            "POST",
            "/v1/client/sessions/{sid}/touch".into(),
            vec![("active_organization_id", x.clone())],
            all(401, 200, 404, 200),
        ),
        (
            "POST",
            "/v1/client/sessions/{sid}/tokens".into(),
            vec![("organization_id", x.clone())],
            all(401, 200, 404, 200),
        ),
        ("POST", "/v1/organizations".into(), vec![("name", "Fresh".into())], all(401, 200, 200, 200)),
        ("DELETE", format!("/v1/me/organization_memberships/{x}"), vec![], [Some(401), Some(200), Some(404), None]),
        ("DELETE", o.clone(), vec![], all(401, 404, 404, 200)),
    ];
    for (method, path, form, expected) in &rows {
        for (i, person) in people.iter().enumerate() {
            let Some(want) = expected[i] else { continue };
            let path = path.replace("{sid}", person.map_or("sess_none", |p| p.session_id.as_str()));
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let before = snapshot(&server, &x).await;
            let r = match person {
                Some(p) => p.call(method, &path, &form).await,
                None => {
                    Person { b: server.browser(), user_id: String::new(), session_id: "sess_none".into() }
                        .call(method, &path, &form)
                        .await
                }
            };
            assert_eq!(r.status.as_u16(), want, "{method} {path} as {}: {}", CALLERS[i], r.text);
            if !r.status.is_success() {
                assert_eq!(r.content_type(), "application/json");
                assert!(r.body["clerk_trace_id"].is_string() && r.headers.contains_key("x-request-id"), "{}", r.text);
                assert!(r.body["errors"][0]["code"].is_string(), "{method} {path}: {}", r.text);
                assert_eq!(snapshot(&server, &x).await, before, "{method} {path} as {} changed something", CALLERS[i]);
            }
        }
    }

    // The Backend API: only a secret key opens it; a session token of any member does not.
    let z = key.post("/v1/organizations", json!({"name": "Z", "created_by": admin.user_id})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let zo = format!("/v1/organizations/{z}");
    let backend_rows: Vec<(Method, String, Option<Value>, u16)> = vec![
        (Method::GET, "/v1/organizations".into(), None, 200),
        (Method::POST, "/v1/organizations".into(), Some(json!({"name": "W"})), 200),
        (Method::GET, zo.clone(), None, 200),
        (Method::PATCH, zo.clone(), Some(json!({"name": "Z2"})), 200),
        (Method::PATCH, format!("{zo}/metadata"), Some(json!({"public_metadata": {"a": 1}})), 200),
        (Method::PUT, format!("{zo}/metadata"), Some(json!({"public_metadata": {}})), 200),
        (Method::POST, format!("{zo}/memberships"), Some(json!({"user_id": spare})), 200),
        (Method::GET, format!("{zo}/memberships"), None, 200),
        (Method::PATCH, format!("{zo}/memberships/{spare}"), Some(json!({"role": "org:admin"})), 200),
        (Method::PATCH, format!("{zo}/memberships/{spare}/metadata"), Some(json!({"public_metadata": {"b": 2}})), 200),
        (Method::DELETE, format!("{zo}/memberships/{spare}"), None, 200),
        (Method::GET, "/v1/organization_memberships".into(), None, 200),
        (Method::GET, format!("/v1/users/{}/organization_memberships", admin.user_id), None, 200),
        (Method::POST, format!("{zo}/invitations"), Some(json!({"email_address": "zz@example.com"})), 200),
        (Method::POST, format!("{zo}/invitations/bulk"), Some(json!([{"email_address": "zb@example.com"}])), 200),
        (Method::GET, format!("{zo}/invitations"), None, 200),
        (Method::DELETE, zo.clone(), None, 200),
    ];
    let tokens: Vec<Option<String>> = {
        let mut t = vec![None];
        for p in [&member, &other, &admin] {
            t.push(p.b.token(&p.session_id).await.body["jwt"].as_str().map(str::to_owned));
        }
        t
    };
    for (method, path, body, with_key) in &backend_rows {
        for (i, token) in tokens.iter().enumerate() {
            let mut req = key.b.http.request(method.clone(), key.b.url(path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let r = key.b.send(req).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} as {} with its session token: {}",
                CALLERS[i],
                r.text
            );
        }
        let r = key.call(method.clone(), path, body.clone()).await;
        assert_eq!(r.status.as_u16(), *with_key, "{method} {path} with the secret key: {}", r.text);
    }
});
