-- Second factors (docs/second-factors.md). A user has at most one authenticator-app key; it is
-- sealed with the key-encryption key and counts only once verified. `last_used_step` is the
-- newest 30-second step a code was accepted for: a code of that step or an earlier one is
-- refused, so each code works once.
CREATE TABLE totps (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed TEXT NOT NULL,
    verified BOOLEAN NOT NULL,
    last_used_step BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per unused backup code: a keyed digest, deleted when the code is used.
CREATE TABLE backup_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX backup_codes_user ON backup_codes (user_id);

-- When the session's holder last proved each factor (the token's `fva`); NULL for the first
-- means when the session began, NULL for the second means never. `reverification` is the
-- state of a step-up check in progress (JSON), NULL when none is.
ALTER TABLE sessions ADD COLUMN first_factor_verified_at BIGINT;
ALTER TABLE sessions ADD COLUMN second_factor_verified_at BIGINT;
ALTER TABLE sessions ADD COLUMN reverification TEXT;
-- A task the holder must finish before the session is fully active (Clerk's `pending`
-- status): `setup-mfa` when the instance requires a second factor the user has not set up.
ALTER TABLE sessions ADD COLUMN pending_task TEXT;

-- A sign-in's second step: the factors the user can use (comma-separated, known only once the
-- first factor passed), the factor tried, its status, and the wrong codes it has had.
ALTER TABLE sign_ins ADD COLUMN second_factors_supported TEXT;
ALTER TABLE sign_ins ADD COLUMN second_factor_strategy TEXT;
ALTER TABLE sign_ins ADD COLUMN second_factor_status TEXT;
ALTER TABLE sign_ins ADD COLUMN second_factor_attempts BIGINT NOT NULL DEFAULT 0;
