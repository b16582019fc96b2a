//! A user's accounts at identity providers as Clerk shows them (`ExternalAccountWithVerification`
//! in both of Clerk's documents; docs/identity-providers.md, "On the user").

use latchkey_store::ExternalAccountRow;
use serde::Serialize;
use serde_json::Value;

use super::Audience;

#[derive(Debug, Clone, Serialize)]
pub struct ExternalAccountView {
    pub object: &'static str,
    pub id: String,
    /// The Frontend API names the provider without the strategy's `oauth_` (`google`,
    /// `custom_acme`: Clerk's components prepend it); the Backend API and webhooks name the
    /// strategy (`oauth_google`).
    pub provider: String,
    /// latchkey keeps no separate identification: the account's own id.
    pub identification_id: String,
    pub provider_user_id: String,
    pub approved_scopes: String,
    pub email_address: String,
    pub email_address_verified: Option<bool>,
    pub first_name: String,
    pub last_name: String,
    /// Deprecated in Clerk's documents, still read by older SDKs: the same as `image_url`.
    pub avatar_url: String,
    pub image_url: Option<String>,
    pub username: Option<String>,
    pub phone_number: Option<String>,
    pub public_metadata: Value,
    pub label: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub verification: ExternalVerification,
}

/// A joined account was proven by its provider's sign-in: `verified`, for good.
#[derive(Debug, Clone, Serialize)]
pub struct ExternalVerification {
    pub object: &'static str,
    pub status: &'static str,
    pub strategy: String,
    pub attempts: Option<i64>,
    pub expire_at: i64,
    pub error: Option<Value>,
}

impl ExternalAccountView {
    pub fn of(a: &ExternalAccountRow, audience: Audience) -> Self {
        let provider = match audience {
            Audience::Frontend => a.provider.strip_prefix("oauth_").unwrap_or(&a.provider).to_owned(),
            Audience::Backend => a.provider.clone(),
        };
        Self {
            object: "external_account",
            id: a.id.clone(),
            provider,
            identification_id: a.id.clone(),
            provider_user_id: a.provider_user_id.clone(),
            approved_scopes: a.approved_scopes.clone(),
            email_address: a.email_address.clone().unwrap_or_default(),
            email_address_verified: Some(a.email_verified),
            first_name: a.first_name.clone().unwrap_or_default(),
            last_name: a.last_name.clone().unwrap_or_default(),
            avatar_url: a.image_url.clone().unwrap_or_default(),
            image_url: a.image_url.clone(),
            username: a.username.clone(),
            phone_number: None,
            public_metadata: Value::Object(serde_json::Map::new()),
            label: None,
            created_at: a.created_at,
            updated_at: a.updated_at,
            verification: ExternalVerification {
                object: "verification_oauth",
                status: "verified",
                strategy: a.provider.clone(),
                attempts: None,
                expire_at: a.created_at,
                error: None,
            },
        }
    }
}

pub fn external_account_json(a: &ExternalAccountRow, audience: Audience) -> Value {
    super::to_value(ExternalAccountView::of(a, audience))
}
