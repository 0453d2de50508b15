DROP TABLE price_list_items;
DROP TABLE price_lists;
ALTER TABLE skus DROP COLUMN member_price;
