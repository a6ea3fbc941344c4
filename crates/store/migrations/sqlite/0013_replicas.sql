-- What the replicas of one manager share through the database (issue 15).

-- The one certificate authority: its certificate, and its private key sealed with the key of
-- SMARTLIC_DATA_KEY (the store never sees the clear key). One row at most.
CREATE TABLE certificate_authority (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem TEXT NOT NULL,
    sealed_key BLOB NOT NULL
);

-- The simulated clock's offset from wall time (`--clock simulated`), and how many times it
-- was set, so each replica applies the newest value. One row at most.
CREATE TABLE simulated_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    offset_ms INTEGER NOT NULL,
    version INTEGER NOT NULL
);

-- Who runs a piece of work (the background jobs) and until when, on the manager's clock.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
