-- PAK conversion (V-2): PAKs imported from an ordering system, their SKU lines with what was
-- converted of each, and the conversion history. The licenses a conversion deposits are ordinary
-- purchase records whose SKU carries the marker `PAK:<pak>:<sku>`.
CREATE TABLE paks (
    id INTEGER PRIMARY KEY,
    pak TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES smart_accounts(id),
    -- The order's virtual account; no foreign key: the PAK outlives a pool deleted later.
    virtual_account_id BIGINT,
    order_number TEXT NOT NULL,
    order_date TEXT NOT NULL,
    partial_fulfillment BOOLEAN NOT NULL,
    imported_at BIGINT NOT NULL
);
CREATE INDEX paks_by_account ON paks (account_id, pak);

CREATE TABLE pak_lines (
    pak_id BIGINT NOT NULL REFERENCES paks(id),
    sku TEXT NOT NULL,
    tag TEXT NOT NULL,
    -- Licenses of `tag` per unit of the SKU (the catalogue's mapping at import).
    units BIGINT NOT NULL CHECK (units >= 1),
    quantity BIGINT NOT NULL CHECK (quantity >= 1),
    converted BIGINT NOT NULL DEFAULT 0 CHECK (converted >= 0 AND converted <= quantity),
    PRIMARY KEY (pak_id, sku)
);

CREATE TABLE pak_conversions (
    id INTEGER PRIMARY KEY,
    pak_id BIGINT NOT NULL REFERENCES paks(id),
    account_id BIGINT NOT NULL,
    -- No foreign key: the history outlives the pool.
    virtual_account_id BIGINT NOT NULL,
    actor TEXT NOT NULL,
    converted_at BIGINT NOT NULL
);
CREATE INDEX pak_conversions_by_account ON pak_conversions (account_id, id);

CREATE TABLE pak_conversion_lines (
    conversion_id BIGINT NOT NULL REFERENCES pak_conversions(id),
    sku TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    tag TEXT NOT NULL,
    licenses BIGINT NOT NULL,
    PRIMARY KEY (conversion_id, sku)
);
