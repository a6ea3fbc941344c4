-- Offline reservation (R-1): licenses set aside for devices that never talk to the manager.

-- Universal reservations grant everything; an operator allows them per smart account.
ALTER TABLE smart_accounts ADD COLUMN universal_reservation BOOLEAN NOT NULL DEFAULT FALSE;

-- Reserved counts per pool and tag, kept incrementally like in_use: authorization never sums
-- reservations.
ALTER TABLE pool_usage ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0;

CREATE TABLE reservations (
    id INTEGER PRIMARY KEY,
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    request_code TEXT NOT NULL,
    kind TEXT NOT NULL,
    udi_pid TEXT NOT NULL,
    udi_sn TEXT NOT NULL,
    piid TEXT NOT NULL,
    authorization_code TEXT NOT NULL,
    -- Hex of the digest a return code names its authorization by.
    authorization_digest TEXT NOT NULL UNIQUE,
    confirmation_code TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    returned_at BIGINT
);
CREATE INDEX reservations_by_pool ON reservations (virtual_account_id, id);
-- One active reservation per device, whatever the pool.
CREATE UNIQUE INDEX reservations_active_udi ON reservations (udi_pid, udi_sn) WHERE status = 'reserved';

-- One row per chunk taken from one purchase record (its term and subscription).
CREATE TABLE reservation_licenses (
    id INTEGER PRIMARY KEY,
    reservation_id BIGINT NOT NULL REFERENCES reservations(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    license_type TEXT NOT NULL,
    start_at BIGINT,
    end_at BIGINT,
    subscription_id TEXT
);
CREATE INDEX reservation_licenses_by_reservation ON reservation_licenses (reservation_id, id);
