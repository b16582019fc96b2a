-- Handshake nonces (clerk-fapi.md §5): the cookie directives for an app's backend, stored under
-- the digest of a single-use nonce until it is taken or expires.
CREATE TABLE handshake_nonces (
    nonce_digest TEXT PRIMARY KEY,
    directives TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX handshake_nonces_by_expiry ON handshake_nonces (expires_at);
