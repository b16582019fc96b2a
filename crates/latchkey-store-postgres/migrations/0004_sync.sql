-- Offline-first sync: spaces with their own change counter, records with field clocks and
-- the sequence number of their latest change, and per-client progress with each op's result.
CREATE TABLE sync_spaces (
    space TEXT PRIMARY KEY,
    seq BIGINT NOT NULL,
    epoch TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE sync_records (
    space TEXT NOT NULL,
    tbl TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    clocks TEXT NOT NULL,
    floor TEXT,
    deleted BOOLEAN NOT NULL,
    seq BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (space, tbl, id)
);
CREATE INDEX sync_records_by_seq ON sync_records (space, seq);

CREATE TABLE sync_clients (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX sync_clients_by_last_seen ON sync_clients (last_seen_at);

CREATE TABLE sync_ops (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    op_id TEXT,
    -- NULL for `applied` (the result is rebuilt from seq and op_id).
    result TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, seq)
);
CREATE UNIQUE INDEX sync_ops_by_op_id ON sync_ops (user_id, op_id);
