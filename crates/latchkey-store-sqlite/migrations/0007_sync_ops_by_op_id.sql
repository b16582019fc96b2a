-- Operation results keyed by what a push looks them up by: the user's op id (one B-tree
-- instead of two; without statistics SQLite chose the (user, client, seq) key for an op-id
-- lookup and scanned every result of the user). Replays are found by their op id too, and
-- a duplicate inside one push needs no row of its own: its answer is rebuilt from the first.
CREATE TABLE sync_ops_by_op (
    user_id TEXT NOT NULL,
    op_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    -- NULL for `applied` (the result is rebuilt from seq and op_id).
    result TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, op_id)
) WITHOUT ROWID;
INSERT INTO sync_ops_by_op (user_id, op_id, client_id, seq, result, created_at)
    SELECT user_id, op_id, client_id, seq, result, created_at FROM sync_ops WHERE op_id IS NOT NULL;
DROP TABLE sync_ops;
ALTER TABLE sync_ops_by_op RENAME TO sync_ops;
