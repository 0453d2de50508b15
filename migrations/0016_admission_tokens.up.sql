-- Flash sales whose buyers must bring a single-use admission token (anti-bot).
ALTER TABLE flash_sales ADD COLUMN requires_token boolean NOT NULL DEFAULT false;
