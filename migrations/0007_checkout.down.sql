ALTER TABLE orders
    DROP COLUMN shipping_fee,
    DROP COLUMN discount,
    DROP COLUMN delivery,
    DROP COLUMN address,
    DROP COLUMN coupon_code;
