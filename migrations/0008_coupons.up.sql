-- Coupons: templates staff define, instances users hold, and what an order carries.
CREATE TABLE coupon_templates (
    id               bigserial   PRIMARY KEY,
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- threshold: `amount` off when the goods reach `threshold` (满减); percent: `percent_off`
    -- percent off, at most `max_discount`; fixed: `amount` off without a threshold
    kind             text        NOT NULL CHECK (kind IN ('threshold', 'percent', 'fixed')),
    threshold        bigint      NOT NULL DEFAULT 0 CHECK (threshold >= 0),
    amount           bigint      NOT NULL DEFAULT 0 CHECK (amount >= 0),
    percent_off      integer     CHECK (percent_off BETWEEN 1 AND 99),
    max_discount     bigint      CHECK (max_discount > 0),
    -- when users may claim it, and when a claimed coupon may be used
    claim_starts_at  timestamptz NOT NULL,
    claim_ends_at    timestamptz NOT NULL,
    valid_from       timestamptz NOT NULL,
    valid_until      timestamptz NOT NULL,
    total            integer     NOT NULL CHECK (total > 0),
    per_user         integer     NOT NULL CHECK (per_user > 0),
    -- all goods, or only the goods of these categories (with their descendants) or products
    scope            text        NOT NULL DEFAULT 'all'
                                 CHECK (scope IN ('all', 'categories', 'products')),
    scope_ids        bigint[]    NOT NULL DEFAULT '{}',
    -- a stackable coupon combines with other stackable coupons; one that is not stands alone
    stackable        boolean     NOT NULL DEFAULT false,
    status           text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    created_by       text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (claim_starts_at < claim_ends_at AND valid_from < valid_until),
    CHECK ((kind = 'percent') = (percent_off IS NOT NULL)),
    CHECK (kind = 'percent' OR amount > 0),
    CHECK (scope = 'all' OR cardinality(scope_ids) > 0)
);

-- One coupon a user holds. `seq` numbers a user's coupons of one template (1..per_user), so a
-- repeated issue of the same claim inserts nothing. A use is reserved atomically with the
-- order's stock in Redis (lua/reserve.lua); `returned_count` is how many times a use was given
-- back (order cancelled before payment), so the use after the n-th return is use number n + 1.
CREATE TABLE user_coupons (
    id              bigserial   PRIMARY KEY,
    template_id     bigint      NOT NULL REFERENCES coupon_templates (id),
    user_id         text        NOT NULL,
    seq             integer     NOT NULL CHECK (seq > 0),
    source          text        NOT NULL CHECK (source IN ('claim', 'push')),
    state           text        NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'used')),
    order_id        text,
    returned_count  integer     NOT NULL DEFAULT 0 CHECK (returned_count >= 0),
    claimed_at      timestamptz NOT NULL DEFAULT now(),
    used_at         timestamptz,
    UNIQUE (template_id, user_id, seq),
    CHECK ((state = 'used') = (order_id IS NOT NULL))
);
CREATE INDEX user_coupons_wallet ON user_coupons (user_id, id DESC);
CREATE INDEX user_coupons_order ON user_coupons (order_id) WHERE order_id IS NOT NULL;

ALTER TABLE orders
    DROP COLUMN coupon_code,
    ADD COLUMN coupon_ids   bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN points_used  bigint   NOT NULL DEFAULT 0 CHECK (points_used >= 0);
