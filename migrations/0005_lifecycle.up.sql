-- The order lifecycle: payment, shipment and closing columns on orders, a status whitelist,
-- an append-only history of every step, refunds owed to customers, and after-sales requests.
ALTER TABLE orders
    ADD COLUMN paid_at           timestamptz,
    ADD COLUMN payment_provider  text,
    ADD COLUMN payment_ref       text,
    ADD COLUMN paid_amount       bigint CHECK (paid_amount >= 0),
    ADD COLUMN carrier           text,
    ADD COLUMN tracking_number   text,
    ADD COLUMN shipped_at        timestamptz,
    ADD COLUMN delivered_at      timestamptz,
    ADD COLUMN closed_at         timestamptz,
    ADD CONSTRAINT orders_status_known CHECK (status IN (
        'queued', 'pending_payment', 'paid', 'shipped', 'delivered', 'completed', 'cancelled',
        'refunded'));

-- Staff search and export (newest first, optionally by status) and the payment-deadline sweep.
CREATE INDEX orders_newest ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_status_newest ON orders (status, created_at DESC, order_id DESC);
CREATE INDEX orders_awaiting_payment ON orders (created_at) WHERE status = 'pending_payment';

CREATE TABLE order_history (
    id           bigserial   PRIMARY KEY,
    order_id     text        NOT NULL REFERENCES orders (order_id),
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor        text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
    from_status  text,
    to_status    text        NOT NULL,
    reason       text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    details      jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX order_history_of_order ON order_history (order_id, id);

CREATE FUNCTION order_history_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_history is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER order_history_no_update_or_delete
    BEFORE UPDATE OR DELETE ON order_history
    FOR EACH ROW EXECUTE FUNCTION order_history_is_append_only();
CREATE TRIGGER order_history_no_truncate
    BEFORE TRUNCATE ON order_history
    FOR EACH STATEMENT EXECUTE FUNCTION order_history_is_append_only();

-- The first step of every order (queued in Redis -> persisted by the writer), written once per
-- writer statement rather than once per row, so the batch insert stays one statement's work.
CREATE FUNCTION order_history_record_persisted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_history (order_id, at, actor, from_status, to_status, reason)
    SELECT order_id, persisted_at, 'system', 'queued', status, 'order_persisted'
    FROM persisted_orders;
    RETURN NULL;
END
$$;
CREATE TRIGGER orders_record_persisted
    AFTER INSERT ON orders REFERENCING NEW TABLE AS persisted_orders
    FOR EACH STATEMENT EXECUTE FUNCTION order_history_record_persisted();

-- Money owed back to a customer. `source` names why ('cancel', 'late_payment:<ref>',
-- 'after_sales:<id>'); one refund per order and source, so retries never pay twice.
CREATE TABLE refunds (
    id               bigserial   PRIMARY KEY,
    order_id         text        NOT NULL REFERENCES orders (order_id),
    source           text        NOT NULL,
    amount           bigint      NOT NULL CHECK (amount >= 0),
    currency         text        NOT NULL,
    status           text        NOT NULL DEFAULT 'requested'
                                 CHECK (status IN ('requested', 'completed')),
    provider_ref     text,
    requested_at     timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz,
    attempts         integer     NOT NULL DEFAULT 0,
    completed_at     timestamptz,
    UNIQUE (order_id, source)
);
CREATE INDEX refunds_requested ON refunds (requested_at) WHERE status = 'requested';

CREATE TABLE after_sales_requests (
    id           bigserial   PRIMARY KEY,
    order_id     text        NOT NULL REFERENCES orders (order_id),
    user_id      text        NOT NULL,
    type         text        NOT NULL CHECK (type IN ('return', 'exchange', 'refund')),
    reason       text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    photo_urls   text[]      NOT NULL DEFAULT '{}' CHECK (cardinality(photo_urls) <= 9),
    status       text        NOT NULL DEFAULT 'requested'
                             CHECK (status IN ('requested', 'approved', 'rejected')),
    note         text        CHECK (length(note) <= 500),
    decided_by   text,
    decided_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- At most one open request per order, whatever the application does.
CREATE UNIQUE INDEX after_sales_one_open ON after_sales_requests (order_id)
    WHERE status = 'requested';
CREATE INDEX after_sales_by_status ON after_sales_requests (status, id DESC);
