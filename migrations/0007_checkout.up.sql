-- Regular checkout: what an order carries beyond its items.
ALTER TABLE orders
    ADD COLUMN shipping_fee bigint NOT NULL DEFAULT 0 CHECK (shipping_fee >= 0),
    ADD COLUMN discount     bigint NOT NULL DEFAULT 0 CHECK (discount >= 0),
    ADD COLUMN delivery     text CHECK (delivery IN ('standard', 'express', 'pickup')),
    ADD COLUMN address      jsonb,
    ADD COLUMN coupon_code  text;
