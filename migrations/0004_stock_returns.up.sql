-- Units that come back to stock (cancel, payment timeout, refund): recorded once per order in
-- the same transaction as the order's status change, then applied to Redis once.
CREATE TABLE stock_returns (
    order_id     text        PRIMARY KEY REFERENCES orders (order_id),
    sale_id      bigint      REFERENCES flash_sales (id),
    user_id      text        NOT NULL,
    reason       text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz
);
CREATE INDEX stock_returns_pending ON stock_returns (recorded_at) WHERE applied_at IS NULL;

CREATE TABLE stock_return_items (
    order_id  text    NOT NULL REFERENCES stock_returns (order_id),
    sku_id    bigint  NOT NULL REFERENCES skus (id),
    qty       integer NOT NULL CHECK (qty > 0),
    PRIMARY KEY (order_id, sku_id)
);
