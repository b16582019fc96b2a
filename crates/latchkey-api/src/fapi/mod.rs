//! The Frontend API, Clerk's wire format (docs/frontend-api.md §3–§7): `/v1` paths, form or
//! JSON bodies, `_method` tunnelling, the `{response, client}` envelope with the client on
//! every mutation, bare `environment` and token responses, and the `__client`,
//! `__client_uat` and `__session` cookies. The hosted pages call the same service functions.

mod data_export;
mod email_link;
mod external_accounts;
mod handshake;
pub mod json;
mod me;
mod oauth;
mod orgs;
mod passkeys;
mod reverification;
mod second_factors;
mod sessions;
mod sign_in;
mod sign_up;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use latchkey_axum::credential::authorization_token;
use latchkey_service::authority::Client;
use latchkey_service::{RequestContext, ServiceError};
use serde_json::{json, Value};

use crate::cookies::{append_set_cookies, read_client_cookie};
use crate::error::{json_response, ApiError};
use crate::{AppConfig, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/environment", get(environment).patch(environment))
        .route("/v1/client", get(get_client).put(create_client).post(create_client).delete(delete_client))
        .merge(sign_up::routes())
        .merge(sign_in::routes())
        .merge(oauth::routes())
        .merge(email_link::routes())
        .merge(sessions::routes())
        .merge(handshake::routes())
        .merge(me::routes())
        .merge(data_export::routes())
        .merge(external_accounts::routes())
        .merge(second_factors::routes())
        .merge(passkeys::routes())
        .merge(reverification::routes())
        .merge(orgs::routes())
}

/// The environment, built once from Clerk's recorded shape with this instance's settings.
pub fn environment_json(config: &AppConfig, services: &latchkey_service::ServiceConfig) -> Value {
    let app_name = services.app_name.as_str();
    let mut env: Value = serde_json::from_str(include_str!("environment.json")).unwrap_or_else(|_| json!({}));
    let base = config.public_url.trim_end_matches('/');
    if let Some(d) = env.get_mut("display_config").and_then(Value::as_object_mut) {
        d.insert("application_name".into(), json!(app_name));
        d.insert("instance_environment_type".into(), json!("production"));
        for (k, path) in [
            ("home_url", "/"),
            ("sign_in_url", "/sign-in"),
            ("sign_up_url", "/sign-up"),
            ("user_profile_url", "/user"),
            ("after_sign_in_url", "/user"),
            ("after_sign_up_url", "/user"),
            ("after_sign_out_one_url", "/sign-in"),
            ("after_sign_out_all_url", "/sign-in"),
            ("after_switch_session_url", "/user"),
            ("organization_profile_url", "/organization"),
            ("create_organization_url", "/organization"),
            ("after_leave_organization_url", "/user"),
            ("after_create_organization_url", "/organization"),
        ] {
            d.insert(k.into(), json!(format!("{base}{path}")));
        }
    }
    if let Some(a) = env.pointer_mut("/user_settings/attributes/username").and_then(Value::as_object_mut) {
        a.insert("enabled".into(), json!(true));
        a.insert("used_for_first_factor".into(), json!(true));
        a.insert("first_factors".into(), json!(["password"]));
    }
    if let Some(p) = env.pointer_mut("/user_settings/password_settings").and_then(Value::as_object_mut) {
        p.insert("max_length".into(), json!(latchkey_core::password::MAX_CODE_POINTS));
    }
    // The providers' buttons: Clerk's components show one per enabled strategy.
    if let Some(social) = env.pointer_mut("/user_settings/social").and_then(Value::as_object_mut) {
        for p in &services.oauth {
            social.insert(
                p.strategy.clone(),
                json!({
                    "enabled": true, "required": false, "authenticatable": true,
                    "block_email_subaddresses": false, "strategy": p.strategy, "not_selectable": false,
                    "deprecated": false, "name": p.name, "logo_url": null,
                }),
            );
        }
    }
    second_factor_settings(&mut env, services.second_factors);
    email_link_settings(&mut env, services.email_links);
    passkey_settings(&mut env, &services.passkeys);
    let orgs = &services.organizations;
    if let Some(o) = env.get_mut("organization_settings").and_then(Value::as_object_mut) {
        o.insert("enabled".into(), json!(orgs.enabled));
        o.insert("max_allowed_memberships".into(), json!(orgs.max_allowed_memberships));
        o.insert("actions".into(), json!({"admin_delete": orgs.admin_delete_enabled}));
        o.insert("creator_role".into(), json!(latchkey_core::authz::with_org_prefix(&orgs.creator_role)));
    }
    if let Some(a) = env.pointer_mut("/user_settings/actions").and_then(Value::as_object_mut) {
        a.insert("delete_self".into(), json!(services.delete_self_enabled));
        a.insert("create_organization".into(), json!(orgs.enabled));
        let limit = (orgs.create_limit_per_user > 0).then_some(orgs.create_limit_per_user);
        a.insert("create_organizations_limit".into(), json!(limit));
    }
    env
}

