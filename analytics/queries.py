"""The reports' SQL, as named constants with `$n` parameters.

Revenue is money kept: `paid_amount` of orders that are paid, shipped, delivered or completed,
minus their completed refunds (a refunded or cancelled order keeps nothing). The period is
`$1` (inclusive) to `$2` (exclusive) everywhere. Dates are cut in Asia/Shanghai.
"""

from typing import Final

KEPT_STATUSES: Final = ("paid", "shipped", "delivered", "completed")
KEPT = "o.status IN ('paid', 'shipped', 'delivered', 'completed')"
NET_REVENUE = """(coalesce(o.paid_amount, o.total) - coalesce((
    SELECT sum(r.amount) FROM refunds r WHERE r.order_id = o.order_id AND r.status = 'completed'
), 0))"""
# $3: day, week, month or all (one bucket: the start of the period).
PERIOD_OF = ("CASE WHEN $3::text = 'all' THEN ($1::timestamptz AT TIME ZONE 'Asia/Shanghai')::date"
             " ELSE date_trunc($3::text, {col} AT TIME ZONE 'Asia/Shanghai')::date END")

# Sales by the time of payment (orders_paid_at).
SALES = f"""
SELECT period, count(*) AS orders, sum(units)::bigint AS units, sum(net)::bigint AS revenue
FROM (
    SELECT {PERIOD_OF.format(col="o.paid_at")} AS period, {NET_REVENUE} AS net,
           (SELECT sum(i.qty) FROM order_items i WHERE i.order_id = o.order_id) AS units
    FROM orders o
    WHERE o.paid_at >= $1 AND o.paid_at < $2 AND {KEPT}
) paid
GROUP BY period ORDER BY period
"""

# Per category or product: the value of the lines (qty x price), before order discounts,
# shipping and refunds, which belong to the whole order rather than to a line.
SALES_BY = """
SELECT {period} AS period, {key} AS key, {name} AS name,
       count(DISTINCT o.order_id) AS orders, sum(i.qty)::bigint AS units,
       sum(i.qty * i.price)::bigint AS revenue
FROM orders o
JOIN order_items i ON i.order_id = o.order_id
JOIN skus s ON s.id = i.sku_id
JOIN products p ON p.id = s.product_id
LEFT JOIN categories c ON c.id = p.category_id
WHERE o.paid_at >= $1 AND o.paid_at < $2 AND {kept}
GROUP BY 1, 2, 3
ORDER BY 1, revenue DESC, 2
LIMIT $4
"""
SALES_BY_CATEGORY = SALES_BY.format(period=PERIOD_OF.format(col="o.paid_at"),
                                    key="p.category_id", name="c.name", kept=KEPT)
SALES_BY_PRODUCT = SALES_BY.format(period=PERIOD_OF.format(col="o.paid_at"),
                                   key="p.id", name="p.name", kept=KEPT)

# Flash sales starting in the period. Sold out: when the accepted units (orders in acceptance
# order) first reached the sale's stock; units returned later do not undo that moment.
FLASH_SALES = f"""
SELECT f.id AS sale_id, f.sku_id, p.name AS product_name, f.price, f.stock, f.sold,
       f.starts_at, f.ends_at, a.accepted_orders, a.paid_orders, a.revenue, a.buyers,
       (SELECT min(created_at) FROM (
            SELECT o.created_at,
                   sum(i.qty) OVER (ORDER BY o.created_at, o.order_id) AS accepted_units
            FROM orders o JOIN order_items i ON i.order_id = o.order_id
            WHERE o.sale_id = f.id
        ) running WHERE accepted_units >= f.stock) AS sold_out_at
FROM flash_sales f
JOIN skus s ON s.id = f.sku_id
JOIN products p ON p.id = s.product_id
CROSS JOIN LATERAL (
    SELECT count(*) AS accepted_orders,
           count(*) FILTER (WHERE o.paid_at IS NOT NULL) AS paid_orders,
           coalesce(sum({NET_REVENUE}) FILTER (WHERE {KEPT}), 0)::bigint AS revenue,
           count(DISTINCT o.user_id) AS buyers
    FROM orders o WHERE o.sale_id = f.id
) a
WHERE f.starts_at >= $1 AND f.starts_at < $2
ORDER BY f.starts_at, f.id
LIMIT $3
"""

