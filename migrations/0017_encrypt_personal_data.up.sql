-- Personal data at rest: phone numbers and the identifying parts of addresses are sealed by the
-- application (AES-256-GCM, see mall/crypto.py); the database never sees the key, so this step
-- only adds the columns. `mall.crypto_backfill.backfill`, run by `mall migrate` right after the
-- SQL steps, seals the rows written before it and clears their plaintext columns, which stay
-- (nullable, no longer written) until a later release drops them.

-- users: phone_hash is the blind index (HMAC-SHA256) used for log-in look-ups and uniqueness;
-- phone_enc the sealed number, shown back to its owner and to staff.
ALTER TABLE users
    ADD COLUMN phone_hash bytea CONSTRAINT users_phone_hash_key UNIQUE
                                CHECK (length(phone_hash) = 32),
    ADD COLUMN phone_enc  bytea CHECK (length(phone_enc) >= 30),
    ADD CONSTRAINT users_phone_sealed_whole CHECK ((phone_hash IS NULL) = (phone_enc IS NULL)),
    DROP CONSTRAINT users_check,
    ADD CONSTRAINT users_has_login CHECK (phone_hash IS NOT NULL OR phone IS NOT NULL
                                          OR email IS NOT NULL);

-- addresses: recipient, phone, line and postal code sealed; province, city and district stay
-- readable (delivery-area reports, shipping zones) and name no one by themselves.
ALTER TABLE addresses
    ADD COLUMN recipient_enc   bytea CHECK (length(recipient_enc) >= 30),
    ADD COLUMN phone_enc       bytea CHECK (length(phone_enc) >= 30),
    ADD COLUMN line_enc        bytea CHECK (length(line_enc) >= 30),
    ADD COLUMN postal_code_enc bytea CHECK (length(postal_code_enc) >= 30),
    ALTER COLUMN recipient DROP NOT NULL,
    ALTER COLUMN phone DROP NOT NULL,
    ALTER COLUMN line DROP NOT NULL,
    ADD CONSTRAINT addresses_recipient_present CHECK (recipient_enc IS NOT NULL
                                                      OR recipient IS NOT NULL),
    ADD CONSTRAINT addresses_phone_present CHECK (phone_enc IS NOT NULL OR phone IS NOT NULL),
    ADD CONSTRAINT addresses_line_present CHECK (line_enc IS NOT NULL OR line IS NOT NULL);

-- orders.address keeps its jsonb column: new orders carry {province, city, district, sealed}.
