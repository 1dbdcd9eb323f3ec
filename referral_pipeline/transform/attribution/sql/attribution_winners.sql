-- TEMP attr_winners: per attributed order, the method that wins (first that applies; among several
-- rows of one method, the earliest evidence) with the order's facts. Orders evaluated by this run
-- come from attr_candidates/ref_orders; on an incremental run every other attributed order keeps
-- its stored winner, and comes along (to be enriched again by attribution_rows.sql) only when its
-- enrichment may have changed: clicks or shares of its referral code changed (ref_code signals),
-- its friend's referral sign-ups changed (customer signals), or the identity stage rewrote its
-- friend or advocate (attr_changed_customers; everything when $enrich_all).
-- Inputs: attr_candidates, ref_orders, attr_signals, attr_changed_customers,
-- analytics.referral_attribution, program_rules. Parameters: $full, $enrich_all.
WITH winner AS (
    SELECT * FROM attr_candidates
    QUALIFY row_number() OVER (PARTITION BY order_key ORDER BY method_rank, touch_at, source_event_key) = 1
)
SELECT w.order_key, w.method, w.advocate_key, w.source_event_key, w.coupon_code,
       -- the referral code behind the attribution: the order's own for method referral_code, else
       -- the code on the evidence event (the order may carry another advocate's code)
       CASE WHEN w.method = 'referral_code' THEN o.referral_code ELSE w.referral_code END AS referral_code,
       o.customer_key AS friend_key, o.market_id, p.campaign_id, o.placed_at, o.net_amount, o.currency, o.status,
       o.refunded_amount, o.ip_address
FROM winner w
JOIN ref_orders o ON o.order_key = w.order_key
JOIN program_rules p ON p.market_id = o.market_id
UNION ALL
SELECT a.order_key, a.attribution_method, a.advocate_customer_key, a.source_event_key, a.coupon_code, a.referral_code,
       a.friend_customer_key, a.market_id, a.campaign_id, a.placed_at, a.net_amount, a.currency, a.order_status,
       a.refunded_amount, a.ip_address
FROM analytics.referral_attribution a
WHERE NOT $full
  AND a.order_key NOT IN (SELECT order_key FROM ref_orders)
  AND a.order_key NOT IN (SELECT value FROM attr_signals WHERE kind IN ('order_key', 'changed_order'))
  AND ($enrich_all
       OR lower(a.referral_code) IN (SELECT value FROM attr_signals WHERE kind = 'ref_code')
       OR a.friend_customer_key IN (SELECT value FROM attr_signals WHERE kind = 'customer')
       OR a.friend_customer_key IN (SELECT customer_key FROM attr_changed_customers)
       OR a.advocate_customer_key IN (SELECT customer_key FROM attr_changed_customers))
