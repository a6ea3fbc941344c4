-- The satellite's scheduled synchronisation and what comes down from the cloud (issue 12, S-3).
--
-- On a satellite: each local account synchronises by itself every `sync_interval_days` (30 by
-- default, seed 001); `last_attempt_at` / `last_sync_error` record the last attempt that failed
-- (cleared when a response is applied), so a failed scheduled sync shows and is retried.
ALTER TABLE local_accounts ADD COLUMN sync_interval_days BIGINT NOT NULL DEFAULT 30;
ALTER TABLE local_accounts ADD COLUMN last_attempt_at BIGINT;
ALTER TABLE local_accounts ADD COLUMN last_sync_error TEXT;
-- In the cloud: each satellite's interval, as its last request said, for its Synchronization Due.
ALTER TABLE satellites ADD COLUMN sync_interval_days BIGINT NOT NULL DEFAULT 30;

-- On a satellite: pools the cloud reassigned to another manager. Their instances were removed
-- when the release was applied; the satellite serves them no more and reports them no more.
CREATE TABLE released_pools (
    virtual_account_id BIGINT PRIMARY KEY REFERENCES virtual_accounts(id),
    released_at BIGINT NOT NULL
);

-- In the cloud: a pool a satellite serves that the operator reassigned (to another satellite,
-- or to the cloud when `to_satellite_id` is NULL). It moves when the serving satellite's next
-- request is applied, after that request's usage: one manager per pool at every moment.
CREATE TABLE pool_moves (
    virtual_account_id BIGINT PRIMARY KEY REFERENCES virtual_accounts(id),
    from_satellite_id BIGINT NOT NULL REFERENCES satellites(id),
    to_satellite_id BIGINT REFERENCES satellites(id),
    requested_at BIGINT NOT NULL,
    requested_by TEXT NOT NULL
);

-- In the cloud: pools taken from a satellite, carried down with every response until a request
-- acknowledges one that carried them (`sequence`, the request the first one answered). By name,
-- with no reference to the pool: one the cloud deletes meanwhile is still released.
CREATE TABLE satellite_releases (
    satellite_id BIGINT NOT NULL REFERENCES satellites(id),
    virtual_account_id BIGINT NOT NULL,
    pool TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    PRIMARY KEY (satellite_id, virtual_account_id)
);
