-- Passkeys (docs/passkeys.md). A user's WebAuthn user handle is a random UUID made at their
-- first registration and never changed: the authenticator stores it with the credential and
-- hands it back at sign-in, so it must not reveal the user id.
ALTER TABLE users ADD COLUMN webauthn_handle TEXT;
CREATE UNIQUE INDEX users_webauthn_handle ON users (webauthn_handle);

-- One row per passkey. A row starts unverified, holding the registration's single-use state
-- and the options shown to the browser, and becomes a passkey once the browser's answer is
-- verified: then `credential_id` (base64url, unique: a credential is never on two accounts)
-- and `credential` (the library's record: key, counter, flags) are set. The counter and the
-- backup flags are kept in columns too, so a sign-in can store them with one conditional
-- update that refuses a counter going backwards.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    credential_id TEXT UNIQUE,
    credential TEXT,
    counter BIGINT NOT NULL DEFAULT 0,
    backup_eligible BOOLEAN NOT NULL DEFAULT FALSE,
    backup_state BOOLEAN NOT NULL DEFAULT FALSE,
    registration_state TEXT,
    verified BOOLEAN NOT NULL,
    expire_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A sign-in's passkey step: the single-use challenge state and the options shown (JSON),
-- and whether the sign-in lists `passkey` among its first factors.
ALTER TABLE sign_ins ADD COLUMN passkey_state TEXT;
