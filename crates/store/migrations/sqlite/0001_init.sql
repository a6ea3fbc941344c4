-- smartlic manager schema. Times are Unix milliseconds (UTC); SQL stays portable to PostgreSQL
-- (a sibling migrations/postgres directory will hold the same tables with BIGSERIAL keys).

CREATE TABLE smart_accounts (
    id INTEGER PRIMARY KEY,
    domain TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE virtual_accounts (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES smart_accounts(id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    is_default BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, name)
);

-- Users and API clients: whoever holds a role.
CREATE TABLE principals (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL UNIQUE,
    secret_hash TEXT,
    role TEXT NOT NULL,
    account_id BIGINT REFERENCES smart_accounts(id),
    virtual_account_id BIGINT REFERENCES virtual_accounts(id),
    created_at BIGINT NOT NULL
);

CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    principal_id BIGINT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);

-- Purchase records; quantities valid now are summed per tag at query time (few rows per pool).
CREATE TABLE licenses (
    id INTEGER PRIMARY KEY,
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    tag TEXT NOT NULL,
    sku TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    kind TEXT NOT NULL,
    start_at BIGINT,
    end_at BIGINT,
    subscription_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX licenses_by_pool ON licenses (virtual_account_id, tag);

CREATE TABLE registration_tokens (
    id INTEGER PRIMARY KEY,
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    token TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    max_uses BIGINT,
    uses BIGINT NOT NULL,
    export_controlled BOOLEAN NOT NULL,
    revoked_at BIGINT,
    created_by TEXT NOT NULL
);

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    udi_pid TEXT NOT NULL,
    udi_sn TEXT NOT NULL,
    hostname TEXT NOT NULL,
    registered_at BIGINT NOT NULL,
    last_contact_at BIGINT NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_expires_at BIGINT NOT NULL,
    key_algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    export_controlled BOOLEAN NOT NULL,
    usage_released BOOLEAN NOT NULL,
    UNIQUE (udi_pid, udi_sn)
);
CREATE INDEX instances_by_pool ON instances (virtual_account_id);
CREATE INDEX instances_by_contact ON instances (last_contact_at);
CREATE INDEX instances_by_expiry ON instances (cert_expires_at);

CREATE TABLE instance_usage (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (instance_id, tag)
);

-- Incremental in-use counts per pool and tag, so authorization never recounts instances.
CREATE TABLE pool_usage (
    virtual_account_id BIGINT NOT NULL REFERENCES virtual_accounts(id),
    tag TEXT NOT NULL,
    in_use BIGINT NOT NULL,
    PRIMARY KEY (virtual_account_id, tag)
);

CREATE TABLE nonces (
    scope TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (scope, nonce)
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    account_id BIGINT,
    virtual_account_id BIGINT,
    object TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, id);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    account_id BIGINT NOT NULL,
    virtual_account_id BIGINT,
    object TEXT NOT NULL,
    message TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    UNIQUE (kind, object)
);
