-- A customer's after-sales requests, newest first (GET /api/v1/me/after-sales).
CREATE INDEX after_sales_of_user ON after_sales_requests (user_id, id DESC);
