-- Revocations verifiers must hear of before the tokens they affect expire
-- (docs/revocations.md): written in the transaction of the change that causes them, read by
-- every instance's feed, dropped once `expires_at` has passed.
CREATE TABLE revocations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    organization_id TEXT,
    role TEXT,
    reason TEXT NOT NULL,
    at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_by_time ON revocations (at);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);
