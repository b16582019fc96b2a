-- Operation results keyed by what a push looks them up by: the user's op id. Replays are
-- found by their op id too, and a duplicate inside one push needs no row of its own: its
-- answer is rebuilt from the first.
DELETE FROM sync_ops WHERE op_id IS NULL;
ALTER TABLE sync_ops DROP CONSTRAINT sync_ops_pkey;
DROP INDEX sync_ops_by_op_id;
ALTER TABLE sync_ops ALTER COLUMN op_id SET NOT NULL;
ALTER TABLE sync_ops ADD PRIMARY KEY (user_id, op_id);
