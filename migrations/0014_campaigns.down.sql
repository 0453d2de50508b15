DROP INDEX flash_sales_closed;
DROP INDEX flash_sales_starts;
ALTER TABLE flash_sales
    DROP CONSTRAINT flash_sales_returned_unsold,
    DROP COLUMN updated_at,
    DROP COLUMN warmed_at,
    DROP COLUMN returned_to_sku,
    DROP COLUMN closed_at;
