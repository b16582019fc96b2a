//! Outgoing mail: SMTP when configured, otherwise (development) an in-memory sink listed at
//! `GET /dev/mail`. Only the recipient and message id are logged: subjects and bodies carry
//! verification codes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MailMessage {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub created_at: i64,
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, message: MailMessage) -> Result<(), String>;
    /// The sink's messages, newest last; `None` for real transports.
    fn sink(&self) -> Option<Vec<MailMessage>> {
        None
    }
}

const SINK_CAPACITY: usize = 500;

#[derive(Default)]
pub struct DevMailSink {
    messages: Mutex<VecDeque<MailMessage>>,
}

#[async_trait]
impl Mailer for DevMailSink {
    async fn send(&self, message: MailMessage) -> Result<(), String> {
        tracing::info!(to = %message.to, id = %message.id, "development mail sink: message kept at /dev/mail");
        let mut q = match self.messages.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if q.len() >= SINK_CAPACITY {
            q.pop_front();
        }
        q.push_back(message);
        Ok(())
    }

    fn sink(&self) -> Option<Vec<MailMessage>> {
        let q = match self.messages.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        Some(q.iter().cloned().collect())
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 587 with `starttls`, 465 with `implicit`, 25 with `none`.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, skip_serializing)]
    pub password: Option<latchkey_core::secret::ConfigSecret>,
    pub from: String,
    /// How the connection is protected (docs/tls.md). Default: `starttls` (required, never a
    /// fallback to plain text), except `none` for a relay on this machine (a loopback host).
    #[serde(default)]
    pub tls: Option<SmtpTls>,
}

/// How an SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text, upgraded with STARTTLS before anything else is said; refused if the server
    /// does not offer it (submission, port 587).
    Starttls,
    /// TLS from the first byte (submissions, port 465).
    Implicit,
    /// Plain text: only for a relay on this machine or a private network that handles TLS.
    None,
}

impl SmtpTls {
    fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

impl SmtpConfig {
    /// The protection in force: the configured one, or the default for the host.
    pub fn tls_mode(&self) -> SmtpTls {
        self.tls.unwrap_or(if is_loopback_host(&self.host) { SmtpTls::None } else { SmtpTls::Starttls })
    }

    pub fn port_in_use(&self) -> u16 {
        self.port.unwrap_or(self.tls_mode().default_port())
    }
}

fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A transport to the configured server, verifying its certificate against the system's
    /// roots and `extra_roots`. A password is never sent in clear to another machine.
    pub fn new(config: &SmtpConfig, extra_roots: &latchkey_core::tls::ExtraRoots) -> Result<Self, String> {
        let from: Mailbox = config.from.parse().map_err(|e| format!("invalid smtp.from: {e}"))?;
        let mode = config.tls_mode();
        if mode == SmtpTls::None && config.password.is_some() && !is_loopback_host(&config.host) {
            return Err(format!(
                "smtp: tls = \"none\" would send the password to {} in clear; use starttls or implicit",
                config.host
            ));
        }
        let tls = match mode {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(tls_parameters(&config.host, extra_roots)?),
            SmtpTls::Implicit => Tls::Wrapper(tls_parameters(&config.host, extra_roots)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port_in_use())
            .tls(tls)
            .timeout(Some(std::time::Duration::from_secs(15)));
        if let (Some(user), Some(pass)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), pass.expose().to_owned()));
        }
        Ok(Self { transport: builder.build(), from })
    }
}

fn tls_parameters(host: &str, extra_roots: &latchkey_core::tls::ExtraRoots) -> Result<TlsParameters, String> {
    let mut params = TlsParameters::builder(host.trim_start_matches('[').trim_end_matches(']').to_owned());
    for pem in extra_roots.pem_blocks() {
        let cert = Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("extra_ca_file: {e}"))?;
        params = params.add_root_certificate(cert);
    }
    params.build_rustls().map_err(|e| format!("smtp TLS: {e}"))
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, message: MailMessage) -> Result<(), String> {
        let to: Mailbox = message.to.parse().map_err(|e| format!("invalid recipient: {e}"))?;
        let (recipient, id) = (message.to.clone(), message.id.clone());
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject)
            .body(message.text)
            .map_err(|e| e.to_string())?;
        self.transport.send(email).await.map_err(|e| e.to_string())?;
        tracing::info!(to = %recipient, %id, "mail sent over SMTP");
        Ok(())
    }
}

