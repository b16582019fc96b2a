//! `latchkey proxy`: a reverse proxy that protects any backend with latchkey session tokens.
//! Per route: public, signed in (the default), a role, a permission, the organization named
//! by a path parameter being the caller's active one, or a recent check of the session's
//! factors (`reverification`, Clerk's levels). It removes incoming `X-Latchkey-*`
//! headers, forwards the verified identity in them, streams request and response bodies (so
//! server-sent events flow as they are written), and passes WebSocket upgrades through.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use latchkey_axum::{
    error_response, reverification, Auth, Guard, GuardConfig, GuardLayer, KeySource, Requirement, RouteMatcher,
    RoutePattern, Slashes,
};
use latchkey_core::tls::ExtraRoots;
use serde::Deserialize;
use tokio::net::TcpListener;

/// The rules file (`--rules`), TOML.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyRules {
    pub upstream: Option<String>,
    /// latchkey's public URL (its JWKS is found from it); or `pem_file`.
    pub issuer: Option<String>,
    pub pem_file: Option<String>,
    pub authorized_parties: Option<Vec<String>>,
    /// Routes anyone may call, e.g. `["/health", "/webhooks(.*)"]`.
    pub public: Vec<String>,
    /// Answer unmet requirements with 404 instead of 403.
    pub not_found_when_forbidden: bool,
    /// The first route whose `path` matches sets the requirements; others need a sign-in only.
    pub routes: Vec<RouteRule>,
    /// With a secret key (`--secret-key`), refuse every token while the revocation feed is
    /// unreachable instead of trusting signatures alone (docs/revocations.md).
    pub revocations_fail_closed: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteRule {
    pub path: String,
    pub role: Option<String>,
    pub permission: Option<String>,
    /// A `:name` parameter of `path` that must equal the caller's active organization.
    pub organization_param: Option<String>,
    /// A recent check of the session's factors: `"strict"`, `"moderate"`, `"lax"`,
    /// `"strict_mfa"`, or `{ level = "second_factor", after_minutes = 30 }`. Judged after the
    /// other requirements; unmet, 403 `session_reverification_required` with Clerk's hint.
    pub reverification: Option<ReverificationRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum ReverificationRule {
    Preset(String),
    Custom { level: String, after_minutes: i64 },
}

impl ReverificationRule {
    fn requirement(&self) -> anyhow::Result<reverification::Requirement> {
        match self {
            ReverificationRule::Preset(name) => reverification::Requirement::preset(name)
                .ok_or_else(|| anyhow!("reverification {name:?} is not strict, moderate, lax or strict_mfa")),
            ReverificationRule::Custom { level, after_minutes } => {
                let level = reverification::Level::parse(level).ok_or_else(|| {
                    anyhow!("reverification level {level:?} is not first_factor, second_factor or multi_factor")
                })?;
                if *after_minutes <= 0 {
                    return Err(anyhow!("reverification after_minutes must be at least 1"));
                }
                Ok(reverification::Requirement { level, after_minutes: *after_minutes })
            }
        }
    }
}

struct CompiledRule {
    pattern: RoutePattern,
    rule: RouteRule,
}

pub struct Proxy {
    /// The guard layer's decision, with the rules file's routes as one requirement.
    decision: GuardLayer,
    upstream: Uri,
    client: Client<HttpsConnector<HttpConnector>, Body>,
}

const IDENTITY_PREFIX: &str = "x-latchkey-";

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Proxy {
    /// `extra_roots` are trusted beside the system's roots for an `https://` upstream.
    pub fn new(rules: ProxyRules, guard: Guard, extra_roots: &ExtraRoots) -> anyhow::Result<Self> {
        let upstream = rules.upstream.clone().ok_or_else(|| anyhow!("no upstream: give --upstream URL"))?;
        let upstream: Uri =
            upstream.trim_end_matches('/').parse().with_context(|| format!("upstream {upstream:?} is not a URL"))?;
        if !matches!(upstream.scheme_str(), Some("http" | "https")) || upstream.authority().is_none() {
            return Err(anyhow!("upstream {upstream} must be an http:// or https:// URL"));
        }
        let public = RouteMatcher::new(&rules.public).map_err(|e| anyhow!("{e}"))?;
        let compiled = rules
            .routes
            .iter()
            .map(|r| {
                let pattern = RoutePattern::new(&r.path).map_err(|e| anyhow!("{e}"))?;
                if let Some(p) = &r.organization_param {
                    if !r.path.contains(&format!(":{p}")) {
                        return Err(anyhow!(
                            "route {:?}: organization_param {p:?} is not a parameter of its path",
                            r.path
                        ));
                    }
                }
                let reverification = r
                    .reverification
                    .as_ref()
                    .map(ReverificationRule::requirement)
                    .transpose()
                    .with_context(|| format!("route {:?}", r.path))?;
                Ok((CompiledRule { pattern, rule: r.clone() }, reverification))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (compiled, reverifications): (Vec<_>, Vec<_>) = compiled.into_iter().unzip();
        let client = Client::builder(TokioExecutor::new()).build(https_connector(extra_roots)?);
        // An upstream may decode `%2F` before routing: refuse encoded slashes outright.
        let mut decision = guard.layer().public(public).slashes(Slashes::Refuse);
        if !compiled.is_empty() {
            let compiled = Arc::new(compiled);
            // A route's check of the factors is the guard's own requirement (so an unmet one is
            // answered with Clerk's reverification hint), on the paths that route decides.
            for (index, needed) in reverifications.into_iter().enumerate() {
                let Some(needed) = needed else { continue };
                let rules = compiled.clone();
                let decided_here =
                    RouteMatcher::default().predicate(move |parts| first_rule(&rules, parts.uri.path()) == Some(index));
                decision = decision.require(decided_here, Requirement::Reverification(needed));
            }
            let every_path = RouteMatcher::default().predicate(|_| true);
            let rules_file = Requirement::Custom(Arc::new(move |parts, auth| first_rule_met(&compiled, parts, auth)));
            decision = decision.require(every_path, rules_file);
        }
        if rules.not_found_when_forbidden {
            decision = decision.not_found_when_forbidden();
        }
        Ok(Self { decision, upstream, client })
    }

    fn upstream_uri(&self, uri: &Uri) -> Option<Uri> {
        let base = self.upstream.path().trim_end_matches('/');
        let pq = uri.path_and_query().map_or("/", |p| p.as_str());
        let scheme = self.upstream.scheme_str()?;
        let authority = self.upstream.authority()?;
        format!("{scheme}://{authority}{base}{pq}").parse().ok()
    }
}

/// A connector for `http://` and `https://` upstreams; certificates are verified against the
/// system's roots and `extra_roots` (ring only: one crypto provider in the process).
fn https_connector(extra_roots: &ExtraRoots) -> anyhow::Result<HttpsConnector<HttpConnector>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    for pem in extra_roots.pem_blocks() {
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| anyhow!("extra_ca_file: {e}"))?;
        roots.add(cert).map_err(|e| anyhow!("extra_ca_file: {e}"))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// The first route of the rules file whose path matches sets the requirements; a path no route
/// names needs a sign-in only.
fn first_rule_met(rules: &[CompiledRule], parts: &Parts, auth: &Auth) -> bool {
    let path = parts.uri.path();
    let Some(rule) = first_rule(rules, path).and_then(|i| rules.get(i)) else {
        return true;
    };
    let mut ok = true;
    if let Some(role) = &rule.rule.role {
        ok &= auth.has_role(role);
    }
    if let Some(p) = &rule.rule.permission {
        ok &= auth.has_permission(p);
    }
    if let Some(param) = &rule.rule.organization_param {
        let named = rule.pattern.param(path, param).flatten();
        ok &= named.is_some() && named.as_deref() == auth.org_id();
    }
    ok
}

/// The index of the route that decides `path`: the first whose pattern matches.
fn first_rule(rules: &[CompiledRule], path: &str) -> Option<usize> {
    rules.iter().position(|r| r.pattern.matches(path))
}

fn identity_headers(headers: &mut HeaderMap, auth: Option<&Auth>) {
    // Many frameworks (CGI and WSGI, nginx with underscores_in_headers, Rack) read
    // `X_Latchkey_User_Id` as `X-Latchkey-User-Id`: every spelling of ours goes.
    let incoming: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().to_ascii_lowercase().replace('_', "-").starts_with(IDENTITY_PREFIX))
        .cloned()
        .collect();
    for k in incoming {
        headers.remove(k);
    }
    let Some(a) = auth else {
        return;
    };
    let mut set = |name: &'static str, value: Option<&str>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set("x-latchkey-user-id", Some(a.user_id()));
    set("x-latchkey-session-id", a.session_id());
    set("x-latchkey-org-id", a.org_id());
    set("x-latchkey-org-role", a.org_role());
    set("x-latchkey-org-slug", a.org_slug());
    let permissions = a.org_permissions().join(",");
    set("x-latchkey-org-permissions", a.org_id().map(|_| permissions.as_str()));
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).is_some()
        && headers
            .get(header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Removes hop-by-hop headers (and those `Connection` names); keeps the upgrade pair when the
/// request is an upgrade.
fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    for h in HOP_BY_HOP.iter().map(|h| (*h).to_owned()).chain(named) {
        if keep_upgrade && (h == "connection" || h == "upgrade") {
            continue;
        }
        headers.remove(h.as_str());
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

async fn handle(
    State(proxy): State<Arc<Proxy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    let (mut parts, body) = req.into_parts();
    // Judged and forwarded as one form: the decision refuses a path that is not canonical, so
    // an upstream that resolves `..` or decodes `%2F` never reaches another path than judged.
    let auth = match proxy.decision.decide(&parts).await {
        Ok(auth) => auth,
        Err(refused) => return refused,
    };
    let Some(target) = proxy.upstream_uri(&parts.uri) else {
        return error_response(
            &parts.headers,
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "Bad request.",
            "The request URL cannot be forwarded.",
        );
    };
    let upgrade = is_upgrade(&parts.headers);
    let inbound_upgrade = if upgrade { parts.extensions.remove::<hyper::upgrade::OnUpgrade>() } else { None };
    let mut headers = std::mem::take(&mut parts.headers);
    strip_hop_by_hop(&mut headers, upgrade);
    identity_headers(&mut headers, auth.as_ref());
    let original_host = headers.get(header::HOST).cloned();
    headers.remove(header::HOST);
    if let Some(h) = original_host {
        headers.insert(HeaderName::from_static("x-forwarded-host"), h);
    }
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), v);
    }
    headers.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static("http"));

    let mut out = Request::builder().method(parts.method.clone()).uri(target);
    if let Some(h) = out.headers_mut() {
        *h = headers;
    }
    let Ok(out) = out.body(if upgrade { Body::empty() } else { body }) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let res = match proxy.client.request(out).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "upstream unreachable");
            return error_response(
                &parts.headers,
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "The service behind this proxy is unavailable.",
                "The upstream could not be reached. Try again shortly.",
            );
        }
    };
    if res.status() == StatusCode::SWITCHING_PROTOCOLS {
        let (mut res_parts, _) = res.into_parts();
        let Some(inbound) = inbound_upgrade else {
            return StatusCode::BAD_GATEWAY.into_response();
        };
        let outbound = hyper::upgrade::on(Response::from_parts(res_parts.clone(), ()));
        tokio::spawn(async move {
            match (inbound.await, outbound.await) {
                (Ok(client), Ok(server)) => {
                    let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
                    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
                        tracing::debug!(error = %e, "upgraded connection closed");
                    }
                }
                (a, b) => tracing::warn!(client = a.is_ok(), upstream = b.is_ok(), "an upgrade did not complete"),
            }
        });
        res_parts.extensions = Default::default();
        return Response::from_parts(res_parts, Body::empty());
    }
    let (mut res_parts, incoming) = res.into_parts();
    strip_hop_by_hop(&mut res_parts.headers, false);
    Response::from_parts(res_parts, Body::new(incoming))
}

