//! Passkeys as every service uses them (docs/passkeys.md): the relying party (webauthn-rs,
//! built once from the configuration), registration options in the shape clerk-js hands to
//! `navigator.credentials.create`, discoverable sign-in challenges, and the check of a
//! browser's answer. A value of its own over [`PeopleStore`], shared by identity (sign-in and
//! reverification), the account service (`/v1/me/passkeys…`) and administration.
//!
//! WebAuthn's own randomness (challenges) comes from webauthn-rs, which reads the operating
//! system's; the user handle and ids come from the injected [`Random`].

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_core::clock::Millis;
use latchkey_core::ids::IdKind;
use latchkey_core::Random;
use latchkey_store::{OutboxEvent, PasskeyRow, PasskeyUse, PeopleStore, StoreError, UserRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url,
    Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::error::{Result, ServiceError};
use crate::resources::primary_email;
use crate::users::Users;
use crate::webhooks::Events;

/// How many passkeys one account may hold (what one signed-in user can make latchkey store).
pub const MAX_PASSKEYS_PER_USER: usize = 25;

/// `[passkeys]` of the configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasskeyConfig {
    pub enabled: bool,
    /// The relying-party id: a domain that every origin of the app is on (itself or a
    /// subdomain of it). Default: the public URL's host, when that is a domain name.
    pub rp_id: Option<String>,
    /// Clerk's `passkey_settings.allow_autofill`: offer passkeys in the browser's autofill.
    pub allow_autofill: bool,
    /// Clerk's `passkey_settings.show_sign_in_button`: a "Use passkey" button.
    pub show_sign_in_button: bool,
    /// A passkey sign-in proves both factors (no second step; `fva` [0, 0]).
    pub satisfies_second_factor: bool,
    /// How long the browser and the server wait for an answer to a challenge.
    pub timeout_seconds: u64,
}

impl Default for PasskeyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            rp_id: None,
            allow_autofill: true,
            show_sign_in_button: true,
            satisfies_second_factor: true,
            timeout_seconds: 300,
        }
    }
}

/// The configuration checked and resolved: the relying party, when passkeys are on.
#[derive(Clone, Default)]
pub struct PasskeySettings {
    pub allow_autofill: bool,
    pub show_sign_in_button: bool,
    pub satisfies_second_factor: bool,
    pub timeout_ms: i64,
    pub rp_id: String,
    /// The origins answers are accepted from.
    pub origins: Vec<String>,
    rp: Option<Arc<Webauthn>>,
}

impl std::fmt::Debug for PasskeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeySettings")
            .field("enabled", &self.enabled())
            .field("rp_id", &self.rp_id)
            .field("origins", &self.origins)
            .finish()
    }
}

/// Whether a browser lets pages on `url` use WebAuthn with `rp_id`: a secure origin (https,
/// or http on localhost) whose host is the relying-party id or a subdomain of it.
fn origin_fits(url: &Url, rp_id: &str) -> bool {
    let Some(host) = url.domain() else { return false };
    let secure =
        url.scheme() == "https" || (url.scheme() == "http" && (host == "localhost" || host.ends_with(".localhost")));
    secure && (host == rp_id || host.ends_with(&format!(".{rp_id}")))
}

