-- Device-led conversion (V-1): where it is enabled (off by default), and the one conversion
-- each device (UDI) may have in its lifetime. The licenses it deposits are ordinary purchase
-- records whose SKU carries the marker `DLC:<legacy name>`.
ALTER TABLE smart_accounts ADD COLUMN conversion_enabled BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE virtual_accounts ADD COLUMN conversion_enabled BOOLEAN NOT NULL DEFAULT 0;

CREATE TABLE device_conversions (
    id INTEGER PRIMARY KEY,
    udi_pid TEXT NOT NULL,
    udi_sn TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    -- No foreign key: the record outlives the pool (a pool emptied later may be deleted).
    virtual_account_id BIGINT NOT NULL,
    converted_at BIGINT NOT NULL,
    -- What was converted, as the event says it: "2 ACI-LEAF-ADV -> 2 ACI Advantage; ...".
    detail TEXT NOT NULL,
    UNIQUE (udi_pid, udi_sn)
);
