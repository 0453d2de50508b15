ALTER TABLE orders DROP COLUMN coupon_ids, DROP COLUMN points_used, ADD COLUMN coupon_code text;
DROP TABLE user_coupons;
DROP TABLE coupon_templates;
