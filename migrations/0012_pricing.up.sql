-- Pricing: a member-only price per SKU, and timed price lists that lower the price of some
-- SKUs between two instants. The price a buyer pays is the lowest of the SKU's list price, the
-- price of every price list in effect now (`status = 'active' AND starts_at <= now() <
-- ends_at`) and, for members, the member price.
ALTER TABLE skus
    ADD COLUMN member_price bigint CHECK (member_price > 0 AND member_price <= price);

-- status: 'active' until staff end the list early ('ended'); a list is in effect only between
-- starts_at and ends_at, so one that simply ran out keeps status 'active'.
CREATE TABLE price_lists (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,  -- when staff ended it early
    CHECK (ends_at > starts_at),
    CHECK ((status = 'ended') = (ended_at IS NOT NULL))
);
-- Lists that can still be or become in effect, by end: the next boundary of a product's price.
CREATE INDEX price_lists_open ON price_lists (ends_at, starts_at) WHERE status = 'active';

CREATE TABLE price_list_items (
    price_list_id  bigint NOT NULL REFERENCES price_lists (id) ON DELETE CASCADE,
    sku_id         bigint NOT NULL REFERENCES skus (id),
    price          bigint NOT NULL CHECK (price > 0),
    PRIMARY KEY (price_list_id, sku_id)
);
-- "The price lists of these SKUs": probed once per SKU, the price read from the index.
CREATE INDEX price_list_items_sku ON price_list_items (sku_id, price_list_id) INCLUDE (price);
