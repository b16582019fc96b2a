-- Rate-limit cells shared by every instance on one database (latchkey_core::ratelimit, the
-- generic cell rate algorithm): per key, the theoretical arrival time in milliseconds. Keys
-- are keyed digests, never an address in clear. Cells whose time has passed are pruned.
CREATE TABLE rate_cells (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
