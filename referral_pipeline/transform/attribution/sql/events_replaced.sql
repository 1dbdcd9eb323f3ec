-- Keep the old version of every analytics.referral_events row this run removes or rewrites with
-- other signals (ops.referral_events_replaced; read by the attribution stage's incremental runs).
-- Inputs: analytics.referral_events (stored), events_new (this run's rows), ev_scope (what an
-- incremental run recomputed). Parameters: $as_of, $full.
INSERT INTO ops.referral_events_replaced
SELECT r.event_key, r.kind, r.market_id, r.referral_code, r.coupon_code, r.order_id, r.friend_customer_key,
       CAST($as_of AS TIMESTAMPTZ), nextval('analytics.write_seq')
FROM analytics.referral_events r
LEFT JOIN events_new n ON n.event_key = r.event_key
WHERE ($full OR r.event_key IN (SELECT event_key FROM ev_scope))
  AND (n.event_key IS NULL
   OR r.kind IS DISTINCT FROM n.kind OR r.market_id IS DISTINCT FROM n.market_id
   OR r.occurred_at IS DISTINCT FROM n.occurred_at OR r.referral_code IS DISTINCT FROM n.referral_code
   OR r.coupon_code IS DISTINCT FROM n.coupon_code OR r.order_id IS DISTINCT FROM n.order_id
   OR r.advocate_customer_key IS DISTINCT FROM n.advocate_customer_key
   OR r.friend_customer_key IS DISTINCT FROM n.friend_customer_key)
