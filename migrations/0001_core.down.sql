DROP TABLE order_items;
DROP TABLE orders;
DROP TABLE flash_sales;
DROP TABLE skus;
DROP TABLE products;
