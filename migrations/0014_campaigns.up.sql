-- Campaign management of flash sales: closing a sale (ended early by staff, or settled after
-- its end) gives the units it did not sell back to the SKU, counted in returned_to_sku so the
-- move happens once; warmed_at records when the sale was last loaded into Redis.
ALTER TABLE flash_sales
    ADD COLUMN closed_at        timestamptz,
    ADD COLUMN returned_to_sku  bigint      NOT NULL DEFAULT 0 CHECK (returned_to_sku >= 0),
    ADD COLUMN warmed_at        timestamptz,
    ADD COLUMN updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Units given back to the SKU can never have been sold: the last line against selling a
    -- unit twice, once in the sale's queue and once through the SKU.
    ADD CONSTRAINT flash_sales_returned_unsold CHECK (sold + returned_to_sku <= stock);

CREATE INDEX flash_sales_starts ON flash_sales (starts_at, id);
CREATE INDEX flash_sales_closed ON flash_sales (closed_at) WHERE closed_at IS NOT NULL;
