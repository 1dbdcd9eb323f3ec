-- VELOCITY_ADVOCATE (hold): more than velocity.advocate_per_24h attributed orders of one advocate
-- (in one market) within the 24 h ending at this order, i.e. in (placed_at - 24 h, placed_at].
-- The order that exceeds the threshold fires, and every later one while the count stays above;
-- at exactly the threshold nothing fires. Orders at the same instant count together.
WITH counted AS (
    SELECT s.*, r.advocate_per_24h AS threshold,
           count(*) OVER w AS orders_in_window,
           list(s.subject_key) OVER w AS window_orders
    FROM fraud_subjects s
    JOIN program_rules r ON r.market_id = s.market_id
    WHERE s.subject_type = 'order' AND s.advocate_key IS NOT NULL
    WINDOW w AS (PARTITION BY s.market_id, s.advocate_key ORDER BY epoch_us(s.event_at)
                 RANGE BETWEEN 86399999999 PRECEDING AND CURRENT ROW)
)
SELECT 'VELOCITY_ADVOCATE' AS rule, 'hold' AS severity, subject_type, subject_key, market_id, campaign_id,
       advocate_key, friend_key,
       to_json({'advocate_customer_key': advocate_key, 'orders_in_24h': orders_in_window, 'threshold': threshold,
                'window_end': event_at, 'order_keys': window_orders}) AS evidence
FROM counted
WHERE orders_in_window > threshold