impl PasskeySettings {
    /// Checks `[passkeys]` against the instance's origins (its public URL and
    /// `allowed_origins`). Returns the settings and the origins left out (not on the
    /// relying-party id, or not secure), for the operator's log.
    pub fn resolve(
        config: &PasskeyConfig,
        app_name: &str,
        public_url: &str,
        allowed_origins: &[String],
    ) -> std::result::Result<(Self, Vec<String>), String> {
        let mut settings = Self {
            allow_autofill: config.allow_autofill,
            show_sign_in_button: config.show_sign_in_button,
            satisfies_second_factor: config.satisfies_second_factor,
            timeout_ms: i64::try_from(config.timeout_seconds.clamp(30, 600) * 1000).unwrap_or(300_000),
            ..Self::default()
        };
        if !config.enabled {
            return Ok((settings, Vec::new()));
        }
        let public = Url::parse(public_url).map_err(|e| format!("public_url: {e}"))?;
        let rp_id = match &config.rp_id {
            Some(id) => id.trim().trim_end_matches('.').to_ascii_lowercase(),
            None => public.domain().map(str::to_owned).ok_or_else(|| {
                "[passkeys] needs rp_id: the public URL's host is not a domain name (an IP address cannot be a \
                 relying-party id)"
                    .to_owned()
            })?,
        };
        if rp_id.is_empty() || rp_id.parse::<std::net::IpAddr>().is_ok() {
            return Err("[passkeys] rp_id must be a domain name".into());
        }
        let mut fitting = Vec::new();
        let mut left_out = Vec::new();
        for raw in std::iter::once(public_url).chain(allowed_origins.iter().map(String::as_str)) {
            match Url::parse(raw) {
                Ok(url) if origin_fits(&url, &rp_id) => fitting.push(url),
                _ => left_out.push(raw.to_owned()),
            }
        }
        let Some(first) = fitting.first().cloned() else {
            return Err(format!(
                "[passkeys] no origin of the instance (public_url, allowed_origins) is a secure origin on {rp_id}"
            ));
        };
        let mut builder = WebauthnBuilder::new(&rp_id, &first)
            .map_err(|e| format!("[passkeys]: {e}"))?
            .rp_name(app_name)
            .allow_subdomains(false)
            .allow_any_port(false)
            .timeout(std::time::Duration::from_millis(u64::try_from(settings.timeout_ms).unwrap_or(300_000)));
        for url in &fitting[1..] {
            builder = builder.append_allowed_origin(url);
        }
        let rp = builder.build().map_err(|e| format!("[passkeys]: {e}"))?;
        settings.origins = fitting.iter().map(|u| u.origin().ascii_serialization()).collect();
        settings.rp_id = rp_id;
        settings.rp = Some(Arc::new(rp));
        Ok((settings, left_out))
    }

    pub fn enabled(&self) -> bool {
        self.rp.is_some()
    }
}

/// A sign-in's or check's challenge: the single-use state, the options shown to the browser
/// (Clerk's `verification.nonce`), and when it ends.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Challenge {
    state: Value,
    pub options: String,
    pub expire_at: i64,
}

/// What a registration in progress keeps: the state and the options shown.
#[derive(Debug, Serialize, Deserialize)]
struct Registration {
    state: Value,
    options: String,
}

/// The options of a registration in progress (its `nonce`), while it can still finish.
pub fn registration_options(row: &PasskeyRow) -> Option<String> {
    let text = row.registration_state.as_deref()?;
    serde_json::from_str::<Registration>(text).ok().map(|r| r.options)
}

fn disabled() -> ServiceError {
    ServiceError::bad_request("passkeys_disabled", "Passkeys are not enabled for this application.")
}

fn malformed() -> ServiceError {
    ServiceError::bad_request("form_param_format_invalid", "public_key_credential is not a valid WebAuthn credential.")
        .param("public_key_credential")
}

/// One answer for every refusal of a credential, so a refusal tells nothing of why.
pub(crate) fn refused() -> ServiceError {
    ServiceError::unprocessable("verification_failed", "The passkey could not be verified.")
        .long("Try again, or use another way to sign in.")
}

pub(crate) fn expired() -> ServiceError {
    ServiceError::bad_request("verification_expired", "This passkey request has expired. Start again.")
}

/// The browser-facing options of a challenge, without clerk-js's unwanted parts: the
/// `{publicKey: …}` wrapper (clerk-js adds its own) and the library's `mediation` (clerk-js
/// picks it).
fn public_key_options(value: Value) -> Value {
    match value {
        Value::Object(mut map) => map.remove("publicKey").unwrap_or(Value::Null),
        other => other,
    }
}

/// Passkeys for every service; built by [`crate::Services::new`].
pub struct Passkeys {
    pub(crate) settings: PasskeySettings,
    pub(crate) users: Arc<Users>,
    pub(crate) store: Arc<dyn PeopleStore>,
    pub(crate) events: Events,
    pub(crate) rng: Arc<dyn Random>,
}

impl Passkeys {
    pub(crate) fn now(&self) -> Millis {
        self.events.now()
    }

    fn rp(&self) -> Result<&Webauthn> {
        self.settings.rp.as_deref().ok_or_else(disabled)
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled()
    }

    /// `user.updated` with the user's passkeys as `change` leaves them.
    pub(crate) fn updated_event(&self, record: &UserRecord, change: impl FnOnce(&mut Vec<PasskeyRow>)) -> OutboxEvent {
        let mut after = record.clone();
        change(&mut after.passkeys);
        self.users.user_event("user.updated", &after)
    }

