-- TEMP ref_orders: the orders (re-)evaluated by this run: those that carry one of the signals in
-- attr_signals (a coupon code, a referral code, an id a purchase row names, a signed-up customer)
-- or are named by it, in a market with a campaign. Inputs: analytics.orders, attr_signals,
-- program_rules. One branch per signal kind, each filtering on one column of the order (so a view
-- analytics.orders only joins the matching rows); the stage runs only the branches whose kind has
-- signals this run (a branch is the text after a '-- branch: <kinds>' line, up to the next one).
-- Changed orders (kind changed_order) come from attr_changed_orders: the rows of analytics.orders
-- above the stage's mark, read once (no comment inside a branch: it is wrapped in parentheses).
-- {columns}: the columns the stage reads (ORDER_COLUMNS in attribution.py; attr_changed_orders has
-- them and load_seq).
-- branch: changed_order
SELECT {columns} FROM attr_changed_orders
-- branch: order_key,id
SELECT {columns} FROM analytics.orders
WHERE order_key IN (SELECT value FROM attr_signals WHERE kind IN ('order_key', 'id'))
-- branch: id
SELECT {columns} FROM analytics.orders
WHERE order_number IN (SELECT value FROM attr_signals WHERE kind = 'id')
-- branch: id
SELECT {columns} FROM analytics.orders
WHERE source_order_id IN (SELECT value FROM attr_signals WHERE kind = 'id')
-- branch: ref_code
SELECT {columns} FROM analytics.orders
WHERE referral_code IS NOT NULL
  AND lower(referral_code) IN (SELECT value FROM attr_signals WHERE kind = 'ref_code')
-- branch: coupon
SELECT {columns} FROM analytics.orders
WHERE order_key IN (SELECT order_key FROM (SELECT order_key, upper(trim(unnest(coupon_codes))) AS code
                                           FROM analytics.orders WHERE len(coupon_codes) > 0)
                    WHERE code IN (SELECT value FROM attr_signals WHERE kind = 'coupon'))
-- branch: customer
SELECT {columns} FROM analytics.orders
WHERE customer_key IN (SELECT value FROM attr_signals WHERE kind = 'customer')
-- final: the branches' rows ({hits}), once per order
SELECT DISTINCT ON (order_key) {columns}
FROM ({hits})
WHERE market_id IN (SELECT market_id FROM program_rules)
