DROP INDEX skus_available;
DROP INDEX events_kind_at;
DROP INDEX after_sales_of_order;
DROP INDEX orders_with_coupons;
DROP INDEX orders_paid_at;