/// Sends mail in the background for any feature's service, announcing each message as an
/// `email.created` event (docs/backend-api.md §12) so an app can send its own mail.
#[derive(Clone)]
pub struct Postman {
    mailer: Arc<dyn Mailer>,
    /// Where `email.created` is written (only when an endpoint subscribes to it).
    events_store: Arc<dyn latchkey_store::WebhookStore>,
    events: crate::webhooks::Events,
    /// Messages handed to the background and not yet through the mailer.
    in_flight: Arc<AtomicUsize>,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

impl Postman {
    pub fn new(
        mailer: Arc<dyn Mailer>,
        events_store: Arc<dyn latchkey_store::WebhookStore>,
        events: crate::webhooks::Events,
        telemetry: Arc<crate::telemetry::Telemetry>,
    ) -> Self {
        Self { mailer, events_store, events, in_flight: Default::default(), telemetry }
    }

    /// How many messages [`Postman::send`] has accepted that the mailer has not finished with
    /// (sent, kept in the development sink, or failed).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Sends mail in the background: the response that asked for it neither waits for the
    /// mail server nor takes longer when mail is sent (for a known account) than when it is
    /// not, so a message may arrive — at /dev/mail too — just after the response
    /// (docs/SECURITY.md, "Mail").
    pub fn send(&self, to: &str, subject: &str, text: String) {
        let message = MailMessage {
            id: self.events.new_id(latchkey_core::ids::IdKind::Message),
            to: to.to_owned(),
            subject: subject.to_owned(),
            text,
            created_at: self.events.now(),
        };
        let event = self.events.event(
            "email.created",
            serde_json::json!({
                "object": "email",
                "id": message.id,
                "to_email_address": message.to,
                "from_email_name": "no-reply",
                "subject": message.subject,
                "body_plain": message.text,
                "status": "queued",
                "delivered_by_clerk": false,
                "created_at": message.created_at,
            }),
        );
        let store = self.events_store.clone();
        let mailer = self.mailer.clone();
        let (in_flight, telemetry) = (self.in_flight.clone(), self.telemetry.clone());
        in_flight.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            // Its body holds the code: stored only when an endpoint will receive it.
            if let Err(error) = store.append_subscribed_events(std::slice::from_ref(&event)).await {
                tracing::warn!(%error, "email.created event not written");
            }
            let (to, id) = (message.to.clone(), message.id.clone());
            let result = match mailer.send(message).await {
                Ok(()) => "sent",
                Err(error) => {
                    tracing::warn!(%to, %id, %error, "mail delivery failed");
                    "failed"
                }
            };
            telemetry.count("latchkey_mail_total", &[("result", result)]);
            in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// The notice a password change or reset sends the account's owner (ASVS 6.3.7): when, from
/// which browser, and whether the other sessions were ended.
pub(crate) fn password_changed_notice(
    app: &str,
    at_ms: i64,
    user_agent: Option<&str>,
    others_ended: bool,
) -> (String, String) {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(at_ms).unwrap_or(0));
    let when = httpdate::fmt_http_date(at);
    let browser = latchkey_core::user_agent::describe(user_agent);
    let sessions = if others_ended {
        "Every other device signed in to your account was signed out."
    } else {
        "Your other signed-in devices stay signed in."
    };
    (
        format!("Your {app} password was changed"),
        format!(
            "The password of your {app} account was changed on {when} from {browser}.\n\n{sessions}\n\n\
             If this was not you, reset your password now (\"Forgot password?\" on the sign-in page) and review your active sessions.\n"
        ),
    )
}
