-- The gate of a pool's in-use counters (see `engine.rs`): every change of the pool's
-- `pool_usage` first updates this column, so a usage report at READ COMMITTED and a serializable
-- reservation or transfer, which locks it FOR SHARE, are ordered on this one row. PostgreSQL
-- only; SQLite has one writer. Its value means nothing else.
ALTER TABLE virtual_accounts ADD COLUMN usage_changes BIGINT NOT NULL DEFAULT 0;
