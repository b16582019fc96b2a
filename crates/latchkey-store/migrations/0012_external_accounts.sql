-- A person's account at an identity provider, joined to a user (docs/identity-providers.md).
-- `provider` is Clerk's strategy (`oauth_google`, `oauth_custom_<key>`); the provider's own id
-- of the person is unique per provider. Provider tokens are sealed with the key-encryption key.
CREATE TABLE external_accounts (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    email_address TEXT,
    email_verified BOOLEAN NOT NULL,
    first_name TEXT,
    last_name TEXT,
    image_url TEXT,
    username TEXT,
    approved_scopes TEXT NOT NULL,
    access_token_sealed TEXT,
    refresh_token_sealed TEXT,
    token_expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX external_accounts_provider_subject ON external_accounts (provider, provider_user_id);
CREATE INDEX external_accounts_user ON external_accounts (user_id);

-- A sign-in with a provider: why its trip failed (Clerk's error code, shown on the
-- verification), and what the provider said of a person without an account (JSON, tokens
-- sealed), kept for the sign-up that takes the attempt over (`transfer`).
ALTER TABLE sign_ins ADD COLUMN first_factor_error TEXT;
ALTER TABLE sign_ins ADD COLUMN external_profile TEXT;
-- A sign-up that took such an attempt over carries the same, until the account is made.
ALTER TABLE sign_ups ADD COLUMN external_profile TEXT;
