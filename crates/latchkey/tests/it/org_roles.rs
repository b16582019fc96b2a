//! Roles and permissions changed at run time through the Backend API
//! (`/v1/organization_roles`, `/v1/organization_permissions`): Clerk's shapes, every refusal
//! changing nothing, each change in the next session token of the members it concerns, on
//! every instance, and configuration no longer seeding roles once they are managed so.

use latchkey_core::authz::{has, unpack_permissions, AuthState, Check};
use latchkey_token::SessionClaims;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Browser, Reply, TestServer};
use crate::orgs::{server, Person};
use crate::webhooks::{drain, worker, Admin, Received, Receiver};

fn permissions_in(c: &SessionClaims) -> Vec<String> {
    c.o.as_ref()
        .map(|o| unpack_permissions(c.fea.as_deref().unwrap_or(""), Some(&o.per), Some(&o.fpm)))
        .unwrap_or_default()
}

fn may(c: &SessionClaims, permission: &str) -> bool {
    let o = c.o.as_ref();
    let state = AuthState {
        user_id: Some(c.sub.clone()),
        org_id: o.map(|o| o.id.clone()),
        org_role: o.map(|o| format!("org:{}", o.rol)),
        org_permissions: permissions_in(c),
        factor_verification_age: Some(c.fva),
    };
    has(&state, &[Check::Permission(permission.into())])
}

fn refused(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!((r.status, r.error_code()), (status, code), "{}", r.text);
}

fn keys(role: &Value) -> Vec<String> {
    role["permissions"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap().to_owned()).collect()
}

fn id(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["id"].as_str().unwrap().to_owned()
}

