-- The catalog: a category tree, richer products and SKUs, an append-only change log, and the
-- indexes behind search.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE categories (
    id          bigserial PRIMARY KEY,
    parent_id   bigint      REFERENCES categories (id),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS DISTINCT FROM id),
    UNIQUE NULLS NOT DISTINCT (parent_id, name)
);
CREATE INDEX categories_parent ON categories (parent_id);

-- Every lower-cased 1- and 2-character substring of a name: trigrams cannot serve queries that
-- short (CJK names are one long "word" to pg_trgm), so this array lets a GIN index narrow them.
CREATE FUNCTION catalog_short_grams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT substr(lower(t), i, n)), '{}')
    FROM generate_series(1, char_length(t)) AS i, (VALUES (1), (2)) AS v(n)
    WHERE i + n - 1 <= char_length(t)
$$;

ALTER TABLE products
    ADD COLUMN description text    NOT NULL DEFAULT '' CHECK (length(description) <= 5000),
    ADD COLUMN category_id bigint  REFERENCES categories (id),
    ADD COLUMN tags        text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN image_urls  text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN published   boolean NOT NULL DEFAULT true,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
    -- lowest SKU price, kept by the triggers below (NULL until the product has a SKU)
    ADD COLUMN min_price   bigint,
    ADD COLUMN name_grams  text[]  GENERATED ALWAYS AS (catalog_short_grams(name)) STORED;

ALTER TABLE skus
    ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object');

CREATE INDEX products_name_trgm ON products USING gin (name gin_trgm_ops);
CREATE INDEX products_name_grams ON products USING gin (name_grams);
CREATE INDEX products_tags ON products USING gin (tags);
CREATE INDEX products_category ON products (category_id);
CREATE INDEX products_listed_price ON products (min_price, id) WHERE published;
CREATE INDEX products_listed_newest ON products (created_at DESC, id DESC) WHERE published;
CREATE INDEX flash_sales_sku ON flash_sales (sku_id);

-- products.min_price follows SKU inserts, price changes and deletes. Only price changes fire
-- the row trigger, so the sold counters that checkout moves never touch the product row.
CREATE FUNCTION catalog_refresh_min_price(target bigint) RETURNS void
LANGUAGE sql AS $$
    UPDATE products SET min_price = (SELECT min(price) FROM skus WHERE product_id = target)
    WHERE id = target
$$;

CREATE FUNCTION catalog_skus_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE products p SET min_price = least(p.min_price, n.lowest)
    FROM (SELECT product_id, min(price) AS lowest FROM new_skus GROUP BY product_id) n
    WHERE p.id = n.product_id;
    RETURN NULL;
END $$;

CREATE FUNCTION catalog_sku_repriced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM catalog_refresh_min_price(OLD.product_id);
    ELSE
        PERFORM catalog_refresh_min_price(NEW.product_id);
        IF OLD.product_id <> NEW.product_id THEN
            PERFORM catalog_refresh_min_price(OLD.product_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER skus_min_price_insert AFTER INSERT ON skus
    REFERENCING NEW TABLE AS new_skus FOR EACH STATEMENT EXECUTE FUNCTION catalog_skus_inserted();
CREATE TRIGGER skus_min_price_update AFTER UPDATE OF price, product_id ON skus
    FOR EACH ROW WHEN (OLD.price IS DISTINCT FROM NEW.price
                       OR OLD.product_id IS DISTINCT FROM NEW.product_id)
    EXECUTE FUNCTION catalog_sku_repriced();
CREATE TRIGGER skus_min_price_delete AFTER DELETE ON skus
    FOR EACH ROW EXECUTE FUNCTION catalog_sku_repriced();

UPDATE products p SET min_price = (SELECT min(price) FROM skus s WHERE s.product_id = p.id);

-- Who changed what on a product and when; rows are never updated or deleted.
CREATE TABLE catalog_changes (
    id          bigserial PRIMARY KEY,
    product_id  bigint      NOT NULL REFERENCES products (id),
    sku_id      bigint      REFERENCES skus (id),
    actor       text        NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    field       text        NOT NULL,
    old_value   jsonb,
    new_value   jsonb
);
CREATE INDEX catalog_changes_product ON catalog_changes (product_id, id);

CREATE FUNCTION catalog_changes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'catalog_changes is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER catalog_changes_no_update BEFORE UPDATE OR DELETE ON catalog_changes
    FOR EACH ROW EXECUTE FUNCTION catalog_changes_append_only();
CREATE TRIGGER catalog_changes_no_truncate BEFORE TRUNCATE ON catalog_changes
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_changes_append_only();
