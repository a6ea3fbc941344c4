-- Listings page a pool's instances in (PID, serial) order: with the pool index extended by the
-- UDI, a page is read in index order instead of sorting the whole pool first.
DROP INDEX instances_by_pool;
CREATE INDEX instances_by_pool ON instances (virtual_account_id, udi_pid, udi_sn);
