-- Coupon and products of the purchases in the delta only (not hashed: a purchase is sent once).
-- couponCode: Friendbuy takes one code; of the order's codes, the first one Friendbuy distributed as
-- a friend incentive (staging.referral_events), else the first code. products: one per order line,
-- sku (else the line key), name, whole quantity, unit price in major units.
SELECT d.*, i.products, cp.coupon_code
FROM sync_delta_base d
LEFT JOIN (
    SELECT oi.order_key,
           list(struct_pack(sku := coalesce(oi.sku, oi.order_item_key), name := oi.name,
                            quantity := CAST(greatest(round(oi.quantity), 1) AS BIGINT),
                            price := CAST(round(coalesce(oi.unit_price, oi.total_price / nullif(oi.quantity, 0), 0), 2)
                                          AS DOUBLE))
                ORDER BY oi.order_item_key) AS products
    FROM staging.order_items oi
    WHERE oi.order_key IN (SELECT record_key FROM sync_delta_base)
    GROUP BY oi.order_key
) i ON i.order_key = d.record_key
LEFT JOIN (
    SELECT u.order_key,
           arg_min(u.code, struct_pack(plain := fi.code IS NULL, pos := u.pos)) AS coupon_code
    FROM (SELECT o.order_key, unnest(o.coupon_codes) AS code, generate_subscripts(o.coupon_codes, 1) AS pos
          FROM analytics.orders o
          WHERE o.order_key IN (SELECT record_key FROM sync_delta_base)) u
    LEFT JOIN (SELECT DISTINCT upper(coupon_code) AS code FROM staging.referral_events
               WHERE kind = 'friend_incentive' AND coupon_code IS NOT NULL) fi ON fi.code = upper(u.code)
    WHERE nullif(trim(u.code), '') IS NOT NULL
    GROUP BY u.order_key
) cp ON cp.order_key = d.record_key
