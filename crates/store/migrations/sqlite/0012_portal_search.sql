-- Substring search for the portal (issue 14: every page under 50 ms with 100,000 instances):
-- FTS5 indexes with the trigram tokenizer, so that a search of 3 characters or more reads the
-- rows holding the text's trigrams instead of every row of the pool or of the event log.
-- The indexes are contentless: they hold trigrams only; the rows are read from their tables.
-- Triggers keep them in step with every change, in the change's own transaction.

-- Instances have a text key, and their implicit rowid may change when the database is copied
-- (`VACUUM INTO`, the backups): each instance gets a stable number of its own here, the rowid
-- of its row in the index.
CREATE TABLE instance_search_keys (
    n INTEGER PRIMARY KEY,
    instance_id TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE instance_search USING fts5 (
    id, hostname, udi_pid, udi_sn, content = '', tokenize = 'trigram'
);

CREATE TRIGGER instance_search_insert AFTER INSERT ON instances BEGIN
    INSERT INTO instance_search_keys (instance_id) VALUES (new.id);
    INSERT INTO instance_search (rowid, id, hostname, udi_pid, udi_sn)
        VALUES (last_insert_rowid(), new.id, new.hostname, new.udi_pid, new.udi_sn);
END;

-- A contentless index forgets a row given the values it indexed, which the trigger has.
CREATE TRIGGER instance_search_delete AFTER DELETE ON instances BEGIN
    INSERT INTO instance_search (instance_search, rowid, id, hostname, udi_pid, udi_sn)
        SELECT 'delete', n, old.id, old.hostname, old.udi_pid, old.udi_sn
        FROM instance_search_keys WHERE instance_id = old.id;
    DELETE FROM instance_search_keys WHERE instance_id = old.id;
END;

-- Every device contact rewrites the hostname, mostly unchanged: only a real change touches
-- the index.
CREATE TRIGGER instance_search_update AFTER UPDATE OF id, hostname, udi_pid, udi_sn ON instances
WHEN old.id IS NOT new.id OR old.hostname IS NOT new.hostname
  OR old.udi_pid IS NOT new.udi_pid OR old.udi_sn IS NOT new.udi_sn BEGIN
    INSERT INTO instance_search (instance_search, rowid, id, hostname, udi_pid, udi_sn)
        SELECT 'delete', n, old.id, old.hostname, old.udi_pid, old.udi_sn
        FROM instance_search_keys WHERE instance_id = old.id;
    UPDATE instance_search_keys SET instance_id = new.id WHERE instance_id = old.id;
    INSERT INTO instance_search (rowid, id, hostname, udi_pid, udi_sn)
        SELECT n, new.id, new.hostname, new.udi_pid, new.udi_sn
        FROM instance_search_keys WHERE instance_id = new.id;
END;

INSERT INTO instance_search_keys (instance_id) SELECT id FROM instances ORDER BY rowid;
INSERT INTO instance_search (rowid, id, hostname, udi_pid, udi_sn)
    SELECT k.n, i.id, i.hostname, i.udi_pid, i.udi_sn
    FROM instance_search_keys k JOIN instances i ON i.id = k.instance_id;

-- Events have a stable integer key: it is the rowid of their row in the index.
CREATE VIRTUAL TABLE event_search USING fts5 (
    object, detail, actor, content = '', tokenize = 'trigram'
);

CREATE TRIGGER event_search_insert AFTER INSERT ON events BEGIN
    INSERT INTO event_search (rowid, object, detail, actor) VALUES (new.id, new.object, new.detail, new.actor);
END;

CREATE TRIGGER event_search_delete AFTER DELETE ON events BEGIN
    INSERT INTO event_search (event_search, rowid, object, detail, actor)
        VALUES ('delete', old.id, old.object, old.detail, old.actor);
END;

CREATE TRIGGER event_search_update AFTER UPDATE OF id, object, detail, actor ON events BEGIN
    INSERT INTO event_search (event_search, rowid, object, detail, actor)
        VALUES ('delete', old.id, old.object, old.detail, old.actor);
    INSERT INTO event_search (rowid, object, detail, actor) VALUES (new.id, new.object, new.detail, new.actor);
END;

INSERT INTO event_search (rowid, object, detail, actor) SELECT id, object, detail, actor FROM events;

-- The Event Log lists an account's events newest first, by time: walked backwards, these
-- indexes (the rowid, the event's id, ends each entry) answer a page with or without a kind,
-- a date range or both, stopping at the page's last event. The list of kinds reads the second.
CREATE INDEX events_by_account_at ON events (account_id, at);
DROP INDEX events_by_account_kind;
CREATE INDEX events_by_account_kind ON events (account_id, kind, at);

-- Usage history is pruned by age (see the jobs): by day across pools.
CREATE INDEX usage_history_by_day ON usage_history (day);