# Coupons used on orders placed in the period (a cancelled order gave its coupons back). An
# order's discount is shared evenly by its coupons, the remainder going to the first.
COUPONS = f"""
WITH uses AS (
    SELECT o.order_id, u.template_id,
           o.discount / cardinality(o.coupon_ids)
               + CASE WHEN c.pos = 1 THEN o.discount % cardinality(o.coupon_ids) ELSE 0 END
               AS share,
           CASE WHEN {KEPT} THEN {NET_REVENUE} ELSE 0 END AS net
    FROM orders o
    CROSS JOIN LATERAL unnest(o.coupon_ids) WITH ORDINALITY AS c(id, pos)
    JOIN user_coupons u ON u.id = c.id
    WHERE o.created_at >= $1 AND o.created_at < $2 AND o.coupon_ids <> '{{}}'
      AND o.status <> 'cancelled'
), per_order AS (
    SELECT template_id, order_id, count(*) AS used, sum(share) AS discount, max(net) AS net
    FROM uses GROUP BY template_id, order_id
)
SELECT t.id AS template_id, t.name, t.kind, sum(po.used)::bigint AS used,
       sum(po.discount)::bigint AS discount, count(*) AS orders, sum(po.net)::bigint AS revenue
FROM per_order po JOIN coupon_templates t ON t.id = po.template_id
GROUP BY t.id ORDER BY used DESC, t.id
LIMIT $3
"""

# Distinct signed-in users per step; each step keeps only the users of the step before.
FUNNEL = """
WITH viewers AS (
    SELECT DISTINCT user_id FROM events
    WHERE kind = 'view' AND at >= $1 AND at < $2 AND user_id IS NOT NULL
), carters AS (
    SELECT DISTINCT e.user_id FROM events e JOIN viewers v ON v.user_id = e.user_id
    WHERE e.kind = 'cart' AND e.at >= $1 AND e.at < $2
), buyers AS (
    SELECT DISTINCT o.user_id FROM orders o JOIN carters c ON c.user_id = o.user_id
    WHERE o.created_at >= $1 AND o.created_at < $2
), payers AS (
    SELECT DISTINCT o.user_id FROM orders o JOIN buyers b ON b.user_id = o.user_id
    WHERE o.paid_at >= $1 AND o.paid_at < $2
)
SELECT (SELECT count(*) FROM viewers) AS view, (SELECT count(*) FROM carters) AS cart,
       (SELECT count(*) FROM buyers) AS "order", (SELECT count(*) FROM payers) AS paid
"""

# Search terms, trimmed and lower-cased. $3: how many of each list.
SEARCHES = """
WITH terms AS (
    SELECT lower(btrim(query)) AS term, count(*) AS searches,
           count(*) FILTER (WHERE results = 0) AS no_result_searches
    FROM events
    WHERE kind = 'search' AND at >= $1 AND at < $2 AND query IS NOT NULL
    GROUP BY 1
)
(SELECT 'top' AS list, term, searches, no_result_searches FROM terms
 ORDER BY searches DESC, term LIMIT $3)
UNION ALL
(SELECT 'no_results' AS list, term, searches, no_result_searches FROM terms
 WHERE no_result_searches > 0 ORDER BY no_result_searches DESC, term LIMIT $3)
"""

# A snapshot, not a period. $1: threshold, $2: category (NULL: all), $3: row limit. Flash-sale
# units are moved out of skus.stock when a sale is created, so `available` is what regular
# checkout may still sell; `flash_sale_reserved` is what running or coming sales still hold.
INVENTORY = """
SELECT s.id AS sku_id, s.product_id, p.name AS product_name, p.published, s.stock, s.sold,
       s.stock - s.sold AS available,
       coalesce((SELECT sum(f.stock - f.sold) FROM flash_sales f
                 WHERE f.sku_id = s.id AND f.ends_at > now()), 0)::bigint AS flash_sale_reserved
FROM skus s JOIN products p ON p.id = s.product_id
WHERE s.stock - s.sold <= $1 AND ($2::bigint IS NULL OR p.category_id = $2)
ORDER BY s.stock - s.sold, s.id
LIMIT $3
"""

# Orders placed in the period, by status and time since their last step.
LOGISTICS = """
SELECT status, CASE
        WHEN age < interval '1 hour' THEN '<1h'
        WHEN age < interval '24 hours' THEN '1-24h'
        WHEN age < interval '3 days' THEN '1-3d'
        ELSE '>3d' END AS age,
       count(*) AS orders
FROM (
    SELECT o.status,
           now() - greatest(o.created_at, o.paid_at, o.shipped_at, o.delivered_at, o.closed_at)
               AS age
    FROM orders o WHERE o.created_at >= $1 AND o.created_at < $2
) aged
GROUP BY 1, 2
"""

# Orders placed in the period that reached the customer (delivered, or completed or refunded
# after delivery), and the after-sales requests made on orders placed in the period.
DELIVERED_ORDERS = """
SELECT count(*) FROM orders o
WHERE o.created_at >= $1 AND o.created_at < $2
  AND (o.delivered_at IS NOT NULL OR o.status IN ('delivered', 'completed', 'refunded'))
"""
AFTER_SALES = """
SELECT r.type, r.reason, r.status, count(*) AS requests
FROM after_sales_requests r JOIN orders o ON o.order_id = r.order_id
WHERE o.created_at >= $1 AND o.created_at < $2
GROUP BY 1, 2, 3
ORDER BY requests DESC, 1, 2, 3
"""