/// Email links as Clerk's components read them (docs/email-links.md): a first factor of the
/// address for sign-ins; for sign-ups, `verifications` naming the link makes `<SignUp/>` show
/// its link card instead of the code's.
fn email_link_settings(env: &mut Value, links: latchkey_service::identity::EmailLinkConfig) {
    if let Some(a) = env.pointer_mut("/user_settings/attributes/email_address").and_then(Value::as_object_mut) {
        let first = if links.sign_in { json!(["email_code", "email_link"]) } else { json!(["email_code"]) };
        a.insert("first_factors".into(), first);
        let verify = if links.sign_up { json!(["email_link"]) } else { json!(["email_code"]) };
        a.insert("verifications".into(), verify);
    }
    if let Some(p) = env.pointer_mut("/user_settings/attack_protection/email_link").and_then(Value::as_object_mut) {
        p.insert("require_same_client".into(), json!(links.require_same_client));
    }
}

/// Passkeys as Clerk's components read them (docs/passkeys.md): the attribute turns on the
/// "Use passkey" button (with `show_sign_in_button`), the browser's autofill (with
/// `allow_autofill`) and the passkeys section of `<UserProfile/>`.
fn passkey_settings(env: &mut Value, passkeys: &latchkey_service::passkeys::PasskeySettings) {
    let on = passkeys.enabled();
    if let Some(a) = env.pointer_mut("/user_settings/attributes/passkey").and_then(Value::as_object_mut) {
        a.insert("enabled".into(), json!(on));
        a.insert("used_for_first_factor".into(), json!(on));
        a.insert("first_factors".into(), if on { json!(["passkey"]) } else { json!([]) });
        a.insert("verifications".into(), if on { json!(["passkey"]) } else { json!([]) });
    }
    if let Some(s) = env.pointer_mut("/user_settings/passkey_settings").and_then(Value::as_object_mut) {
        s.insert("allow_autofill".into(), json!(on && passkeys.allow_autofill));
        s.insert("show_sign_in_button".into(), json!(on && passkeys.show_sign_in_button));
        s.insert("satisfies_second_factor".into(), json!(on && passkeys.satisfies_second_factor));
    }
}

/// Authenticator apps and backup codes as Clerk's components read them (docs/second-factors.md):
/// the two attributes offer them as second factors unless the policy is off; `required` also
/// makes new sessions of users without one wait for the `setup-mfa` task.
fn second_factor_settings(env: &mut Value, policy: latchkey_service::second_factors::Policy) {
    use latchkey_service::second_factors::Policy;
    let on = policy != Policy::Off;
    let required = policy == Policy::Required;
    for (attribute, strategy) in [("authenticator_app", "totp"), ("backup_code", "backup_code")] {
        let pointer = format!("/user_settings/attributes/{attribute}");
        if let Some(a) = env.pointer_mut(&pointer).and_then(Value::as_object_mut) {
            a.insert("enabled".into(), json!(on));
            a.insert("used_for_second_factor".into(), json!(on));
            a.insert("second_factors".into(), if on { json!([strategy]) } else { json!([]) });
        }
    }
    if let Some(s) = env.pointer_mut("/user_settings/sign_in").and_then(Value::as_object_mut) {
        // Clerk's document allows `required` alone here.
        s.insert("second_factor".into(), json!({"required": required}));
    }
    // Not in Clerk's document, but clerk-js reads it (UserProfile offers no "remove" when
    // required); docs/clerk-conformance.md records it.
    if let Some(s) = env.pointer_mut("/user_settings/sign_up").and_then(Value::as_object_mut) {
        s.insert("mfa".into(), json!({"required": required}));
    }
    if let Some(a) = env.get_mut("auth_config").and_then(Value::as_object_mut) {
        a.insert("reverification".into(), json!(true));
    }
}

