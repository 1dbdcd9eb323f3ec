-- SAME_IP_AS_ADVOCATE (hold): the friend's sign-up or order IP is an IP the advocate used in the
-- same market: their shares, their advocate widget views, their own orders, their own referral
-- sign-ups. (Clicks are the visitors' IPs, not the advocate's: the export does not say who clicked.)
-- Not evaluated when friend and advocate are one customer: that is SELF_REFERRAL, and their IPs
-- match trivially.
-- Inputs: fraud_subjects, fb_events, fraud_ip_orders (fraud.py). Parameters: $as_of.
WITH advocates AS (
    SELECT DISTINCT market_id, advocate_key FROM fraud_subjects WHERE advocate_key IS NOT NULL AND ip IS NOT NULL
),
advocate_ips AS (
    SELECT market_id, advocate_key, ip_address AS ip, 'share' AS used_in, event_key AS used_key, occurred_at AS used_at
    FROM fb_events WHERE kind = 'share' AND advocate_key IS NOT NULL AND ip_address IS NOT NULL
    UNION ALL
    SELECT market_id, advocate_key, ip_address, 'widget_view', event_key, occurred_at
    FROM fb_events WHERE kind = 'widget_view' AND advocate_key IS NOT NULL AND ip_address IS NOT NULL
    UNION ALL
    SELECT o.market_id, o.customer_key, o.ip_address, 'order', o.order_key, o.placed_at
    FROM fraud_ip_orders o   -- (analytics.orders, on an incremental run only those from the subjects' IPs: fraud.py)
    JOIN advocates a ON a.market_id = o.market_id AND a.advocate_key = o.customer_key
    WHERE o.ip_address IS NOT NULL AND o.placed_at <= $as_of
    UNION ALL
    SELECT e.market_id, e.friend_key, e.ip_address, 'signup', e.event_key, e.occurred_at
    FROM fb_events e
    JOIN advocates a ON a.market_id = e.market_id AND a.advocate_key = e.friend_key
    WHERE e.kind = 'signup' AND e.ip_address IS NOT NULL
)
SELECT 'SAME_IP_AS_ADVOCATE' AS rule, 'hold' AS severity, s.subject_type, s.subject_key, s.market_id, s.campaign_id,
       s.advocate_key, s.friend_key,
       to_json({'ip': s.ip, 'advocate_customer_key': s.advocate_key,
                'advocate_used_in': list(DISTINCT a.used_in ORDER BY a.used_in),
                'advocate_used_keys': list(a.used_key ORDER BY a.used_at, a.used_key)[1:5]}) AS evidence
FROM fraud_subjects s
JOIN advocate_ips a ON a.market_id = s.market_id AND a.advocate_key = s.advocate_key AND a.ip = s.ip
WHERE a.used_key <> s.subject_key AND s.friend_key IS DISTINCT FROM s.advocate_key
GROUP BY s.subject_type, s.subject_key, s.market_id, s.campaign_id, s.advocate_key, s.friend_key, s.ip
