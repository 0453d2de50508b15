-- Behaviour events recorded off the hot path (buffered in each serving process and copied in
-- batches). Orders and payments are not events: they are read from the orders table.
CREATE TABLE events (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('view', 'cart', 'search')),
    user_id     text,       -- NULL for an anonymous visitor
    product_id  bigint,     -- view, cart
    sku_id      bigint,     -- cart
    query       text        CHECK (length(query) <= 200),  -- search
    results     integer     CHECK (results >= 0)            -- search: how many matched
);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_user ON events (user_id, at) WHERE user_id IS NOT NULL;
