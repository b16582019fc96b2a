//! JWT templates: tokens for other backends, with claims rendered from shortcodes and signed by
//! the instance key or the template's own key. Also the Backend API's session tokens.

use latchkey_core::ids::IdKind;
use latchkey_core::template::{self, TemplateProblem};
use latchkey_store::{JwtTemplateRow, SessionRow, StoreError};
use latchkey_token::{CustomKey, TEMPLATE_TOKEN_CAT};
use serde_json::{json, Map, Value};

use crate::authority::Client;
use crate::authority::Operator;
use crate::error::{ErrorKind, Result, ServiceError};
use crate::resources::primary_email;
use crate::{RequestContext, Services};

/// Browsers drop cookies past about 4 KB, and many proxies limit headers near 8 KB: a token
/// larger than this is refused rather than produced.
pub const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    pub name: Option<String>,
    pub claims: Option<Value>,
    pub lifetime: Option<i64>,
    pub allowed_clock_skew: Option<i64>,
    pub custom_signing_key: Option<bool>,
    pub signing_algorithm: Option<String>,
    pub signing_key: Option<String>,
}

fn problem(p: TemplateProblem) -> ServiceError {
    ServiceError::unprocessable("form_param_value_invalid", p.to_string()).param("claims")
}

fn too_large(size: usize) -> ServiceError {
    ServiceError::unprocessable("token_too_large", "The token would be too large.")
        .long(format!(
            "The signed token would be {size} bytes; latchkey refuses tokens over {MAX_TOKEN_BYTES} bytes because cookies and headers stop working past that. Move large data out of the claims."
        ))
        .meta("size", size.into())
}

impl Services {
    pub async fn jwt_template(&self, id: &str) -> Result<JwtTemplateRow> {
        self.store.get_jwt_template(id).await?.ok_or_else(|| ServiceError::not_found("JWT template"))
    }

    pub async fn list_jwt_templates(&self) -> Result<Vec<JwtTemplateRow>> {
        Ok(self.store.list_jwt_templates().await?)
    }

    pub async fn create_jwt_template(&self, _operator: &Operator, input: TemplateInput) -> Result<JwtTemplateRow> {
        let now = self.now();
        let mut row = JwtTemplateRow {
            id: self.new_id(IdKind::JwtTemplate),
            name: String::new(),
            claims: "{}".into(),
            lifetime: 60,
            allowed_clock_skew: 5,
            signing_algorithm: "RS256".into(),
            signing_key_sealed: None,
            created_at: now,
            updated_at: now,
        };
        if input.name.is_none() {
            return Err(ServiceError::unprocessable("form_param_missing", "name is required").param("name"));
        }
        if input.claims.is_none() {
            return Err(ServiceError::unprocessable("form_param_missing", "claims is required").param("claims"));
        }
        self.apply_template_input(&mut row, input)?;
        self.store.insert_jwt_template(&row).await.map_err(template_conflict)?;
        Ok(row)
    }

    pub async fn update_jwt_template(
        &self,
        _operator: &Operator,
        id: &str,
        input: TemplateInput,
    ) -> Result<JwtTemplateRow> {
        let mut row = self.jwt_template(id).await?;
        self.apply_template_input(&mut row, input)?;
        row.updated_at = self.now();
        self.store.update_jwt_template(&row).await.map_err(template_conflict)?;
        Ok(row)
    }

