-- Windowed counters of the budgets against guessing and abuse (latchkey_core::throttle):
-- failed attempts per identifier, codes and mail per address, user and IP. Keys are digests
-- or ids, never an address in clear.
CREATE TABLE attempt_counters (
    key TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX attempt_counters_expiry ON attempt_counters (expires_at);
