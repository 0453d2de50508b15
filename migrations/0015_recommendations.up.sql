-- What the recommendations refresh reads incrementally: orders by the time they were persisted
-- and cancellations by the time they happened.
CREATE INDEX orders_persisted ON orders (persisted_at, order_id);
CREATE INDEX order_history_cancelled ON order_history (at) WHERE to_status = 'cancelled';
