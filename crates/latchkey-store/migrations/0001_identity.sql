-- Identity core: instance settings, API and signing keys, users, identifications, clients,
-- sessions and the sign-up / sign-in attempts. Timestamps are milliseconds since the epoch.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    public_n TEXT NOT NULL,
    public_e TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activate_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT,
    first_name TEXT,
    last_name TEXT,
    password_hash TEXT,
    primary_email_id TEXT,
    primary_phone_id TEXT,
    public_metadata TEXT NOT NULL,
    private_metadata TEXT NOT NULL,
    unsafe_metadata TEXT NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    banned BOOLEAN NOT NULL DEFAULT FALSE,
    last_sign_in_at BIGINT,
    last_active_at BIGINT,
    password_updated_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX users_created_at ON users (created_at, id);

CREATE TABLE email_addresses (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    verified_at BIGINT,
    code_digest TEXT,
    code_expires_at BIGINT,
    code_attempts BIGINT NOT NULL DEFAULT 0,
    code_consumed BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
-- A verified address belongs to exactly one account; this index settles sign-up races.
CREATE UNIQUE INDEX email_addresses_verified_email ON email_addresses (email) WHERE verified;
CREATE UNIQUE INDEX email_addresses_user_email ON email_addresses (user_id, email);

CREATE TABLE phone_numbers (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    phone TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX phone_numbers_verified_phone ON phone_numbers (phone) WHERE verified;
CREATE UNIQUE INDEX phone_numbers_user_phone ON phone_numbers (user_id, phone);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    token_digest TEXT NOT NULL UNIQUE,
    sign_in_id TEXT,
    sign_up_id TEXT,
    last_active_session_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    active_org_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_active_at BIGINT NOT NULL,
    expire_at BIGINT NOT NULL,
    abandon_at BIGINT NOT NULL
);
CREATE INDEX sessions_client ON sessions (client_id);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE sign_ups (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    email TEXT,
    email_taken BOOLEAN NOT NULL,
    email_verified BOOLEAN NOT NULL,
    username TEXT,
    first_name TEXT,
    last_name TEXT,
    password_hash TEXT,
    unsafe_metadata TEXT NOT NULL,
    code_digest TEXT,
    code_expires_at BIGINT,
    code_attempts BIGINT NOT NULL DEFAULT 0,
    code_consumed BOOLEAN NOT NULL DEFAULT FALSE,
    created_user_id TEXT,
    created_session_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    abandon_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX sign_ups_client ON sign_ups (client_id);

CREATE TABLE sign_ins (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    identifier TEXT,
    user_id TEXT,
    email_address_id TEXT,
    first_factor_strategy TEXT,
    first_factor_status TEXT,
    code_digest TEXT,
    code_expires_at BIGINT,
    code_attempts BIGINT NOT NULL DEFAULT 0,
    code_consumed BOOLEAN NOT NULL DEFAULT FALSE,
    created_session_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    abandon_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
CREATE INDEX sign_ins_client ON sign_ins (client_id);
