-- The flash-sale core: a minimal catalog, flash sales, and the orders the writer persists.
CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- stock: units allotted to regular sale (a flash sale moves its units out of here);
-- sold: units of that stock sold through regular checkout.
CREATE TABLE skus (
    id          bigserial PRIMARY KEY,
    product_id  bigint      NOT NULL REFERENCES products (id),
    price       bigint      NOT NULL CHECK (price >= 0),
    stock       bigint      NOT NULL CHECK (stock >= 0),
    sold        bigint      NOT NULL DEFAULT 0 CHECK (sold >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (sold <= stock)
);
CREATE INDEX skus_product ON skus (product_id);

CREATE TABLE flash_sales (
    id              bigserial PRIMARY KEY,
    sku_id          bigint      NOT NULL REFERENCES skus (id),
    price           bigint      NOT NULL CHECK (price >= 0),
    stock           bigint      NOT NULL CHECK (stock > 0),
    sold            bigint      NOT NULL DEFAULT 0 CHECK (sold >= 0),
    per_user_limit  integer     NOT NULL CHECK (per_user_limit >= 1),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    CHECK (sold <= stock)
);

CREATE TABLE orders (
    order_id      text        PRIMARY KEY,
    user_id       text        NOT NULL,
    sale_id       bigint      REFERENCES flash_sales (id),
    status        text        NOT NULL,
    total         bigint      NOT NULL CHECK (total >= 0),
    currency      text        NOT NULL DEFAULT 'CNY',
    created_at    timestamptz NOT NULL,
    persisted_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_user_newest ON orders (user_id, created_at DESC, order_id DESC);
CREATE INDEX orders_sale ON orders (sale_id);

CREATE TABLE order_items (
    order_id  text    NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    sku_id    bigint  NOT NULL REFERENCES skus (id),
    qty       integer NOT NULL CHECK (qty > 0),
    price     bigint  NOT NULL CHECK (price >= 0),
    PRIMARY KEY (order_id, sku_id)
);
