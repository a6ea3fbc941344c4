-- The subscription mapper (seed 002, "Subscription Mapper"; SPEC F-5): each subscription id the
-- sync found, mapped to one customer with a license model. One row per subscription: mapping it
-- again replaces the row.
CREATE TABLE subscription_map (
    subscription_id TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- perpetual, named_user, named_user_perpetual, enterprise_agreement
    license_model TEXT NOT NULL
);
