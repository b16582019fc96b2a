-- The bytes a space's records take (fields and clocks as stored), kept by every push, so the
-- per-space quota (sync.max_space_bytes) is one read.
ALTER TABLE sync_spaces ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
UPDATE sync_spaces SET bytes = (
    SELECT COALESCE(SUM(octet_length(r.data) + octet_length(r.clocks)), 0) FROM sync_records r WHERE r.space = sync_spaces.space
);