    pub async fn delete_jwt_template(&self, _operator: &Operator, id: &str) -> Result<()> {
        if self.store.delete_jwt_template(id).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found("JWT template"))
        }
    }

    fn apply_template_input(&self, row: &mut JwtTemplateRow, input: TemplateInput) -> Result<()> {
        if let Some(name) = input.name {
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "name must be 1 to 100 characters",
                )
                .param("name"));
            }
            row.name = name;
        }
        if let Some(claims) = input.claims {
            template::validate(&claims).map_err(problem)?;
            row.claims = claims.to_string();
            // Even with empty user data the template must fit.
            let size = claims.to_string().len();
            if size > MAX_TOKEN_BYTES {
                return Err(too_large(size).param("claims"));
            }
        }
        if let Some(lifetime) = input.lifetime {
            if !(30..=315_360_000).contains(&lifetime) {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "lifetime must be between 30 and 315360000 seconds",
                )
                .param("lifetime"));
            }
            row.lifetime = lifetime;
        }
        if let Some(skew) = input.allowed_clock_skew {
            if !(0..=300).contains(&skew) {
                return Err(ServiceError::unprocessable(
                    "form_param_value_invalid",
                    "allowed_clock_skew must be between 0 and 300 seconds",
                )
                .param("allowed_clock_skew"));
            }
            row.allowed_clock_skew = skew;
        }
        match input.custom_signing_key {
            Some(true) => {
                let alg = input.signing_algorithm.unwrap_or_else(|| "RS256".into());
                let key = input.signing_key.ok_or_else(|| {
                    ServiceError::unprocessable("form_param_missing", "signing_key is required with custom_signing_key")
                        .param("signing_key")
                })?;
                CustomKey::parse(&alg, &key).map_err(|e| {
                    let param = if matches!(e, latchkey_token::CustomKeyError::Algorithm) {
                        "signing_algorithm"
                    } else {
                        "signing_key"
                    };
                    ServiceError::unprocessable("form_param_value_invalid", e.to_string()).param(param)
                })?;
                row.signing_key_sealed = Some(self.keys.seal_secret(key.as_bytes(), &row.id)?);
                row.signing_algorithm = alg;
            }
            Some(false) => {
                row.signing_key_sealed = None;
                row.signing_algorithm = "RS256".into();
            }
            None if input.signing_key.is_some() || input.signing_algorithm.is_some() => {
                return Err(ServiceError::unprocessable(
                    "form_param_missing",
                    "Set custom_signing_key to true to give the template its own key.",
                )
                .param("custom_signing_key"));
            }
            None => {}
        }
        Ok(())
    }

    /// What shortcodes see: the user, the session and the session's active organization.
    async fn template_context(&self, session: &SessionRow) -> Result<Value> {
        let record = self.users.user(&session.user_id).await?;
        let u = &record.user;
        let email = primary_email(&record);
        let phone = u
            .primary_phone_id
            .as_ref()
            .and_then(|id| record.phones.iter().find(|p| &p.id == id))
            .map(|p| p.phone.clone());
        let full_name = match (&u.first_name, &u.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        };
        let meta = |text: &str| Value::Object(latchkey_core::metadata::parse(text));
        Ok(json!({
            "user": {
                "id": u.id,
                "external_id": u.external_id,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "full_name": full_name,
                "username": u.username,
                "primary_email_address": email,
                "primary_phone_number": phone,
                "email_verified": email.is_some(),
                "phone_number_verified": phone.is_some(),
                "image_url": format!("{}/avatar.svg", self.config.issuer.trim_end_matches('/')),
                "has_image": false,
                "two_factor_enabled": false,
                "created_at": u.created_at / 1000,
                "updated_at": u.updated_at / 1000,
                "public_metadata": meta(&u.public_metadata),
                "unsafe_metadata": meta(&u.unsafe_metadata),
            },
            "org": self.orgs.org_template_context(session).await?,
            "session": {"id": session.id, "actor": null},
        }))
    }

    /// An active session, for minting tokens from the Backend API.
    async fn active_session(&self, session_id: &str) -> Result<SessionRow> {
        let session = self.users.session(session_id).await?;
        if !self.users.session_is_active(&session) || session.pending_task.is_some() {
            return Err(ServiceError::not_found("Active session")
                .long("The session has ended, expired or been revoked, so no token can be issued for it."));
        }
        Ok(session)
    }

    /// A session token for `session_id` (`POST /v1/sessions/{id}/tokens`), optionally with a
    /// custom lifetime.
    pub async fn admin_session_token(
        &self,
        _operator: &Operator,
        session_id: &str,
        expires_in_seconds: Option<i64>,
    ) -> Result<String> {
        let session = self.active_session(session_id).await?;
        let ttl = match expires_in_seconds {
            None => self.config.token_ttl_secs,
            Some(_) => expires_in_lifetime(expires_in_seconds)?,
        };
        self.sign_session_token_ttl(&RequestContext::default(), &session, ttl).await
    }

    /// A token from the named template for `session_id` (the Backend API's
    /// `POST /v1/sessions/{id}/tokens/{template_name}`).
    pub async fn template_token(
        &self,
        _operator: &Operator,
        session_id: &str,
        template_name: &str,
        expires_in_seconds: Option<i64>,
    ) -> Result<String> {
        let template = self.template_named(template_name).await?;
        let session = self.active_session(session_id).await?;
        let lifetime = match expires_in_seconds {
            Some(_) => expires_in_lifetime(expires_in_seconds)?,
            None => template.lifetime,
        };
        self.sign_template_token(&template, &session, lifetime).await
    }

    /// A token from the named template for one of this client's sessions (the Frontend API's
    /// `POST /v1/client/sessions/{id}/tokens/{template_name}`, clerk-js's
    /// `session.getToken({ template })`). The same checks as the Backend API's: an active
    /// session that has no task left (a session waiting for a task gets no token for another
    /// backend, as sync refuses it), the template's own lifetime. docs/frontend-api.md §7.
    pub async fn client_template_token(
        &self,
        client: &Client,
        session_id: &str,
        template_name: &str,
    ) -> Result<String> {
        let session = self.active_session_of(client, session_id).await?;
        if session.pending_task.is_some() {
            return Err(ServiceError::new(
                ErrorKind::Forbidden,
                "session_pending",
                "Finish signing in before asking for this token.",
            )
            .long("The session still has a task to complete (such as setting up a second factor); template tokens are issued to fully signed-in sessions only."));
        }
        let template = self.template_named(template_name).await?;
        self.sign_template_token(&template, &session, template.lifetime).await
    }

    async fn template_named(&self, name: &str) -> Result<JwtTemplateRow> {
        self.store.jwt_template_by_name(name).await?.ok_or_else(|| ServiceError::not_found("JWT template"))
    }

    async fn sign_template_token(
        &self,
        template: &JwtTemplateRow,
        session: &SessionRow,
        lifetime: i64,
    ) -> Result<String> {
        let claims: Value = serde_json::from_str(&template.claims).map_err(|_| ServiceError::internal())?;
        let rendered = template::render(&claims, &self.template_context(session).await?);
        let now = self.clock.now_secs();
        let mut payload: Map<String, Value> = rendered.as_object().cloned().unwrap_or_default();
        payload.insert("iss".into(), self.config.issuer.clone().into());
        payload.insert("sub".into(), session.user_id.clone().into());
        payload.insert("iat".into(), now.into());
        payload.insert("nbf".into(), (now - template.allowed_clock_skew).into());
        payload.insert("exp".into(), (now + lifetime).into());
        payload.insert(
            "jti".into(),
            latchkey_core::secret::new_opaque_secret(self.rng.as_ref()).chars().take(20).collect::<String>().into(),
        );
        let token = match &template.signing_key_sealed {
            Some(sealed) => {
                let secret = self.keys.open_secret(sealed, &template.id)?;
                let text = std::str::from_utf8(&secret).map_err(|_| ServiceError::internal())?;
                let key = CustomKey::parse(&template.signing_algorithm, text).map_err(|_| ServiceError::internal())?;
                key.sign(&payload, Some(TEMPLATE_TOKEN_CAT)).map_err(|_| ServiceError::internal())?
            }
            None => {
                let key = self.keys.signing_key().await?;
                key.sign(&payload, Some(TEMPLATE_TOKEN_CAT)).map_err(|_| ServiceError::internal())?
            }
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(too_large(token.len()));
        }
        self.telemetry.count("latchkey_tokens_minted_total", &[("kind", "template")]);
        Ok(token)
    }
}

fn expires_in_lifetime(expires_in_seconds: Option<i64>) -> Result<i64> {
    match expires_in_seconds {
        None => Ok(60),
        Some(s) if (30..=315_360_000).contains(&s) => Ok(s),
        Some(_) => Err(ServiceError::unprocessable(
            "form_param_value_invalid",
            "expires_in_seconds must be between 30 and 315360000",
        )
        .param("expires_in_seconds")),
    }
}

fn template_conflict(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(_) => {
            ServiceError::unprocessable("form_identifier_exists", "A JWT template with this name exists.").param("name")
        }
        other => other.into(),
    }
}
