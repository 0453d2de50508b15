-- Accounts: users, their refresh tokens (hashed) and shipping addresses.
CREATE TABLE users (
    user_id        text        PRIMARY KEY CHECK (user_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    phone          text        UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    email          text        UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    password_hash  text        NOT NULL,
    role           text        NOT NULL DEFAULT 'customer'
                               CHECK (role IN ('customer', 'member', 'staff', 'admin')),
    nickname       text        CHECK (length(nickname) BETWEEN 1 AND 40),
    avatar_url     text        CHECK (length(avatar_url) <= 500 AND avatar_url LIKE 'https://%'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (phone IS NOT NULL OR email IS NOT NULL)
);

-- Only a SHA-256 of each refresh token is kept; the token itself is never stored.
CREATE TABLE refresh_tokens (
    token_hash      bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id         text        NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text        CHECK (revoked_reason IN
                                       ('rotated', 'logout', 'reuse', 'role_changed')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

CREATE TABLE addresses (
    id           bigserial   PRIMARY KEY,
    user_id      text        NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    recipient    text        NOT NULL CHECK (length(recipient) BETWEEN 1 AND 50),
    phone        text        NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    province     text        NOT NULL CHECK (length(province) BETWEEN 1 AND 50),
    city         text        NOT NULL CHECK (length(city) BETWEEN 1 AND 50),
    district     text        NOT NULL CHECK (length(district) BETWEEN 1 AND 50),
    line         text        NOT NULL CHECK (length(line) BETWEEN 1 AND 200),
    postal_code  text        CHECK (postal_code ~ '^[A-Za-z0-9 -]{3,10}$'),
    is_default   boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX addresses_user_newest ON addresses (user_id, created_at DESC, id DESC);
-- At most one default address per user.
CREATE UNIQUE INDEX addresses_one_default ON addresses (user_id) WHERE is_default;
