DROP TABLE payment_events;
DROP FUNCTION payment_events_are_append_only();
DROP TABLE payments;
