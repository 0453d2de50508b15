DROP TABLE stock_return_items;
DROP TABLE stock_returns;
