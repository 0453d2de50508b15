-- Payments: one row per attempt to pay an order with one provider, and an append-only record
-- of every callback a provider (or anyone claiming to be one) sent.
CREATE TABLE payments (
    id               text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 32),
    order_id         text        NOT NULL REFERENCES orders (order_id),
    user_id          text        NOT NULL,
    provider         text        NOT NULL
                                 CHECK (provider IN ('sandbox', 'cod', 'bank_transfer', 'alipay',
                                                     'wechat')),
    amount           bigint      NOT NULL CHECK (amount >= 0),
    currency         text        NOT NULL DEFAULT 'CNY',
    status           text        NOT NULL DEFAULT 'created'
                                 CHECK (status IN ('created', 'succeeded', 'failed', 'refunded')),
    -- The provider's own id of the money movement (trade number, bank reference).
    provider_ref     text,
    -- How the customer pays (pay_url, qr_payload, instructions), kept so a retry shows the same.
    intent           jsonb,
    confirmed_by     text,
    refunded_amount  bigint      NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_ref),
    CHECK (refunded_amount <= amount)
);
CREATE INDEX payments_of_order ON payments (order_id, created_at);
-- One open attempt per order and provider: asking again for the same method returns it.
CREATE UNIQUE INDEX payments_one_open ON payments (order_id, provider) WHERE status = 'created';

CREATE TABLE payment_events (
    id               bigserial   PRIMARY KEY,
    provider         text        NOT NULL,
    -- The provider's id of the event; NULL when the callback could not be trusted or read, so
    -- a forged callback can never claim an id and block the genuine event that carries it.
    event_id         text,
    payment_id       text,
    raw_body         bytea       NOT NULL,
    signature_valid  boolean     NOT NULL,
    outcome          text        NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, event_id),
    CHECK (signature_valid OR event_id IS NULL)
);
CREATE INDEX payment_events_of_payment ON payment_events (payment_id, id);

CREATE FUNCTION payment_events_are_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payment_events is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER payment_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON payment_events
    FOR EACH ROW EXECUTE FUNCTION payment_events_are_append_only();
CREATE TRIGGER payment_events_no_truncate
    BEFORE TRUNCATE ON payment_events
    FOR EACH STATEMENT EXECUTE FUNCTION payment_events_are_append_only();
