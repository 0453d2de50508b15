-- Membership: an append-only points ledger, the balance it sums to, levels by spending and
-- daily check-ins.
CREATE TABLE members (
    user_id     text        PRIMARY KEY,
    points      bigint      NOT NULL DEFAULT 0,  -- always the sum of the user's ledger
    spent       bigint      NOT NULL DEFAULT 0 CHECK (spent >= 0),  -- completed, net of refunds
    redeemed    bigint      NOT NULL DEFAULT 0,  -- points ever spent at checkout (reason redeem)
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- reason: earn (a completed order), earn_reversal (that order refunded), redeem (points spent
-- as part payment of an order), redeem_reversal (that order cancelled or refunded), checkin,
-- adjust (staff). An order moves each reason at most once.
CREATE TABLE points_ledger (
    id          bigserial   PRIMARY KEY,
    user_id     text        NOT NULL,
    delta       bigint      NOT NULL CHECK (delta <> 0),
    reason      text        NOT NULL CHECK (reason IN ('earn', 'earn_reversal', 'redeem',
                                                       'redeem_reversal', 'checkin', 'adjust')),
    order_id    text,
    note        text        CHECK (length(note) <= 200),
    actor       text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((order_id IS NULL) = (reason IN ('checkin', 'adjust')))
);
CREATE UNIQUE INDEX points_ledger_once_per_order ON points_ledger (order_id, reason)
    WHERE order_id IS NOT NULL;
CREATE INDEX points_ledger_user ON points_ledger (user_id, id DESC);

CREATE FUNCTION points_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'points_ledger is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER points_ledger_no_update BEFORE UPDATE OR DELETE ON points_ledger
    FOR EACH ROW EXECUTE FUNCTION points_ledger_append_only();
CREATE TRIGGER points_ledger_no_truncate BEFORE TRUNCATE ON points_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION points_ledger_append_only();

-- The balance moves with every ledger row, in the same transaction. Members are locked in
-- user_id order, so two statements writing rows of the same users cannot deadlock.
CREATE FUNCTION points_ledger_to_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO members AS m (user_id, points, redeemed)
    SELECT user_id, sum(delta), coalesce(sum(-delta) FILTER (WHERE reason = 'redeem'), 0)
    FROM new_rows GROUP BY user_id ORDER BY user_id
    ON CONFLICT (user_id) DO UPDATE
        SET points = m.points + excluded.points, redeemed = m.redeemed + excluded.redeemed,
            updated_at = now();
    RETURN NULL;
END $$;
CREATE TRIGGER points_ledger_balance AFTER INSERT ON points_ledger
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION points_ledger_to_balance();

-- Levels by spending (fen). Level 0 is every customer; staff edit the thresholds.
CREATE TABLE member_levels (
    level      integer PRIMARY KEY CHECK (level >= 0),
    name       text    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 40),
    min_spent  bigint  NOT NULL UNIQUE CHECK (min_spent >= 0),
    CHECK ((level = 0) = (min_spent = 0))
);
INSERT INTO member_levels (level, name, min_spent) VALUES
    (0, 'regular', 0), (1, 'silver', 100000), (2, 'gold', 500000), (3, 'platinum', 2000000);

CREATE TABLE checkins (
    user_id  text    NOT NULL,
    day      date    NOT NULL,
    streak   integer NOT NULL CHECK (streak > 0),
    points   integer NOT NULL CHECK (points > 0),
    PRIMARY KEY (user_id, day)
);

-- The cash of each completed order counted into members.spent, once, and taken back once when
-- the order is refunded. It makes `spent` idempotent by order even when an order earns no
-- points (under one yuan of cash), which the ledger alone could not record.
CREATE TABLE member_spending (
    order_id     text        PRIMARY KEY,
    user_id      text        NOT NULL,
    amount       bigint      NOT NULL CHECK (amount >= 0),
    counted_at   timestamptz NOT NULL DEFAULT now(),
    refunded_at  timestamptz
);
