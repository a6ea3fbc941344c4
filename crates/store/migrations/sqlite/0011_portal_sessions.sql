-- Portal sessions in the database, so that a restart keeps people signed in and every
-- manager over this database knows every session. Only the SHA-256 digest of the cookie's
-- session id is kept: a copy of the database does not sign anyone in.
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY,
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    -- The token every form of the session carries.
    csrf TEXT NOT NULL,
    -- Digest of the principal's secret hash at sign-in: a changed password ends the session.
    secret_fingerprint TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);

-- Daily usage per pool and entitlement tag (the Reports chart): one row per day, the last
-- value the jobs saw that day.
CREATE TABLE usage_history (
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    -- The day's start, milliseconds since the epoch (UTC).
    day BIGINT NOT NULL,
    in_use BIGINT NOT NULL,
    purchased BIGINT NOT NULL,
    PRIMARY KEY (virtual_account_id, tag, day)
);

-- The Event Log's list of kinds reads this index without touching the rows.
CREATE INDEX events_by_account_kind ON events (account_id, kind, id);
