-- Hot-SKU sharding: a flash sale's stock split across this many Redis hash tags (seckill/shards.py).
ALTER TABLE flash_sales ADD COLUMN shards smallint NOT NULL DEFAULT 1
    CONSTRAINT flash_sales_shards_range CHECK (shards BETWEEN 1 AND 128);
