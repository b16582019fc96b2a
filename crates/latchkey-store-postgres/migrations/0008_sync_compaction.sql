-- Tombstone compaction: the largest sequence number of a tombstone removed from the space. A
-- cursor below it may have missed a delete, so the pull resets that space.
ALTER TABLE sync_spaces ADD COLUMN compacted_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sync_records_tombstones ON sync_records (updated_at) WHERE deleted;
