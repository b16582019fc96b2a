//! A loopback stand-in for GitHub's OAuth 2.0 endpoints and user API, for the tests of the
//! `github` preset only: GitHub has no local implementation (the OpenID Connect tests use a
//! real provider, `oidc/provider.mjs`). It checks what GitHub checks:
//!
//! - the authorization endpoint: the client id, a `redirect_uri`, and a PKCE challenge
//!   (`S256` only); `login=<login>` picks the person (`deny` says no, as GitHub's
//!   `error=access_denied`);
//! - the token endpoint: the client id and secret, a code it issued, once, for that client and
//!   that `redirect_uri`, and the PKCE verifier of its challenge. Like GitHub it answers errors
//!   with 200 and an `error` field, and answers form-encoded unless `Accept: application/json`;
//! - `/user` and `/user/emails`: a `User-Agent` (403 without, as GitHub) and a Bearer token it
//!   issued (401 `Bad credentials` otherwise).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

/// A person at the stand-in: GitHub's numeric id, login, name and addresses
/// (`(email, primary, verified)`).
#[derive(Debug, Clone)]
pub struct GitHubAccount {
    pub id: u64,
    pub login: &'static str,
    pub name: Option<&'static str>,
    pub emails: Vec<(&'static str, bool, bool)>,
}

/// How `/user` and `/user/emails` answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserApi {
    #[default]
    Works,
    /// 500, as an outage.
    Fails,
    /// 401 `Bad credentials` to every token (revoked meanwhile).
    RefusesTokens,
}

struct Grant {
    login: String,
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct Inner {
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, String>,
    user_api: UserApi,
    issued: u64,
}

struct Shared {
    client_id: String,
    client_secret: String,
    accounts: Vec<GitHubAccount>,
    inner: Mutex<Inner>,
}

/// The stand-in, serving on 127.0.0.1 until dropped.
pub struct GitHubStandIn {
    pub url: String,
    pub client_id: String,
    pub client_secret: String,
    shared: Arc<Shared>,
    _shutdown: oneshot::Sender<()>,
}

impl GitHubStandIn {
    pub async fn start(accounts: Vec<GitHubAccount>) -> Self {
        let shared = Arc::new(Shared {
            client_id: "gh-client".into(),
            client_secret: "gh-client-secret".into(),
            accounts,
            inner: Mutex::new(Inner::default()),
        });
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(access_token))
            .route("/user", get(user))
            .route("/user/emails", get(user_emails))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            url,
            client_id: shared.client_id.clone(),
            client_secret: shared.client_secret.clone(),
            shared,
            _shutdown: tx,
        }
    }

    pub fn set_user_api(&self, mode: UserApi) {
        self.shared.inner.lock().unwrap().user_api = mode;
    }

    /// The `[oauth.github]` table that points the preset here.
    pub fn config(&self) -> latchkey_service::oauth::ProviderConfig {
        latchkey_service::oauth::ProviderConfig {
            client_id: self.client_id.clone(),
            client_secret: latchkey_core::secret::ConfigSecret::new(self.client_secret.clone()),
            authorize_url: Some(format!("{}/login/oauth/authorize", self.url)),
            token_url: Some(format!("{}/login/oauth/access_token", self.url)),
            user_url: Some(format!("{}/user", self.url)),
            emails_url: Some(format!("{}/user/emails", self.url)),
            ..latchkey_service::oauth::ProviderConfig::default()
        }
    }
}

fn issue(inner: &mut Inner, prefix: &str) -> String {
    inner.issued += 1;
    let mut salt = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut salt);
    format!("{prefix}_{}_{}", inner.issued, URL_SAFE_NO_PAD.encode(salt))
}

fn found(to: url::Url) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

