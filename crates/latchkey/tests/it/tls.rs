//! TLS on the way out, against servers whose certificate a private CA signed (made here with
//! rcgen): the guard's JWKS from an `https://` URL, `latchkey proxy` to an `https://` upstream,
//! and mail through a real SMTP server (npm's smtp-server) with STARTTLS, implicit TLS and
//! AUTH. Each is refused without `extra_ca_file`'s certificate: the system roots do not know
//! the CA, so a passing call proves the certificate was verified, not skipped.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use latchkey::proxy::{guard_for, Proxy, ProxyRules};
use latchkey_axum::{Auth, Guard, GuardConfig, KeySource};
use latchkey_core::tls::ExtraRoots;
use latchkey_service::mail::{SmtpConfig, SmtpMailer, SmtpTls};
use latchkey_service::{MailMessage, Mailer};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdout, Command};

use crate::harness::{Backend, Browser};
use crate::orgs::{server as org_server, Person};
use crate::proxy::Upstream;

/// A private CA and a server certificate it signed for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    cert_der: rustls::pki_types::CertificateDer<'static>,
    key_der: Vec<u8>,
    key_pem: String,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "latchkey test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap();
        Self {
            ca_pem: ca.pem(),
            cert_pem: leaf.pem(),
            cert_der: leaf.der().clone(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// What `extra_ca_file` holding the CA gives.
    fn roots(&self) -> ExtraRoots {
        ExtraRoots::from_pem(&self.ca_pem).unwrap()
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// Terminates TLS on 127.0.0.1 with the CA's certificate and forwards each connection to
/// `backend` (host:port) as it is: an `https://` face for a plain server.
async fn tls_front(pki: &Pki, backend: &str) -> String {
    let acceptor = pki.acceptor();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let backend = backend.to_owned();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = TcpStream::connect(&backend).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    url
}

fn authority(url: &str) -> &str {
    url.split("://").nth(1).unwrap().trim_end_matches('/')
}

async fn serve(app: axum::Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_fetches_keys_from_an_https_issuer_signed_by_the_extra_ca() {
    let server = org_server(Backend::Sqlite).await;
    let pki = Pki::new();
    let https = tls_front(&pki, authority(&server.url)).await;
    let p = Person::sign_up(&server, "tls@example.com").await;
    let jwt = p.b.token(&p.session_id).await.body["jwt"].as_str().unwrap().to_owned();

    let api_with = |roots: ExtraRoots| {
        let mut config = GuardConfig::new(KeySource::JwksUrl(format!("{https}/.well-known/jwks.json")));
        config.issuer = Some(server.url.clone());
        config.clock = Arc::new(server.clock.clone());
        config.extra_roots = roots;
        let guard = Guard::new(config).unwrap();
        let app = axum::Router::new()
            .route("/me", get(|auth: Auth| async move { auth.user_id().to_owned() }))
            .layer(guard.layer());
        (guard, app)
    };

    let (trusting, app) = api_with(pki.roots());
    let api = serve(app).await;
    let b = Browser::new(&api);
    let r = b.send(b.http.get(b.url("/me")).bearer_auth(&jwt)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.text, p.user_id);
    assert_eq!(trusting.jwks_fetches(), 1, "the keys came over TLS");

    // The same issuer without the CA: the certificate is refused, so no key, so no caller.
    let (_, app) = api_with(ExtraRoots::default());
    let api = serve(app).await;
    let b = Browser::new(&api);
    let r = b.send(b.http.get(b.url("/me")).bearer_auth(&jwt)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_reaches_an_https_upstream_only_through_a_verified_certificate() {
    let server = org_server(Backend::Sqlite).await;
    let upstream = Upstream::start();
    let pki = Pki::new();
    let https = tls_front(&pki, authority(&upstream.url)).await;
    let start = |roots: ExtraRoots| {
        let rules = ProxyRules {
            upstream: Some(https.clone()),
            issuer: Some(server.url.clone()),
            public: vec!["/health".into()],
            ..Default::default()
        };
        let guard = guard_for(&rules, &server.url, &roots).unwrap();
        Arc::new(Proxy::new(rules, guard, &roots).unwrap())
    };
    let serve_proxy = |proxy: Arc<Proxy>| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = latchkey::proxy::serve(listener, proxy, std::future::pending()).await;
        });
        url
    };

    let p = Person::sign_up(&server, "proxy-tls@example.com").await;
    let jwt = p.b.token(&p.session_id).await.body["jwt"].as_str().unwrap().to_owned();
    let trusted = serve_proxy(start(pki.roots())).await;
    let b = Browser::new(&trusted);
    let r = b.send(b.http.get(b.url("/health"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["path"], "/health", "the upstream answered: {}", r.text);
    let r = b.send(b.http.get(b.url("/private")).bearer_auth(&jwt)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["headers"]["x-latchkey-user-id"], p.user_id.as_str(), "{}", r.text);

    // Without the CA the upstream's certificate is refused: a gateway error, nothing forwarded.
    let untrusted = serve_proxy(start(ExtraRoots::default())).await;
    let b = Browser::new(&untrusted);
    let r = b.send(b.http.get(b.url("/health"))).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.text);
}

/// npm's smtp-server on 127.0.0.1 with the CA's certificate.
struct SmtpServer {
    port: u16,
    lines: Lines<BufReader<ChildStdout>>,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    async fn start(pki: &Pki, mode: &str, credentials: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), &pki.cert_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &pki.key_pem).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/tls/smtp_server.mjs");
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .env("SMTP_MODE", mode)
            .env("SMTP_CERT", dir.path().join("cert.pem"))
            .env("SMTP_KEY", dir.path().join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some((user, pass)) = credentials {
            cmd.env("SMTP_USER", user).env("SMTP_PASS", pass);
        }
        let mut child = cmd.spawn().expect("node runs the SMTP server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap();
        let port = first.expect("the SMTP server needs npm's packages (`npm ci`)").trim().parse().unwrap();
        Self { port, lines, _child: child, _dir: dir }
    }

    /// The next message the server accepted.
    async fn received(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(30), self.lines.next_line()).await.unwrap().unwrap();
        serde_json::from_str(&line.expect("a message line")).unwrap()
    }
}

fn smtp(port: u16, tls: SmtpTls, credentials: Option<(&str, &str)>) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        username: credentials.map(|c| c.0.to_owned()),
        password: credentials.map(|c| latchkey_core::secret::ConfigSecret::new(c.1)),
        from: "latchkey <no-reply@example.test>".into(),
        tls: Some(tls),
    }
}

fn message(subject: &str) -> MailMessage {
    MailMessage {
        id: "msg_tls".into(),
        to: "ada@example.com".into(),
        subject: subject.into(),
        text: "Your code is 424242".into(),
        created_at: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_out_over_starttls_and_implicit_tls_with_authentication() {
    let pki = Pki::new();
    let login = Some(("latchkey", "smtp-password"));

    // STARTTLS, then AUTH: the way to a provider's submission port (587).
    let mut server = SmtpServer::start(&pki, "starttls", login).await;
    let mailer = SmtpMailer::new(&smtp(server.port, SmtpTls::Starttls, login), &pki.roots()).unwrap();
    mailer.send(message("424242 is your code")).await.unwrap();
    let got = server.received().await;
    assert_eq!(got["user"], "latchkey", "{got}");
    assert_eq!(got["secure"], true, "{got}");
    assert_eq!(got["to"][0], "ada@example.com");
    assert!(got["data"].as_str().unwrap().contains("Subject: 424242 is your code"), "{got}");

    // A wrong password is an error of the send, not a silent loss.
    let wrong = SmtpMailer::new(&smtp(server.port, SmtpTls::Starttls, Some(("latchkey", "nope"))), &pki.roots());
    assert!(wrong.unwrap().send(message("never")).await.is_err());

    // Without the CA the relay's certificate is refused before any credential is sent.
    let untrusting = SmtpMailer::new(&smtp(server.port, SmtpTls::Starttls, login), &ExtraRoots::default()).unwrap();
    let err = untrusting.send(message("never")).await.unwrap_err();
    assert!(err.to_lowercase().contains("certificate") || err.to_lowercase().contains("tls"), "{err}");

    // Implicit TLS (465): TLS from the first byte.
    let mut implicit = SmtpServer::start(&pki, "implicit", login).await;
    let mailer = SmtpMailer::new(&smtp(implicit.port, SmtpTls::Implicit, login), &pki.roots()).unwrap();
    mailer.send(message("implicit")).await.unwrap();
    let got = implicit.received().await;
    assert_eq!((got["user"].as_str(), got["secure"].as_bool()), (Some("latchkey"), Some(true)), "{got}");
    assert!(got["data"].as_str().unwrap().contains("Subject: implicit"), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_never_a_fallback_and_passwords_never_go_in_clear() {
    let pki = Pki::new();
    // A server that does not offer STARTTLS (or a man in the middle that strips it): nothing is sent.
    let plain = SmtpServer::start(&pki, "plain", None).await;
    let mailer = SmtpMailer::new(&smtp(plain.port, SmtpTls::Starttls, None), &pki.roots()).unwrap();
    assert!(mailer.send(message("never")).await.is_err(), "no plain-text fallback");

    // A password in clear to another machine is refused when the configuration is read.
    let mut remote = smtp(25, SmtpTls::None, Some(("u", "p")));
    remote.host = "smtp.example.com".into();
    let err = SmtpMailer::new(&remote, &ExtraRoots::default()).err().unwrap();
    assert!(err.contains("in clear"), "{err}");

    // Defaults: STARTTLS on 587 for a remote host, plain on 25 for a relay on this machine.
    let mut defaults = smtp(25, SmtpTls::None, None);
    (defaults.port, defaults.tls, defaults.host) = (None, None, "smtp.example.com".into());
    assert_eq!((defaults.tls_mode(), defaults.port_in_use()), (SmtpTls::Starttls, 587));
    defaults.host = "127.0.0.1".into();
    assert_eq!((defaults.tls_mode(), defaults.port_in_use()), (SmtpTls::None, 25));
    defaults.tls = Some(SmtpTls::Implicit);
    assert_eq!(defaults.port_in_use(), 465);
}

fn broken_file(dir: &tempfile::TempDir, name: &str, text: &str) {
    std::fs::write(dir.path().join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_ca_file_and_smtp_tls_are_read_from_the_configuration() {
    let pki = Pki::new();
    let login = Some(("latchkey", "smtp-password"));
    let mut server = SmtpServer::start(&pki, "starttls", login).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(
        &file,
        format!(
            "extra_ca_file = {ca:?}\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"starttls\"\nusername = \"latchkey\"\npassword = \"smtp-password\"\nfrom = \"no-reply@example.test\"\n",
            server.port
        ),
    )
    .unwrap();
    let config = latchkey::config::Config::load(Some(&file), &Default::default()).unwrap();
    let mailer = SmtpMailer::new(config.smtp.as_ref().unwrap(), &config.extra_roots().unwrap()).unwrap();
    mailer.send(message("configured")).await.unwrap();
    assert_eq!(server.received().await["user"], "latchkey");

    // A CA file that is missing, holds no certificate or a damaged one stops the start with its name.
    broken_file(&dir, "damaged.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    let mut damaged = config.clone();
    damaged.extra_ca_file = Some(dir.path().join("damaged.pem"));
    assert!(format!("{}", damaged.extra_roots().unwrap_err()).contains("not usable"));
    let mut broken = config.clone();
    broken.extra_ca_file = Some(dir.path().join("missing.pem"));
    assert!(format!("{}", broken.extra_roots().unwrap_err()).contains("missing.pem"));
    std::fs::write(dir.path().join("key.pem"), &pki.key_pem).unwrap();
    broken.extra_ca_file = Some(dir.path().join("key.pem"));
    assert!(format!("{}", broken.extra_roots().unwrap_err()).contains("CERTIFICATE"));
}