/// An organization made by `owner` with `member` in it holding `role`, active in the
/// member's session.
async fn family(admin: &Admin, owner: &Person, member: &Person, role: &str) -> String {
    let created = owner.call("POST", "/v1/organizations", &[("name", "The Family")]).await;
    let org = created.body["response"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/organizations/{org}/memberships");
    let added = admin.post(&path, json!({"user_id": member.user_id, "role": role})).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    assert_eq!(member.select_org(&org).await.status, StatusCode::OK);
    org
}

crate::both_backends!(roles_and_permissions_change_at_run_time, |backend| async move {
    let server = server(backend).await;
    let admin = Admin::new(&server).await;
    let rx = Receiver::start().await;
    admin.endpoint(&rx.url, &[]).await;
    let w = worker(&server);

    // What configuration seeded: Clerk's eight system permissions, the app's two, three roles.
    let listed = admin.get("/v1/organization_permissions?limit=100").await;
    assert_eq!(listed.body["total_count"], 10, "{}", listed.text);
    let system = listed.body["data"].as_array().unwrap().iter().filter(|p| p["type"] == "system").count();
    assert_eq!(system, 8);
    let read_members = listed.body["data"].as_array().unwrap().iter().find(|p| p["key"] == "org:sys_memberships:read");
    assert_eq!(read_members.unwrap()["name"], "Read members");
    let roles = admin.get("/v1/organization_roles").await;
    assert_eq!(roles.body["total_count"], 3, "{}", roles.text);
    let billing = roles.body["data"].as_array().unwrap().iter().find(|r| r["key"] == "org:billing").unwrap().clone();
    assert_eq!((billing["id"].as_str(), billing["object"].as_str()), (Some("role_billing"), Some("role")));
    assert_eq!(keys(&billing), ["org:invoices:create", "org:invoices:read"]);

    // A permission of the app's own; the refusals first.
    for (body, code) in [
        (json!({"name": "Sys", "key": "org:sys_reports:read"}), "form_param_format_invalid"),
        (json!({"name": "Bare", "key": "reports"}), "form_param_format_invalid"),
        (json!({"name": "Upper", "key": "org:Reports:read"}), "form_param_format_invalid"),
        (json!({"key": "org:reports:read"}), "form_param_missing"),
        (json!({"name": "Again", "key": "org:invoices:read"}), "duplicate_record"),
    ] {
        refused(&admin.post("/v1/organization_permissions", body).await, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    let created =
        admin.post("/v1/organization_permissions", json!({"name": "Read reports", "key": "org:reports:read"})).await;
    let reports = id(&created);
    assert!(reports.starts_with("perm_"), "{reports}");
    assert_eq!((created.body["type"].as_str(), created.body["object"].as_str()), (Some("user"), Some("permission")));
    assert_eq!(admin.get(&format!("/v1/organization_permissions/{reports}")).await.body["name"], "Read reports");

    // A role with it; refusals change nothing.
    for (body, code) in [
        (json!({"name": "Analyst", "key": "analyst"}), "form_param_format_invalid"),
        (json!({"name": "Analyst", "key": "org:Analyst"}), "form_param_format_invalid"),
        (json!({"name": "Analyst", "key": "org:billing"}), "duplicate_record"),
        (json!({"name": "Analyst", "key": "org:analyst", "permissions": ["perm_nothing"]}), "form_param_value_invalid"),
        (json!({"key": "org:analyst"}), "form_param_missing"),
    ] {
        refused(&admin.post("/v1/organization_roles", body).await, StatusCode::UNPROCESSABLE_ENTITY, code);
    }
    assert_eq!(admin.get("/v1/organization_roles").await.body["total_count"], 3, "no refused role was stored");
    let created = admin
        .post("/v1/organization_roles", json!({"name": "Analyst", "key": "org:analyst", "permissions": [reports]}))
        .await;
    let analyst = id(&created);
    assert_eq!(keys(&created.body), ["org:reports:read"]);
    assert_eq!(created.body["permissions"][0]["id"], reports.as_str());
    assert_eq!(created.body["is_creator_eligible"], false);
    let by_id = admin.get(&format!("/v1/organization_roles?query={analyst}")).await;
    assert_eq!(
        (by_id.body["total_count"].as_i64(), by_id.body["data"][0]["id"].as_str()),
        (Some(1), Some(analyst.as_str()))
    );
    let admin_role = admin.get("/v1/organization_roles/role_admin").await;
    assert!(keys(&admin_role.body).contains(&"org:reports:read".to_owned()), "org:admin holds every permission");
    assert_eq!(admin_role.body["is_creator_eligible"], true);

    // A member holding the role has the permission in the next token.
    let ada = Person::sign_up(&server, "ada@example.com").await;
    let bob = Person::sign_up(&server, "bob@example.com").await;
    let org = family(&admin, &ada, &bob, "org:analyst").await;
    let claims = bob.claims(&server).await;
    assert_eq!(claims.o.as_ref().unwrap().rol, "analyst");
    assert!(may(&claims, "org:reports:read"), "{:?}", permissions_in(&claims));

    // Taken away: gone from the next token; given back: there again; given twice: a conflict.
    let grant = format!("/v1/organization_roles/{analyst}/permissions/{reports}");
    let r = admin.delete(&grant).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(keys(&r.body).is_empty());
    assert!(!may(&bob.claims(&server).await, "org:reports:read"));
    refused(&admin.delete(&grant).await, StatusCode::UNPROCESSABLE_ENTITY, "permission_not_assigned");
    assert_eq!(admin.post(&grant, json!({})).await.status, StatusCode::OK);
    assert!(may(&bob.claims(&server).await, "org:reports:read"));
    refused(&admin.post(&grant, json!({})).await, StatusCode::CONFLICT, "permission_already_assigned");
    refused(
        &admin.post(&format!("/v1/organization_roles/{analyst}/permissions/perm_nothing"), json!({})).await,
        StatusCode::NOT_FOUND,
        "resource_not_found",
    );

    // A new key: the member follows, in the store and in the token.
    let r =
        admin.patch(&format!("/v1/organization_roles/{analyst}"), json!({"key": "org:reader", "name": "Reader"})).await;
    assert_eq!(
        (r.status, r.body["key"].as_str(), r.body["id"].as_str()),
        (StatusCode::OK, Some("org:reader"), Some(analyst.as_str()))
    );
    let member = admin.get(&format!("/v1/organizations/{org}/memberships")).await;
    let held: Vec<&str> = member.body["data"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert!(held.contains(&"org:reader") && !held.contains(&"org:analyst"), "{held:?}");
    assert_eq!(
        member.body["data"].as_array().unwrap().iter().find(|m| m["role"] == "org:reader").unwrap()["role_name"],
        "Reader"
    );
    let claims = bob.claims(&server).await;
    assert_eq!(claims.o.as_ref().unwrap().rol, "reader");
    assert!(may(&claims, "org:reports:read"));

    // What stays: a role members hold, org:admin whole, the configured default role's key,
    // the system permissions.
    refused(
        &admin.delete(&format!("/v1/organization_roles/{analyst}")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "role_in_use",
    );
    refused(
        &admin.delete("/v1/organization_roles/role_admin").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "role_in_configuration",
    );
    let stripped = json!({"permissions": ["org:sys_profile:manage"]});
    refused(
        &admin.patch("/v1/organization_roles/role_admin", stripped).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "admin_role_fixed",
    );
    let perm = "perm_sys_memberships_manage";
    refused(
        &admin.delete(&format!("/v1/organization_roles/role_admin/permissions/{perm}")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "admin_role_fixed",
    );
    refused(
        &admin.patch("/v1/organization_roles/role_member", json!({"key": "org:people"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "role_in_configuration",
    );
    refused(
        &admin.delete("/v1/organization_permissions/perm_sys_profile_manage").await,
        StatusCode::FORBIDDEN,
        "system_permission_fixed",
    );
    refused(
        &admin.patch("/v1/organization_permissions/perm_sys_profile_manage", json!({"name": "x"})).await,
        StatusCode::FORBIDDEN,
        "system_permission_fixed",
    );
    refused(&admin.get("/v1/organization_roles/role_nothing").await, StatusCode::NOT_FOUND, "resource_not_found");
    assert_eq!(
        admin.get(&format!("/v1/organization_roles/{analyst}")).await.body["key"],
        "org:reader",
        "the refusals changed nothing"
    );
    assert_eq!(keys(&admin.get("/v1/organization_roles/role_admin").await.body).len(), 11);

    // A permission's new key reaches every role naming it and the next token.
    let r = admin.patch(&format!("/v1/organization_permissions/{reports}"), json!({"key": "org:reports:view"})).await;
    assert_eq!((r.status, r.body["key"].as_str()), (StatusCode::OK, Some("org:reports:view")), "{}", r.text);
    assert_eq!(keys(&admin.get(&format!("/v1/organization_roles/{analyst}")).await.body), ["org:reports:view"]);
    let claims = bob.claims(&server).await;
    assert!(may(&claims, "org:reports:view") && !may(&claims, "org:reports:read"));
    // Deleted: every role loses it.
    assert_eq!(admin.delete(&format!("/v1/organization_permissions/{reports}")).await.status, StatusCode::OK);
    assert!(keys(&admin.get(&format!("/v1/organization_roles/{analyst}")).await.body).is_empty());
    assert!(!keys(&admin.get("/v1/organization_roles/role_admin").await.body)
        .iter()
        .any(|k| k.starts_with("org:reports")));
    assert!(!may(&bob.claims(&server).await, "org:reports:view"));

    // Once nobody holds it, the role goes.
    let path = format!("/v1/organizations/{org}/memberships/{}", bob.user_id);
    assert_eq!(admin.patch(&path, json!({"role": "org:member"})).await.status, StatusCode::OK);
    let r = admin.delete(&format!("/v1/organization_roles/{analyst}")).await;
    assert_eq!((r.status, r.body["deleted"].as_bool()), (StatusCode::OK, Some(true)), "{}", r.text);
    refused(
        &admin.get(&format!("/v1/organization_roles/{analyst}")).await,
        StatusCode::NOT_FOUND,
        "resource_not_found",
    );
    refused(
        &admin.patch(&path, json!({"role": "org:reader"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_value_invalid",
    );

    // Listing: a query and an order.
    let r = admin.get("/v1/organization_roles?query=bill").await;
    assert_eq!((r.body["total_count"].as_i64(), r.body["data"][0]["key"].as_str()), (Some(1), Some("org:billing")));
    let r = admin.get("/v1/organization_roles?order_by=key").await;
    let order: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(order, ["org:admin", "org:billing", "org:member"]);
    refused(
        &admin.get("/v1/organization_roles?order_by=size").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "form_param_value_invalid",
    );
    let r = admin.get("/v1/organization_permissions?query=perm_sys_profile_delete").await;
    assert_eq!(r.body["data"][0]["name"], "Delete organization");

    // Only a secret key opens these routes: a member's session token does not.
    let token = bob.b.token(&bob.session_id).await.body["jwt"].as_str().unwrap().to_owned();
    let with_token = bob.b.send(bob.b.http.get(bob.b.url("/v1/organization_roles")).bearer_auth(&token)).await;
    assert_eq!(with_token.status, StatusCode::UNAUTHORIZED, "{}", with_token.text);
    let anonymous = bob
        .b
        .send(bob.b.http.post(bob.b.url("/v1/organization_permissions")).json(&json!({"name": "x", "key": "org:x:y"})))
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // Each change sent its event; refusals sent none.
    drain(&w).await;
    let events: Vec<Value> = rx.all().await.iter().map(Received::json).collect();
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("permission.created"), 1);
    assert_eq!(count("role.created"), 1);
    // org:admin given the new permission; a permission taken, given back; the new key; the
    // permission's new key and its deletion in both roles naming it.
    assert_eq!(count("role.updated"), 1 + 2 + 1 + 2 + 2);
    assert_eq!((count("permission.updated"), count("permission.deleted"), count("role.deleted")), (1, 1, 1));
    let made = events.iter().find(|e| e["type"] == "role.created").unwrap();
    assert_eq!(
        (made["data"]["key"].as_str(), made["data"]["id"].as_str()),
        (Some("org:analyst"), Some(analyst.as_str()))
    );

    // Changes made at once all land: six grants to one role in parallel.
    let made = admin.post("/v1/organization_roles", json!({"name": "Busy", "key": "org:busy"})).await;
    let busy = id(&made);
    let mut grants = Vec::new();
    for i in 0..6 {
        let p =
            admin.post("/v1/organization_permissions", json!({"name": "Task", "key": format!("org:task{i}:do")})).await;
        grants.push(format!("/v1/organization_roles/{busy}/permissions/{}", id(&p)));
    }
    let answers = futures_util::future::join_all(grants.iter().map(|g| admin.post(g, json!({})))).await;
    assert!(
        answers.iter().all(|r| r.status == StatusCode::OK),
        "{:?}",
        answers.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert_eq!(keys(&admin.get(&format!("/v1/organization_roles/{busy}")).await.body).len(), 6, "no grant lost");
    let admin_keys = keys(&admin.get("/v1/organization_roles/role_admin").await.body);
    assert_eq!(admin_keys.iter().filter(|k| k.starts_with("org:task")).count(), 6, "org:admin got every new one");
    let cleanup = futures_util::future::join_all(grants.iter().map(|g| admin.delete(g))).await;
    assert!(cleanup.iter().all(|r| r.status == StatusCode::OK));
    assert!(keys(&admin.get(&format!("/v1/organization_roles/{busy}")).await.body).is_empty(), "no removal lost");
    assert_eq!(admin.delete(&format!("/v1/organization_roles/{busy}")).await.status, StatusCode::OK);
});

crate::both_backends!(another_instance_sees_run_time_roles_and_configuration_stops_seeding, |backend| async move {
    let first = server(backend).await;
    let admin = Admin::new(&first).await;
    let ada = Person::sign_up(&first, "ada@example.com").await;
    let bob = Person::sign_up(&first, "bob@example.com").await;
    let org = family(&admin, &ada, &bob, "org:billing").await;
    assert!(may(&bob.claims(&first).await, "org:invoices:read"));

    // A second instance on the same database, whose configuration says billing may only create.
    let (database_url, data_dir) = first.shared_storage();
    let second = TestServer::start_with(backend, |c| {
        c.database_url = database_url.into();
        c.data_dir = data_dir;
        c.organizations.permissions = vec!["org:invoices:create".into()];
        c.organizations.roles = vec![latchkey_service::orgs::RoleConfig {
            key: "billing".into(),
            name: "Billing".into(),
            description: "Sends invoices".into(),
            permissions: vec!["org:invoices:create".into()],
        }];
    })
    .await;
    // Before any change at run time, configuration is the truth: its start applied it.
    let billing = admin.get("/v1/organization_roles/role_billing").await;
    assert_eq!(keys(&billing.body), ["org:invoices:create"], "{}", billing.text);
    assert!(!may(&bob.claims(&first).await, "org:invoices:read"), "the first instance reads the roles afresh");

    // A change made through the first instance shows in tokens the second one mints.
    let read = admin.get("/v1/organization_permissions?query=org:invoices:read").await;
    let read = read.body["data"][0]["id"].as_str().unwrap().to_owned();
    let grant = admin.post(&format!("/v1/organization_roles/role_billing/permissions/{read}"), json!({})).await;
    assert_eq!(grant.status, StatusCode::OK, "{}", grant.text);
    let bob_there = Person {
        b: Browser { base: second.url.clone(), http: bob.b.http.clone() },
        user_id: bob.user_id.clone(),
        session_id: bob.session_id.clone(),
    };
    assert!(may(&bob_there.claims(&second).await, "org:invoices:read"));

    // A third start with that configuration no longer overwrites the role.
    let (database_url, data_dir) = first.shared_storage();
    let third = TestServer::start_with(backend, |c| {
        c.database_url = database_url.into();
        c.data_dir = data_dir;
        c.organizations.roles = vec![latchkey_service::orgs::RoleConfig {
            key: "billing".into(),
            permissions: vec![],
            ..Default::default()
        }];
    })
    .await;
    assert_eq!(
        keys(&admin.get("/v1/organization_roles/role_billing").await.body),
        ["org:invoices:create", "org:invoices:read"]
    );
    let bob_third = Person {
        b: Browser { base: third.url.clone(), http: bob.b.http.clone() },
        user_id: bob.user_id.clone(),
        session_id: bob.session_id.clone(),
    };
    assert!(may(&bob_third.claims(&third).await, "org:invoices:read"));
    assert_eq!(bob_third.claims(&third).await.o.unwrap().id, org);
});
