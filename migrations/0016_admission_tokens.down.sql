ALTER TABLE flash_sales DROP COLUMN requires_token;
