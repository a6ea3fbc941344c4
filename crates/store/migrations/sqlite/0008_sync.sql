-- The satellite's synchronisation with the cloud (issue 12, S-3).
--
-- In the cloud: the product instances and usage each satellite reported for the pools it
-- serves, apart from the cloud's own instances (their usage is in the pools' `pool_usage`
-- counters too, so the cloud's counts include them); `last_sync_at` is when the last request
-- was applied (`sync_sequence`, 0007, is its sequence).
CREATE TABLE satellite_instances (
    satellite_id BIGINT NOT NULL REFERENCES satellites(id),
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    udi_pid TEXT NOT NULL,
    udi_sn TEXT NOT NULL,
    hostname TEXT NOT NULL,
    last_contact_at BIGINT NOT NULL,
    PRIMARY KEY (virtual_account_id, udi_pid, udi_sn)
);
CREATE TABLE satellite_usage (
    virtual_account_id BIGINT NOT NULL,
    udi_pid TEXT NOT NULL,
    udi_sn TEXT NOT NULL,
    tag TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (virtual_account_id, udi_pid, udi_sn, tag),
    FOREIGN KEY (virtual_account_id, udi_pid, udi_sn)
        REFERENCES satellite_instances (virtual_account_id, udi_pid, udi_sn) ON DELETE CASCADE
);
ALTER TABLE satellites ADD COLUMN last_sync_at BIGINT;
-- Instances of a satellite pool the cloud's operator removed: every response carries them
-- down until a request reports them gone; a request reporting one still there is not mirrored.
CREATE TABLE satellite_removals (
    satellite_id BIGINT NOT NULL REFERENCES satellites(id),
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    udi_pid TEXT NOT NULL,
    udi_sn TEXT NOT NULL,
    PRIMARY KEY (virtual_account_id, udi_pid, udi_sn)
);

-- On a satellite: a change log of its product instances, so a standard request costs in
-- proportion to what changed: every instance added, updated (contact, pool, usage released),
-- removed, or whose usage changed leaves a row naming it (its pool and UDI). Only a satellite
-- with an approved local account logs (the cloud's writes stay as they were). Rows every
-- local account's acknowledged requests cover are pruned.
CREATE TABLE sync_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    virtual_account_id BIGINT NOT NULL,
    udi_pid TEXT NOT NULL,
    udi_sn TEXT NOT NULL
);
CREATE TRIGGER sync_instance_added AFTER INSERT ON instances
WHEN EXISTS (SELECT 1 FROM local_accounts WHERE approved_at IS NOT NULL)
BEGIN
    INSERT INTO sync_changes (virtual_account_id, udi_pid, udi_sn) VALUES (new.virtual_account_id, new.udi_pid, new.udi_sn);
END;
CREATE TRIGGER sync_instance_updated AFTER UPDATE ON instances
WHEN EXISTS (SELECT 1 FROM local_accounts WHERE approved_at IS NOT NULL)
BEGIN
    INSERT INTO sync_changes (virtual_account_id, udi_pid, udi_sn) VALUES (new.virtual_account_id, new.udi_pid, new.udi_sn);
    INSERT INTO sync_changes (virtual_account_id, udi_pid, udi_sn)
        SELECT old.virtual_account_id, old.udi_pid, old.udi_sn WHERE old.virtual_account_id <> new.virtual_account_id;
END;
CREATE TRIGGER sync_instance_removed AFTER DELETE ON instances
WHEN EXISTS (SELECT 1 FROM local_accounts WHERE approved_at IS NOT NULL)
BEGIN
    INSERT INTO sync_changes (virtual_account_id, udi_pid, udi_sn) VALUES (old.virtual_account_id, old.udi_pid, old.udi_sn);
END;
CREATE TRIGGER sync_usage_set AFTER INSERT ON instance_usage
WHEN EXISTS (SELECT 1 FROM local_accounts WHERE approved_at IS NOT NULL)
BEGIN
    INSERT INTO sync_changes (virtual_account_id, udi_pid, udi_sn)
        SELECT virtual_account_id, udi_pid, udi_sn FROM instances WHERE id = new.instance_id;
END;
CREATE TRIGGER sync_usage_changed AFTER UPDATE ON instance_usage
WHEN EXISTS (SELECT 1 FROM local_accounts WHERE approved_at IS NOT NULL)
BEGIN
    INSERT INTO sync_changes (virtual_account_id, udi_pid, udi_sn)
        SELECT virtual_account_id, udi_pid, udi_sn FROM instances WHERE id = new.instance_id;
END;
CREATE TRIGGER sync_usage_dropped AFTER DELETE ON instance_usage
WHEN EXISTS (SELECT 1 FROM local_accounts WHERE approved_at IS NOT NULL)
BEGIN
    INSERT INTO sync_changes (virtual_account_id, udi_pid, udi_sn)
        SELECT virtual_account_id, udi_pid, udi_sn FROM instances WHERE id = old.instance_id;
END;

-- The requests sent (a response must answer one of them) with the last change each covers,
-- and per local account when the last response was applied and the last change it covered.
CREATE TABLE sync_requests (
    local_account_id BIGINT NOT NULL REFERENCES local_accounts(id),
    sequence BIGINT NOT NULL,
    full BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_change BIGINT NOT NULL,
    PRIMARY KEY (local_account_id, sequence)
);
ALTER TABLE local_accounts ADD COLUMN last_sync_at BIGINT;
ALTER TABLE local_accounts ADD COLUMN synced_change BIGINT NOT NULL DEFAULT 0;