async fn environment(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, &state.environment)
}

/// Who is calling: the request context, and the client named by the `__client` cookie or a
/// native app's `Authorization: Bearer <client token>`.
pub struct Caller {
    pub ctx: RequestContext,
    pub client: Option<Client>,
    pub native: bool,
}

fn client_ip(parts: &Parts, config: &AppConfig) -> String {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    // An authenticated Frontend API proxy, or a configured reverse proxy, names the browser.
    let via_proxy = parts.extensions.get::<crate::middleware::ViaProxy>().is_some();
    if via_proxy || peer.is_some_and(|ip| config.trusted_proxies.contains(&ip)) {
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        if let Some(ip) = forwarded_client(forwarded, &config.trusted_proxies, config.forwarded_hops) {
            return ip.to_string();
        }
    }
    peer.map_or_else(|| "unknown".into(), |ip| ip.to_string())
}

/// The client address in `X-Forwarded-For`: proxies append the address they saw, so only
/// the right end is theirs (the left end is whatever the browser claimed). Addresses of
/// trusted proxies are skipped; the `hops`-th remaining address from the right is the client.
pub fn forwarded_client<'a>(
    values: impl Iterator<Item = &'a str>,
    trusted: &[std::net::IpAddr],
    hops: usize,
) -> Option<std::net::IpAddr> {
    let entries: Vec<Option<std::net::IpAddr>> =
        values.flat_map(|v| v.split(',')).map(|s| s.trim().parse::<std::net::IpAddr>().ok()).collect();
    entries.into_iter().rev().filter(|ip| !ip.is_some_and(|ip| trusted.contains(&ip))).nth(hops.max(1) - 1).flatten()
}

pub fn request_context(parts: &Parts, config: &AppConfig) -> RequestContext {
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| crate::middleware::origin_trusted(config, &parts.extensions, o))
        .map(str::to_owned);
    // Kept short and printable: it is only ever shown to the account's owner (in a mail).
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect::<String>())
        .filter(|ua| !ua.is_empty());
    RequestContext { ip: client_ip(parts, config), origin, user_agent }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ctx = request_context(parts, &state.config);
        let bearer = authorization_token(&parts.headers).map(str::to_owned);
        let native_flag =
            parts.uri.query().is_some_and(|q| q.split('&').any(|p| p == "_is_native=1" || p == "_is_native=true"));
        let (token, native) = match bearer {
            Some(t) => (Some(t), true),
            None => (read_client_cookie(&parts.headers, &state.config.cookies), native_flag),
        };
        let client = match token {
            Some(t) => state.services.client_by_token(&t).await?,
            None => None,
        };
        Ok(Self { ctx, client, native })
    }
}

/// A response in Clerk's envelope, with the client and its cookies.
pub struct Reply {
    pub status: StatusCode,
    pub response: Value,
    pub client: Option<Client>,
    /// Set when this request created the client or completed a sign-in or sign-up (which
    /// replaces the client's token): the token to hand out once.
    pub new_token: Option<String>,
    pub native: bool,
    /// The response is the client itself: rendered once for both halves of the envelope (it
    /// mints a token per live session).
    pub echo_client: bool,
}

impl Reply {
    pub fn new(caller: &Caller, response: Value, client: Option<Client>) -> Self {
        Self { status: StatusCode::OK, response, client, new_token: None, native: caller.native, echo_client: false }
    }

    /// A reply whose response is the client, as it is after this request.
    pub fn client(caller: &Caller, client: Client) -> Self {
        Self { echo_client: true, ..Self::new(caller, Value::Null, Some(client)) }
    }
}

/// The signed-in state of a client as the Frontend API reports it: the client JSON (with a
/// fresh token for each live session), and the cookies that mirror it.
pub async fn client_state(
    state: &AppState,
    ctx: &RequestContext,
    client: &Client,
) -> Result<(Value, Vec<String>), ApiError> {
    let s = &state.services;
    let fresh = s.refreshed_client(client).await?;
    let (view, tokens) = s.client_view_with_tokens(ctx, &fresh).await?;
    let active = fresh
        .last_active_session_id
        .as_ref()
        .and_then(|id| tokens.iter().find(|(sid, _)| sid == id))
        .or(tokens.first());
    let policy = &state.config.cookies;
    let mut cookies = Vec::new();
    match active {
        Some((_, jwt)) => {
            cookies.extend(policy.uat(fresh.updated_at.div_euclid(1000)));
            cookies.extend(policy.session(Some(jwt)));
        }
        None => {
            cookies.extend(policy.uat(0));
            cookies.extend(policy.session(None));
        }
    }
    let mut memberships = HashMap::new();
    for (_, user) in &view.sessions {
        if !memberships.contains_key(&user.user.id) {
            memberships.insert(user.user.id.clone(), orgs::memberships_of(state, &user.user.id).await?);
        }
    }
    let client_json = json::client_json(&view, &tokens, &memberships, s.now(), &state.look());
    Ok((client_json, cookies))
}

