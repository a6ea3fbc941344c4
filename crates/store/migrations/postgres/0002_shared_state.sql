-- What every replica shares through the database (as SQLite's 0013): the CA (its key sealed
-- with SMARTLIC_DATA_KEY), the simulated clock's offset, and the background jobs' leases.
CREATE TABLE certificate_authority (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    cert_pem TEXT NOT NULL,
    sealed_key BYTEA NOT NULL
);

CREATE TABLE simulated_clock (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    offset_ms BIGINT NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX usage_history_by_day ON usage_history (day);
