-- Friendbuy purchases (POST /v1/event/purchase, orderId = order_key), once per order: the change
-- fields are orderId only, so a status change, a refund or a late attribution never re-sends it.
-- Orders that were never a purchase (cancelled, declined, incomplete before Friendbuy got them) are
-- not sent; a later cancellation or refund travels as a custom event (friendbuy_custom_events.sql).
-- amount = item subtotal after discounts (gross - discount), before refunds, tax and shipping (the
-- program's net-amount basis). isNewCustomer (our identity data, product §7 NOT_NEW_CUSTOMER): the
-- customer has no earlier order, in any source or market, that is not cancelled/declined/incomplete.
-- campaign_id: the market's Friendbuy campaign (TEMP friendbuy_campaigns; sent in additionalProperties,
-- the purchase schema has no campaign field). Coupon and products are added for the delta only
-- (friendbuy_purchase_details.sql).
WITH first_real AS (
    SELECT customer_key, min(struct_pack(t := placed_at, k := order_key)) AS first_order
    FROM analytics.orders
    WHERE customer_key IS NOT NULL AND status NOT IN ('cancelled', 'declined', 'incomplete')
    GROUP BY customer_key
)
SELECT o.order_key    AS record_key,
       o.customer_key AS subject_key,
       o.order_key    AS order_id,
       o.customer_key AS customer_id,
       CAST(round(greatest(o.gross_amount - coalesce(o.discount_amount, 0), 0), 2) AS DOUBLE) AS amount,
       upper(o.currency) AS currency,
       coalesce(nullif(trim(c.email), ''), o.email_normalized) AS email,
       c.first_name   AS first_name,
       c.last_name    AS last_name,
       f.first_order IS NULL OR struct_pack(t := o.placed_at, k := o.order_key) <= f.first_order AS is_new_customer,
       o.attribution_id AS attribution_id,
       o.referral_code  AS referral_code,
       o.ip_address     AS ip_address,
       o.user_agent     AS user_agent,
       o.market_id      AS market,
       fc.campaign_id   AS campaign_id
FROM analytics.orders o
JOIN friendbuy_campaigns fc ON fc.market_id = o.market_id
LEFT JOIN analytics.customers c ON c.customer_key = o.customer_key
LEFT JOIN first_real f ON f.customer_key = o.customer_key
LEFT JOIN ops.sync_state st ON st.destination = $destination AND st.entity = $entity AND st.record_key = o.order_key
WHERE list_contains($markets, o.market_id)
  AND (o.status NOT IN ('cancelled', 'declined', 'incomplete') OR st.first_ok_at IS NOT NULL)