    /// The user's WebAuthn user handle, made at their first registration.
    async fn handle_of(&self, record: &UserRecord) -> Result<Uuid> {
        let text = match &record.user.webauthn_handle {
            Some(h) => h.clone(),
            None => {
                let mut bytes = [0u8; 16];
                self.rng.fill(&mut bytes);
                let fresh = uuid_from_random(bytes);
                self.store.set_webauthn_handle(&record.user.id, &fresh.to_string()).await?
            }
        };
        Uuid::parse_str(&text).map_err(|_| ServiceError::internal())
    }

    /// Starts a registration for the user: the options for the browser, kept with the state in
    /// a new unverified passkey named `name`.
    pub(crate) async fn begin_registration(&self, record: &UserRecord, name: String) -> Result<PasskeyRow> {
        let rp = self.rp()?;
        if record.passkeys.iter().filter(|p| p.verified).count() >= MAX_PASSKEYS_PER_USER {
            return Err(ServiceError::unprocessable(
                "passkeys_limit_reached",
                format!("An account can have at most {MAX_PASSKEYS_PER_USER} passkeys. Remove one first."),
            ));
        }
        let handle = self.handle_of(record).await?;
        let account = primary_email(record).or_else(|| record.user.username.clone()).unwrap_or(record.user.id.clone());
        let display = match (&record.user.first_name, &record.user.last_name) {
            (Some(f), Some(l)) => format!("{f} {l}"),
            (Some(n), None) | (None, Some(n)) => n.clone(),
            (None, None) => account.clone(),
        };
        // Credentials already registered: the browser refuses to make a second on the same
        // authenticator (clerk-js reports `passkey_already_exists`).
        let exclude: Vec<_> = record
            .passkeys
            .iter()
            .filter(|p| p.verified)
            .filter_map(|p| p.credential_id.as_deref())
            .filter_map(|id| URL_SAFE_NO_PAD.decode(id).ok())
            .collect();
        let (ccr, state) = rp
            .start_passkey_registration(handle, &account, &display, Some(exclude))
            .map_err(|e| internal_webauthn("start registration", &e))?;
        let mut options = public_key_options(serde_json::to_value(&ccr).map_err(|_| ServiceError::internal())?);
        // Discoverable credentials, so a sign-in needs no identifier (as Clerk asks). The
        // library leaves this to the authenticator; the answer is checked the same either way.
        if let Some(sel) = options.get_mut("authenticatorSelection").and_then(Value::as_object_mut) {
            sel.insert("residentKey".into(), Value::String("required".into()));
            sel.insert("requireResidentKey".into(), Value::Bool(true));
        }
        let registration = Registration {
            state: serde_json::to_value(&state).map_err(|_| ServiceError::internal())?,
            options: options.to_string(),
        };
        let now = self.now();
        let row = PasskeyRow {
            id: latchkey_core::ids::new_id(IdKind::Identification, now, self.rng.as_ref()),
            user_id: record.user.id.clone(),
            name,
            credential_id: None,
            credential: None,
            counter: 0,
            backup_eligible: false,
            backup_state: false,
            registration_state: Some(serde_json::to_string(&registration).map_err(|_| ServiceError::internal())?),
            verified: false,
            expire_at: Some(now + self.settings.timeout_ms),
            last_used_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.save_pending_passkey(&row).await?;
        Ok(row)
    }

    /// Checks the browser's answer to a registration and turns it into a passkey. A refused
    /// answer spends the registration (the browser must start again); a malformed one is
    /// refused before anything is checked or written.
    pub(crate) async fn finish_registration(
        &self,
        record: &UserRecord,
        id: &str,
        credential_json: &str,
    ) -> Result<PasskeyRow> {
        let rp = self.rp()?;
        let row = record
            .passkeys
            .iter()
            .find(|p| p.id == id && !p.verified)
            .cloned()
            .ok_or_else(|| ServiceError::not_found("Passkey"))?;
        let credential: RegisterPublicKeyCredential = serde_json::from_str(credential_json).map_err(|_| malformed())?;
        let Some(state_text) = row.registration_state.clone() else {
            return Err(ServiceError::bad_request("verification_failed", "This registration has ended. Start again."));
        };
        let now = self.now();
        if row.expire_at.is_some_and(|t| now > t) {
            self.store.fail_passkey_registration(&row.user_id, &row.id, now).await?;
            return Err(expired());
        }
        let registration: Registration = serde_json::from_str(&state_text).map_err(|_| ServiceError::internal())?;
        let state: PasskeyRegistration =
            serde_json::from_value(registration.state).map_err(|_| ServiceError::internal())?;
        let passkey = match rp.finish_passkey_registration(&credential, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(user_id = %row.user_id, passkey_id = %row.id, error = %e, "passkey registration refused");
                self.store.fail_passkey_registration(&row.user_id, &row.id, now).await?;
                return Err(refused());
            }
        };
        let stored = serde_json::to_value(&passkey).map_err(|_| ServiceError::internal())?;
        let flag = |name: &str| stored.pointer(&format!("/cred/{name}")).and_then(Value::as_bool).unwrap_or(false);
        let done = PasskeyRow {
            credential_id: Some(URL_SAFE_NO_PAD.encode(passkey.cred_id())),
            credential: Some(stored.to_string()),
            counter: stored.pointer("/cred/counter").and_then(Value::as_i64).unwrap_or(0),
            backup_eligible: flag("backup_eligible"),
            backup_state: flag("backup_state"),
            registration_state: None,
            verified: true,
            expire_at: None,
            updated_at: now,
            ..row
        };
        let event = self.updated_event(record, |list| {
            list.retain(|p| p.id != done.id);
            list.push(done.clone());
        });
        match self.store.emitting_people(vec![event]).finish_passkey_registration(&done, &state_text).await {
            Ok(true) => Ok(done),
            Ok(false) => Err(refused()),
            Err(StoreError::Conflict(_)) => {
                Err(ServiceError::unprocessable("passkey_already_exists", "This passkey is already registered."))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A new discoverable challenge (no credentials listed: the browser offers the passkeys
    /// it holds for this relying party, and the answer names its user).
    pub(crate) fn challenge(&self) -> Result<Challenge> {
        let rp = self.rp()?;
        let (rcr, state) = rp.start_discoverable_authentication().map_err(|e| internal_webauthn("challenge", &e))?;
        let options = public_key_options(serde_json::to_value(&rcr).map_err(|_| ServiceError::internal())?);
        Ok(Challenge {
            state: serde_json::to_value(&state).map_err(|_| ServiceError::internal())?,
            options: options.to_string(),
            expire_at: self.now() + self.settings.timeout_ms,
        })
    }

    /// Checks the browser's answer to `challenge` (already taken, so it is used once) and
    /// stores the new counter: the user it signs in, who must be `expected_user` when given.
    /// A counter that did not rise is refused and logged as a possibly cloned authenticator.
    pub(crate) async fn authenticate(
        &self,
        challenge: Challenge,
        credential_json: &str,
        expected_user: Option<&str>,
    ) -> Result<(UserRecord, PasskeyRow)> {
        let rp = self.rp()?;
        let credential: PublicKeyCredential = serde_json::from_str(credential_json).map_err(|_| malformed())?;
        let now = self.now();
        if now > challenge.expire_at {
            return Err(expired());
        }
        let (handle, credential_id) = rp.identify_discoverable_authentication(&credential).map_err(|_| refused())?;
        let credential_id = URL_SAFE_NO_PAD.encode(credential_id);
        let Some(row) = self.store.passkey_by_credential(&credential_id).await? else {
            tracing::info!("passkey sign-in with an unknown credential");
            return Err(refused());
        };
        let record = self.users.find_user(&row.user_id).await?.ok_or_else(refused)?;
        let handle_matches = record.user.webauthn_handle.as_deref() == Some(handle.to_string().as_str());
        if !handle_matches || expected_user.is_some_and(|u| u != row.user_id) {
            tracing::info!(passkey_id = %row.id, "passkey answer for another user");
            return Err(refused());
        }
        let mut passkey: Passkey = serde_json::from_str(row.credential.as_deref().unwrap_or_default())
            .map_err(|_| ServiceError::internal())?;
        let state: DiscoverableAuthentication =
            serde_json::from_value(challenge.state).map_err(|_| ServiceError::internal())?;
        let result = match rp.finish_discoverable_authentication_v2(&credential, state, &passkey) {
            Ok(r) => r,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                possible_clone(&row);
                return Err(refused());
            }
            Err(e) => {
                tracing::info!(passkey_id = %row.id, error = %e, "passkey answer refused");
                return Err(refused());
            }
        };
        passkey.update_credential(&result);
        let used = PasskeyUse {
            id: row.id.clone(),
            credential: serde_json::to_string(&passkey).map_err(|_| ServiceError::internal())?,
            counter: i64::from(result.counter()),
            backup_state: result.backup_state(),
            now,
        };
        // The check above read the stored counter; a parallel sign-in may have raised it since.
        // The write stores the new one only if it is still higher.
        if !self.store.record_passkey_use(&used).await? {
            possible_clone(&row);
            return Err(refused());
        }
        Ok((record, PasskeyRow { counter: used.counter, last_used_at: Some(now), ..row }))
    }
}

fn possible_clone(row: &PasskeyRow) {
    tracing::warn!(
        passkey_id = %row.id,
        user_id = %row.user_id,
        "passkey signature counter did not rise: possibly a cloned authenticator; sign-in refused"
    );
}

fn internal_webauthn(what: &str, e: &WebauthnError) -> ServiceError {
    tracing::error!(error = %e, "webauthn: {what}");
    ServiceError::internal()
}

/// A version-4 UUID from 16 random bytes.
fn uuid_from_random(mut bytes: [u8; 16]) -> Uuid {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// The default name of a passkey: the browser and system it was made on ("Chrome on Linux").
pub fn default_name(user_agent: Option<&str>) -> String {
    match latchkey_core::user_agent::describe(user_agent) {
        unknown if unknown == "an unknown browser" => "Passkey".into(),
        known => known,
    }
}

/// A passkey's new name: trimmed, 1 to 64 characters.
pub fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > 64 {
        return Err(ServiceError::unprocessable(
            "form_param_format_invalid",
            "A passkey's name is 1 to 64 characters.",
        )
        .param("name"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn on(rp_id: Option<&str>) -> PasskeyConfig {
        PasskeyConfig { enabled: true, rp_id: rp_id.map(Into::into), ..PasskeyConfig::default() }
    }

    #[test]
    fn the_relying_party_comes_from_the_public_url_or_rp_id() {
        let (s, left_out) = PasskeySettings::resolve(&on(None), "App", "https://id.example.com", &[]).unwrap();
        assert_eq!((s.rp_id.as_str(), s.enabled()), ("id.example.com", true));
        assert!(left_out.is_empty());

        // A parent domain covers the app's subdomain; other and insecure origins are left out.
        let origins = ["https://app.example.com".to_owned(), "https://other.test".into(), "http://example.com".into()];
        let (s, left_out) =
            PasskeySettings::resolve(&on(Some("example.com")), "App", "https://id.example.com", &origins).unwrap();
        assert_eq!(s.origins, ["https://id.example.com", "https://app.example.com"]);
        assert_eq!(left_out, ["https://other.test", "http://example.com"]);

        // localhost over http is a secure context; an IP never names a relying party.
        let local = ["http://localhost:3000".to_owned()];
        let (s, _) = PasskeySettings::resolve(&on(Some("localhost")), "App", "http://127.0.0.1:4000", &local).unwrap();
        assert_eq!(s.origins, ["http://localhost:3000"]);
        assert!(PasskeySettings::resolve(&on(None), "App", "http://127.0.0.1:4000", &local).is_err());
        assert!(PasskeySettings::resolve(&on(Some("127.0.0.1")), "App", "http://127.0.0.1:4000", &[]).is_err());
        assert!(PasskeySettings::resolve(&on(Some("example.org")), "App", "https://id.example.com", &[]).is_err());

        // Off: nothing is checked.
        let (s, _) = PasskeySettings::resolve(&PasskeyConfig::default(), "App", "http://127.0.0.1:4000", &[]).unwrap();
        assert!(!s.enabled());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(checked_name("  Laptop ").unwrap(), "Laptop");
        assert!(checked_name(" ").is_err());
        assert!(checked_name(&"x".repeat(65)).is_err());
        assert_eq!(default_name(None), "Passkey");
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(default_name(Some(chrome)), "Chrome on Linux");
    }

    #[test]
    fn handles_are_version_4_uuids() {
        let u = uuid_from_random([0xff; 16]);
        assert_eq!(u.get_version_num(), 4);
    }
}
