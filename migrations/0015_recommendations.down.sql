DROP INDEX order_history_cancelled;
DROP INDEX orders_persisted;