/// The proxy's router (every path is forwarded).
pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new().fallback(handle).with_state(proxy)
}

pub async fn serve(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(proxy).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Reads the rules file (if any) and applies the command-line choices over it.
pub fn load_rules(
    file: Option<&Path>,
    upstream: Option<String>,
    issuer: Option<String>,
    public: Vec<String>,
) -> anyhow::Result<ProxyRules> {
    let mut rules: ProxyRules = match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", f.display()))?
        }
        None => ProxyRules::default(),
    };
    if upstream.is_some() {
        rules.upstream = upstream;
    }
    if issuer.is_some() {
        rules.issuer = issuer;
    }
    rules.public.extend(public);
    Ok(rules)
}

/// The guard the rules describe: latchkey's JWKS through its issuer URL, or a PEM file.
pub fn guard_for(rules: &ProxyRules, default_issuer: &str, extra_roots: &ExtraRoots) -> anyhow::Result<Guard> {
    let issuer = rules.issuer.clone().unwrap_or_else(|| default_issuer.to_owned());
    let keys = match &rules.pem_file {
        Some(f) => KeySource::Pem(std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?),
        None => KeySource::Issuer(issuer.clone()),
    };
    let mut config = GuardConfig::new(keys);
    config.issuer = Some(issuer.trim_end_matches('/').to_owned());
    config.authorized_parties = rules.authorized_parties.clone();
    config.extra_roots = extra_roots.clone();
    Guard::new(config).map_err(|e| anyhow!("{e}"))
}
