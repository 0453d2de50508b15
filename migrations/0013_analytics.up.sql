-- Indexes behind the staff reports, so each reads only its period (or its few rows). The
-- flash-sale report reads sales by start through flash_sales_starts (0014).
-- Sales and the funnel's paid step: orders by the time they were paid.
CREATE INDEX orders_paid_at ON orders (paid_at) WHERE paid_at IS NOT NULL;
-- The coupon report: orders that carry coupons, by the time they were placed.
CREATE INDEX orders_with_coupons ON orders (created_at) WHERE coupon_ids <> '{}';
-- The after-sales report joins requests to the orders of the period.
CREATE INDEX after_sales_of_order ON after_sales_requests (order_id);
-- The funnel and search reports read one kind of event over a period.
CREATE INDEX events_kind_at ON events (kind, at) INCLUDE (user_id);
-- The inventory report: SKUs with few units left.
CREATE INDEX skus_available ON skus ((stock - sold));
