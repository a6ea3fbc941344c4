-- Exact reservation arithmetic (issue 10): a reservation names the purchase records it draws
-- from, and what it draws counts only while those records are valid, like purchased licenses.

-- The purchase record each reserved chunk is drawn from. No foreign key: a chunk keeps naming
-- its record after the record's pool is deleted with its expired licenses.
ALTER TABLE reservation_licenses ADD COLUMN license_id BIGINT;

-- What the active reservations of a pool draw from each purchase record, per reserved tag, kept
-- incrementally (rows are records × tags, never reservations): the pool's reserved count is the
-- sum over records valid now, and a record's undrawn quantity is what a reservation may take.
CREATE TABLE license_draws (
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    license_id BIGINT NOT NULL,
    tag TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (virtual_account_id, license_id, tag)
);
CREATE INDEX license_draws_by_license ON license_draws (license_id);

-- Chunks of earlier reservations named no record: each gets the pool's first record of the same
-- term and subscription, of its own tag if there is one.
CREATE TEMPORARY VIEW chunk_records AS
    SELECT rl.id AS chunk_id, l.id AS license_id, l.tag = rl.tag AS own
    FROM reservation_licenses rl JOIN reservations r ON r.id = rl.reservation_id
    JOIN licenses l ON l.virtual_account_id = r.virtual_account_id AND l.kind = rl.license_type
        AND l.start_at IS rl.start_at AND l.end_at IS rl.end_at AND l.subscription_id IS rl.subscription_id;
UPDATE reservation_licenses SET license_id = (
    SELECT c.license_id FROM chunk_records c WHERE c.chunk_id = reservation_licenses.id
    ORDER BY c.own DESC, c.license_id LIMIT 1
);
DROP VIEW chunk_records;
INSERT INTO license_draws (virtual_account_id, license_id, tag, quantity)
    SELECT r.virtual_account_id, rl.license_id, rl.tag, SUM(rl.quantity)
    FROM reservation_licenses rl JOIN reservations r ON r.id = rl.reservation_id
    WHERE r.status = 'reserved' AND rl.license_id IS NOT NULL
    GROUP BY r.virtual_account_id, rl.license_id, rl.tag;

-- The timeless reserved counter is replaced by license_draws.
ALTER TABLE pool_usage DROP COLUMN reserved;