async fn authorize(State(s): State<Arc<Shared>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let param = |k: &str| q.get(k).cloned().unwrap_or_default();
    if param("client_id") != s.client_id {
        return (StatusCode::NOT_FOUND, "unknown client_id").into_response();
    }
    let Ok(mut back) = url::Url::parse(&param("redirect_uri")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    let challenge = param("code_challenge");
    if challenge.len() < 43 || param("code_challenge_method") != "S256" {
        return (StatusCode::BAD_REQUEST, "a PKCE S256 challenge is required").into_response();
    }
    let login = param("login");
    if login == "deny" {
        back.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user has denied your application access.")
            .append_pair("state", &param("state"));
        return found(back);
    }
    if !s.accounts.iter().any(|a| a.login == login) {
        return (StatusCode::BAD_REQUEST, "no such login at the stand-in").into_response();
    }
    let mut inner = s.inner.lock().unwrap();
    let code = issue(&mut inner, "code");
    let grant = Grant { login, client_id: param("client_id"), redirect_uri: back.to_string(), challenge };
    inner.codes.insert(code.clone(), grant);
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", &param("state"));
    found(back)
}

async fn access_token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let param = |k: &str| f.get(k).cloned().unwrap_or_default();
    let wants_json = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("json"));
    let answer = |pairs: Vec<(&str, String)>| -> Response {
        if wants_json {
            let map: serde_json::Map<String, Value> =
                pairs.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
            Json(Value::Object(map)).into_response()
        } else {
            let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
            ([(header::CONTENT_TYPE, "application/x-www-form-urlencoded")], body).into_response()
        }
    };
    let error = |code: &str| answer(vec![("error", code.to_owned())]);
    if param("client_id") != s.client_id || param("client_secret") != s.client_secret {
        return error("incorrect_client_credentials");
    }
    let mut inner = s.inner.lock().unwrap();
    // A code is spent when presented, right or wrong.
    let Some(grant) = inner.codes.remove(&param("code")) else {
        return error("bad_verification_code");
    };
    if grant.client_id != param("client_id") {
        return error("bad_verification_code");
    }
    if grant.redirect_uri != param("redirect_uri") {
        return error("redirect_uri_mismatch");
    }
    let verifier = param("code_verifier");
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return error("bad_verification_code");
    }
    let token = issue(&mut inner, "gho");
    inner.tokens.insert(token.clone(), grant.login);
    answer(vec![("access_token", token), ("token_type", "bearer".into()), ("scope", "read:user,user:email".into())])
}

/// Why the user API refused a request, in GitHub's words.
enum Refused {
    NoUserAgent,
    Outage,
    BadCredentials,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::NoUserAgent => {
                let msg = "Request forbidden by administrative rules. \
                           Please make sure your request has a User-Agent header";
                (StatusCode::FORBIDDEN, msg).into_response()
            }
            Refused::Outage => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
            Refused::BadCredentials => {
                (StatusCode::UNAUTHORIZED, Json(json!({"message": "Bad credentials"}))).into_response()
            }
        }
    }
}

/// The account the request's token belongs to, or GitHub's refusal.
fn caller(s: &Shared, headers: &HeaderMap) -> Result<GitHubAccount, Refused> {
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if agent.trim().is_empty() {
        return Err(Refused::NoUserAgent);
    }
    let inner = s.inner.lock().unwrap();
    match inner.user_api {
        UserApi::Works => {}
        UserApi::Fails => return Err(Refused::Outage),
        UserApi::RefusesTokens => return Err(Refused::BadCredentials),
    }
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = auth.strip_prefix("Bearer ").ok_or(Refused::BadCredentials)?;
    let login = inner.tokens.get(token).ok_or(Refused::BadCredentials)?;
    s.accounts.iter().find(|a| a.login == login).cloned().ok_or(Refused::BadCredentials)
}

async fn user(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&s, &headers) {
        Ok(a) => Json(json!({
            "id": a.id,
            "login": a.login,
            "name": a.name,
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", a.id),
            "email": null,
        }))
        .into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn user_emails(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match caller(&s, &headers) {
        Ok(a) => {
            let list: Vec<Value> = a
                .emails
                .iter()
                .map(|(email, primary, verified)| {
                    json!({"email": email, "primary": primary, "verified": verified, "visibility": null})
                })
                .collect();
            Json(Value::Array(list)).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}
