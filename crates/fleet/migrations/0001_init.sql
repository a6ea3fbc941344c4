-- The fleet orchestrator's own database (seed 002, SPEC F-1..F-4).

-- A manager account the orchestrator acts on through its API client credentials: a cloud
-- smart account (by domain) or a satellite's local account (by name).
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('cloud', 'satellite')),
    base_url TEXT NOT NULL,
    ca_pem TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- Sealed with SMARTLIC_DATA_KEY when it is set (secret_sealed = 1), else plain UTF-8.
    client_secret BLOB NOT NULL,
    secret_sealed INTEGER NOT NULL,
    -- JSON transport mode; NULL: direct.
    transport TEXT,
    -- The "operational" virtual account new clusters are auto-registered to.
    operational_va TEXT,
    last_sync_ms INTEGER,
    created_ms INTEGER NOT NULL
);

-- Virtual accounts as the last sync found them, with the orchestrator's own license mode.
CREATE TABLE virtual_accounts (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    license_mode TEXT,
    -- A registration token of this virtual account, reused until it expires or is refused.
    token BLOB,
    token_sealed INTEGER NOT NULL DEFAULT 0,
    token_expires_ms INTEGER,
    PRIMARY KEY (account_id, name)
);

-- Licenses of each virtual account as the last sync found them.
CREATE TABLE licenses (
    account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    virtual_account TEXT NOT NULL,
    license TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    in_use INTEGER NOT NULL,
    available INTEGER NOT NULL,
    status TEXT NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (account_id, virtual_account, license)
);

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    transport TEXT,
    created_ms INTEGER NOT NULL
);

CREATE TABLE clusters (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    name TEXT NOT NULL UNIQUE,
    application TEXT NOT NULL,
    transport TEXT,
    -- The assignment: account and virtual account, and how it was made (manual, auto).
    account_id INTEGER REFERENCES accounts(id),
    virtual_account TEXT,
    assign_mode TEXT NOT NULL DEFAULT 'manual',
    created_ms INTEGER NOT NULL
);

CREATE TABLE nodes (
    id INTEGER PRIMARY KEY,
    cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    api_url TEXT NOT NULL,
    -- The product REST API's bearer token, sealed as accounts.client_secret; NULL: none.
    api_token BLOB,
    token_sealed INTEGER NOT NULL DEFAULT 0,
    -- not_registered, registered, registration_in_progress, deregistration_in_progress,
    -- registration_failed, deregistration_failed
    state TEXT NOT NULL DEFAULT 'not_registered',
    virtual_account TEXT,
    udi_pid TEXT,
    udi_sn TEXT,
    UNIQUE (cluster_id, name)
);

-- Every operation (F-4).
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    -- What the job works on (JSON: account, cluster, virtual account).
    request TEXT NOT NULL,
    entity TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '',
    error_code TEXT,
    error_message TEXT,
    recommended_action TEXT,
    created_ms INTEGER NOT NULL,
    started_ms INTEGER,
    completed_ms INTEGER
);

CREATE TABLE job_nodes (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    node TEXT NOT NULL,
    ok INTEGER NOT NULL,
    code TEXT,
    message TEXT NOT NULL,
    PRIMARY KEY (job_id, node)
);
