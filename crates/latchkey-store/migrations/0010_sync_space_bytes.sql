-- The bytes a space's records take (table, id, fields, clocks and delete stamp as stored), kept by every push, so the
-- per-space quota (sync.max_space_bytes) is one read.
ALTER TABLE sync_spaces ADD COLUMN bytes BIGINT NOT NULL DEFAULT 0;
UPDATE sync_spaces SET bytes = (
    SELECT COALESCE(SUM(octet_length(r.tbl) + octet_length(r.id) + octet_length(r.data) + octet_length(r.clocks) + COALESCE(octet_length(r.floor), 0)), 0) FROM sync_records r WHERE r.space = sync_spaces.space
);
