-- Backend API: user fields Clerk's API exposes, app-level invitations, sign-in tokens and JWT
-- templates; indexes that serve every user-list filter.
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN locked BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN legal_accepted_at BIGINT;
ALTER TABLE users ADD COLUMN delete_self_enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN create_organization_enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN create_organizations_limit BIGINT;
CREATE UNIQUE INDEX users_external_id ON users (external_id);
CREATE INDEX users_updated_at ON users (updated_at, id);
CREATE INDEX users_last_active_at ON users (last_active_at, id);
CREATE INDEX users_last_sign_in_at ON users (last_sign_in_at, id);
CREATE INDEX email_addresses_email ON email_addresses (email);
CREATE INDEX phone_numbers_phone ON phone_numbers (phone);
CREATE INDEX sessions_created_at ON sessions (created_at, id);
ALTER TABLE phone_numbers ADD COLUMN reserved_for_second_factor BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    public_metadata TEXT NOT NULL,
    redirect_url TEXT,
    token_digest TEXT NOT NULL UNIQUE,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX invitations_created_at ON invitations (created_at, id);
CREATE INDEX invitations_email ON invitations (email);

CREATE TABLE sign_in_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_digest TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sign_in_tokens_user ON sign_in_tokens (user_id);

CREATE TABLE jwt_templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    claims TEXT NOT NULL,
    lifetime BIGINT NOT NULL,
    allowed_clock_skew BIGINT NOT NULL,
    signing_algorithm TEXT NOT NULL,
    -- A template's own key (PEM or HMAC secret), sealed with the key-encryption key.
    signing_key_sealed TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- `query` search is a case-insensitive prefix match, `lower(col) LIKE 'q%'`, which PostgreSQL
-- serves from pattern-ops expression indexes whatever the database collation.
CREATE INDEX email_addresses_email_prefix ON email_addresses (lower(email) text_pattern_ops);
CREATE INDEX phone_numbers_phone_prefix ON phone_numbers (lower(phone) text_pattern_ops);
CREATE INDEX users_username_prefix ON users (lower(username) text_pattern_ops);
CREATE INDEX users_first_name_prefix ON users (lower(first_name) text_pattern_ops);
CREATE INDEX users_last_name_prefix ON users (lower(last_name) text_pattern_ops);
