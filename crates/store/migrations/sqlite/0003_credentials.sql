-- Tenant boundaries and credential life cycle (issue 10).

-- Names of users and API clients are unique per smart account; what a principal logs in with
-- (`login`) is unique across the manager: an API client's generated client ID, a user's
-- `name@domain`, an account-less operator's bare name. SQLite cannot drop the old global
-- UNIQUE (name), so the table is rebuilt; access_tokens, which references it, with it.
CREATE TABLE principals_v3 (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    login TEXT NOT NULL UNIQUE,
    secret_hash TEXT,
    role TEXT NOT NULL,
    account_id BIGINT REFERENCES smart_accounts(id),
    virtual_account_id BIGINT REFERENCES virtual_accounts(id),
    created_at BIGINT NOT NULL,
    -- A disabled principal keeps its record but can neither log in nor use a token.
    disabled_at BIGINT
);
-- Existing API clients keep their name as client ID, so their scripts keep working.
INSERT INTO principals_v3 (id, kind, name, login, secret_hash, role, account_id, virtual_account_id, created_at)
    SELECT p.id, p.kind, p.name,
           CASE WHEN p.kind = 'user' AND p.account_id IS NOT NULL
                THEN p.name || '@' || (SELECT a.domain FROM smart_accounts a WHERE a.id = p.account_id)
                ELSE p.name END,
           p.secret_hash, p.role, p.account_id, p.virtual_account_id, p.created_at
    FROM principals p;
CREATE UNIQUE INDEX principals_name_per_account ON principals_v3 (COALESCE(account_id, 0), name);

-- Live access tokens get an id and a displayable prefix, so they can be listed and revoked.
CREATE TABLE access_tokens_v3 (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    principal_id BIGINT NOT NULL REFERENCES principals_v3(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO access_tokens_v3 (token_hash, prefix, principal_id, created_at, expires_at)
    SELECT token_hash, '', principal_id, 0, expires_at FROM access_tokens;
CREATE INDEX access_tokens_by_principal ON access_tokens_v3 (principal_id);

DROP TABLE access_tokens;
DROP TABLE principals;
ALTER TABLE principals_v3 RENAME TO principals;
ALTER TABLE access_tokens_v3 RENAME TO access_tokens;

-- Registration tokens are kept as hashes only: the text is shown once at creation, listings
-- show its first 12 characters (REGISTRATION_TOKEN_PREFIX in the store).
ALTER TABLE registration_tokens RENAME COLUMN token TO prefix;
UPDATE registration_tokens SET prefix = substr(prefix, 1, 12);
