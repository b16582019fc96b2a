-- Offline-first sync (the narrow tables without rowid: one B-tree each, keyed as they are read): spaces with their own change counter, records with field clocks and
-- the sequence number of their latest change, and per-client progress with each op's result.
CREATE TABLE sync_spaces (
    space TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    epoch TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sync_records (
    space TEXT NOT NULL,
    tbl TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    clocks TEXT NOT NULL,
    floor TEXT,
    deleted BOOLEAN NOT NULL,
    seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (space, tbl, id)
);
CREATE INDEX sync_records_by_seq ON sync_records (space, seq);

CREATE TABLE sync_clients (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
CREATE INDEX sync_clients_by_last_seen ON sync_clients (last_seen_at);

CREATE TABLE sync_ops (
    user_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    op_id TEXT,
    -- NULL for `applied` (the result is rebuilt from seq and op_id).
    result TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX sync_ops_by_op_id ON sync_ops (user_id, op_id);
