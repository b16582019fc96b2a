//! latchkey's HTTP surfaces on axum: the Frontend API (Clerk's wire format), the public
//! endpoints (JWKS, OpenID configuration, health, metrics), the hosted pages and the
//! development mail sink. Handlers extract, authorize, call `latchkey-service` and map errors.

mod babylog;
mod bapi;
pub mod cookies;
mod drain;
pub mod error;
mod fapi;
mod metrics;
mod middleware;
mod org_json;
mod pages;
pub mod params;
pub use fapi::forwarded_client;
mod public;
mod revocations;
mod sync;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use latchkey_service::account::AccountService;
use latchkey_service::admin::AdminService;
use latchkey_service::orgs::OrgService;
use latchkey_service::sync::SyncService;
use latchkey_service::webhooks::WebhookService;
use latchkey_service::Services;
use tokio::net::TcpListener;

pub use cookies::{cookie_suffix, publishable_key, CookiePolicy};
pub use drain::Drain;
pub use metrics::Metrics;

#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The public URL (scheme, host, port; no trailing slash): the token issuer.
    pub public_url: String,
    /// Origins trusted for CORS, CSRF checks, `azp` and `redirect_url` (the public URL's own
    /// origin is always trusted).
    pub allowed_origins: Vec<String>,
    pub dev_mode: bool,
    pub cookies: CookiePolicy,
    pub publishable_key: String,
    pub instance_id: String,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Which `X-Forwarded-For` address is the client's, counted from the right after the
    /// trusted proxies' own (1: the one the nearest proxy added).
    pub forwarded_hops: usize,
    pub request_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Who may read `/metrics` on the main listener.
    pub metrics: MetricsAccess,
}

/// Who may read `/metrics` on the main listener (docs/SECURITY.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Anyone: development mode without a token.
    Open,
    /// Whoever sends `Authorization: Bearer <token>`.
    Token(String),
    /// Nobody (404): metrics are on their own listen address, or not served.
    Closed,
}

impl AppConfig {
    pub fn own_origin(&self) -> String {
        origin_of(&self.public_url).unwrap_or_else(|| self.public_url.clone())
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        origin == self.own_origin() || self.allowed_origins.iter().any(|o| o == origin)
    }
}

/// `scheme://host[:port]` of a URL, lower-cased, without a default port.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

#[derive(Clone)]
pub struct AppState {
    pub services: Arc<Services>,
    /// A signed-in user's own account.
    pub account: Arc<AccountService>,
    /// Users and sessions as the Backend API administers them.
    pub admin: Arc<AdminService>,
    /// Organizations (the same service identity holds, see [`Services::orgs`]).
    pub orgs: Arc<OrgService>,
    pub sync: Arc<SyncService>,
    pub webhooks: Arc<WebhookService>,
    pub config: Arc<AppConfig>,
    pub metrics: Arc<Metrics>,
    /// Set when a stop begins: `/readyz` says 503 and event streams end.
    pub drain: Drain,
    environment: Arc<serde_json::Value>,
}

impl AppState {
    pub fn new(
        services: Arc<Services>,
        sync: Arc<SyncService>,
        webhooks: Arc<WebhookService>,
        config: AppConfig,
    ) -> Self {
        let environment = Arc::new(fapi::environment_json(&config, &services.config));
        let metrics = Arc::new(Metrics::default());
        let (account, admin, orgs) = (services.account().clone(), services.admin().clone(), services.orgs().clone());
        Self {
            services,
            account,
            admin,
            orgs,
            sync,
            webhooks,
            config: Arc::new(config),
            metrics,
            drain: Drain::default(),
            environment,
        }
    }

    pub fn avatar(&self) -> String {
        fapi::json::avatar_url(&self.config.public_url)
    }

    /// What a sign-in's view depends on besides the attempt.
    pub fn look(&self) -> fapi::json::Look {
        fapi::json::Look {
            img: self.avatar(),
            email_link: self.services.config.email_links.sign_in,
            delete_self: self.services.config.delete_self_enabled,
        }
    }
}

/// Every route, with the security and operational layers.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    let sync = state.sync.config();
    let babylog = if sync.enabled && sync.include_babylog { babylog::routes() } else { Router::new() };
    Router::new()
        .merge(fapi::routes())
        .merge(bapi::routes())
        .merge(public::routes())
        .merge(pages::routes())
        .merge(sync::routes())
        .merge(revocations::routes())
        .merge(babylog)
        .route(middleware::NO_CREDENTIAL_PATH, axum::routing::any(middleware::no_credential))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::origin_guard))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::cors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::proxy_context))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::security_headers))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .with_state(state)
}

async fn not_found() -> error::ApiError {
    error::ApiError(latchkey_service::ServiceError::not_found("Route").long("No such endpoint."))
}

async fn method_not_allowed() -> error::ApiError {
    error::ApiError(latchkey_service::ServiceError::new(
        latchkey_service::ErrorKind::MethodNotAllowed,
        "method_not_allowed",
        "This method is not allowed on this endpoint.",
    ))
}

/// Serves `router` on `listener` until `shutdown` resolves, finishing in-flight requests.
/// Serves `/metrics` alone on its own (internal) listen address.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|axum::extract::State(state): axum::extract::State<AppState>| async move {
                public::render_metrics(&state).await
            }),
        )
        .with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // `_method` tunnelling must rewrite the method before routing, so it wraps the router; so
    // does trimming a trailing slash: Clerk's Frontend API answers `/v1/me/email_addresses/`
    // (where clerk-js's `user.createEmailAddress` posts) as it answers the path without one.
    let app = tower::ServiceBuilder::new()
        .layer(tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash())
        .layer(axum::middleware::from_fn(middleware::method_override))
        .service(router(state));
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
