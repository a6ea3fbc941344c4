-- The satellite (issue 12, S-1, S-2, S-4, S-6).
--
-- In the cloud: each satellite registration of a smart account, its certificate once approved,
-- and the signed answer the satellite fetches. `sync_sequence` is the last sequence number of
-- the satellite's synchronisation applied (S-3 builds on it).
CREATE TABLE satellites (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES smart_accounts(id),
    name TEXT NOT NULL,
    local_account TEXT NOT NULL,
    manager_id TEXT NOT NULL,
    key_algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    csr TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    requested_by TEXT NOT NULL,
    approved_at BIGINT,
    certificate_expires_at BIGINT,
    answer TEXT,
    sync_sequence BIGINT NOT NULL DEFAULT 0,
    UNIQUE (account_id, manager_id, local_account)
);

-- One manager per pool: a virtual account listed here is served by that satellite alone, and
-- the cloud refuses its devices.
CREATE TABLE satellite_pools (
    virtual_account_id BIGINT PRIMARY KEY REFERENCES virtual_accounts(id),
    satellite_id BIGINT NOT NULL REFERENCES satellites(id)
);

-- On a satellite: its local accounts, each mirroring one smart account of the cloud. The smart
-- account and its pools exist here only once the cloud approved (`approved_at`).
-- `sync_sequence` / `acknowledged_sequence`: the last sync request sent and the last the cloud
-- acknowledged (S-3).
CREATE TABLE local_accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    domain TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    cloud_satellite_id BIGINT,
    cloud_url TEXT,
    approved_at BIGINT,
    certificate TEXT,
    certificate_expires_at BIGINT,
    cloud_ca TEXT,
    sync_sequence BIGINT NOT NULL DEFAULT 0,
    acknowledged_sequence BIGINT NOT NULL DEFAULT 0
);