impl Reply {
    pub async fn send(self, state: &AppState, ctx: &RequestContext) -> Result<Response, ApiError> {
        let (client_json, cookies) = match &self.client {
            Some(c) => {
                let (j, cookies) = client_state(state, ctx, c).await?;
                (j, cookies)
            }
            None => (Value::Null, state.config.cookies.uat(0)),
        };
        let response = if self.echo_client { client_json.clone() } else { self.response };
        let body = json!({"response": response, "client": client_json});
        let mut res = json_response(self.status, &body);
        if self.native {
            if let Some(token) = &self.new_token {
                if let Ok(v) = HeaderValue::from_str(token) {
                    res.headers_mut().insert(header::AUTHORIZATION, v);
                }
            }
        } else {
            if let Some(token) = &self.new_token {
                append_set_cookies(res.headers_mut(), &state.config.cookies.client(token));
            }
            append_set_cookies(res.headers_mut(), &cookies);
        }
        Ok(res)
    }
}

/// The caller's client, created on first use.
pub async fn ensure_client(state: &AppState, caller: &Caller) -> Result<(Client, Option<String>), ApiError> {
    match &caller.client {
        Some(c) => Ok((c.clone(), None)),
        None => {
            let (client, token) = state.services.new_client_for(&caller.ctx).await?;
            Ok((client, Some(token)))
        }
    }
}

/// A caller with a client, for the routes that act on the client's own attempts and
/// sessions: a request without one is answered 401 before the handler runs.
pub struct OnClient {
    pub caller: Caller,
    pub client: Client,
}

impl FromRequestParts<AppState> for OnClient {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let client = require_client(&caller)?;
        Ok(Self { caller, client })
    }
}

impl OnClient {
    /// Replies in the envelope with the client; `new_token` when the step replaced the
    /// client's token.
    pub async fn reply(
        self,
        state: &AppState,
        response: Value,
        new_token: Option<String>,
    ) -> Result<Response, ApiError> {
        let mut reply = Reply::new(&self.caller, response, Some(self.client));
        reply.new_token = new_token;
        reply.send(state, &self.caller.ctx).await
    }
}

fn require_client(caller: &Caller) -> Result<Client, ApiError> {
    caller.client.clone().ok_or_else(|| {
        ApiError(
            ServiceError::unauthenticated("No client: sign in first.")
                .long("This request needs a client cookie or client token."),
        )
    })
}

async fn get_client(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    match &caller.client {
        None => Ok(json_response(StatusCode::OK, &json!({"response": null, "client": null}))),
        Some(c) => {
            let (client_json, cookies) = client_state(&state, &caller.ctx, c).await?;
            let mut res = json_response(StatusCode::OK, &json!({"response": client_json, "client": null}));
            if !caller.native {
                append_set_cookies(res.headers_mut(), &cookies);
            }
            Ok(res)
        }
    }
}

async fn create_client(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let (client, token) = ensure_client(&state, &caller).await?;
    let mut reply = Reply::client(&caller, client);
    reply.new_token = token;
    reply.send(&state, &caller.ctx).await
}

async fn delete_client(State(state): State<AppState>, c: OnClient) -> Result<Response, ApiError> {
    let client = state.services.sign_out_client(&c.client).await?;
    Reply::client(&c.caller, client).send(&state, &c.caller.ctx).await
}

/// An error reply that still hands out the cookie of a client this request created, so the
/// next attempt reuses it instead of leaving it orphaned.
pub(super) fn error_keeping_new_client(
    state: &AppState,
    caller: &Caller,
    e: ServiceError,
    token: Option<String>,
) -> Response {
    let mut res = ApiError(e).into_response();
    if let (Some(token), false) = (token, caller.native) {
        append_set_cookies(res.headers_mut(), &state.config.cookies.client(&token));
    }
    res
}
