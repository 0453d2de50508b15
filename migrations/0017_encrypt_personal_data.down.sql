-- The database cannot decrypt: once rows are sealed, their plaintext exists only under the key.
-- Going down then would lose every sealed phone number and address, so it is refused; a
-- database holding no sealed value (nothing written since the step up) goes down cleanly.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM users WHERE phone_enc IS NOT NULL)
       OR EXISTS (SELECT 1 FROM addresses WHERE recipient_enc IS NOT NULL OR phone_enc IS NOT NULL
                  OR line_enc IS NOT NULL OR postal_code_enc IS NOT NULL)
       OR EXISTS (SELECT 1 FROM orders WHERE address ? 'sealed') THEN
        RAISE EXCEPTION 'personal data is sealed with MALL_DATA_KEY; migrating below 0017 '
                        'would lose it (restore a backup taken before 0017 instead)';
    END IF;
END
$$;

ALTER TABLE addresses
    DROP CONSTRAINT addresses_recipient_present,
    DROP CONSTRAINT addresses_phone_present,
    DROP CONSTRAINT addresses_line_present,
    ALTER COLUMN recipient SET NOT NULL,
    ALTER COLUMN phone SET NOT NULL,
    ALTER COLUMN line SET NOT NULL,
    DROP COLUMN recipient_enc,
    DROP COLUMN phone_enc,
    DROP COLUMN line_enc,
    DROP COLUMN postal_code_enc;

ALTER TABLE users
    DROP CONSTRAINT users_has_login,
    ADD CONSTRAINT users_check CHECK (phone IS NOT NULL OR email IS NOT NULL),
    DROP CONSTRAINT users_phone_sealed_whole,
    DROP COLUMN phone_enc,
    DROP COLUMN phone_hash;
