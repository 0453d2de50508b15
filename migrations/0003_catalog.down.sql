DROP TABLE catalog_changes;
DROP FUNCTION catalog_changes_append_only();

DROP TRIGGER skus_min_price_insert ON skus;
DROP TRIGGER skus_min_price_update ON skus;
DROP TRIGGER skus_min_price_delete ON skus;
DROP FUNCTION catalog_skus_inserted();
DROP FUNCTION catalog_sku_repriced();
DROP FUNCTION catalog_refresh_min_price(bigint);

DROP INDEX flash_sales_sku;
DROP INDEX products_listed_newest;
DROP INDEX products_listed_price;
DROP INDEX products_category;
DROP INDEX products_tags;
DROP INDEX products_name_grams;
DROP INDEX products_name_trgm;
ALTER TABLE skus DROP COLUMN attributes;
ALTER TABLE products
    DROP COLUMN name_grams,
    DROP COLUMN min_price,
    DROP COLUMN updated_at,
    DROP COLUMN published,
    DROP COLUMN image_urls,
    DROP COLUMN tags,
    DROP COLUMN category_id,
    DROP COLUMN description;
DROP FUNCTION catalog_short_grams(text);
DROP TABLE categories;

-- Only when nothing else in the database still uses it.
DO $$
BEGIN
    DROP EXTENSION IF EXISTS pg_trgm;
EXCEPTION WHEN dependent_objects_still_exist THEN
    NULL;
END $$;
