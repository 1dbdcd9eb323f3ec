-- What the fraud rules run on (product §6): every referral sign-up and every attributed order,
-- with the parties, the time, the IP and the canonical emails. TEMP fraud_subjects.
-- Inputs: fb_events, analytics.referral_attribution (which carries the order's IP), analytics.customers.
SELECT 'signup' AS subject_type, e.event_key AS subject_key, e.market_id, e.campaign_id,
       e.advocate_key, e.friend_key, e.occurred_at AS event_at, e.ip_address AS ip,
       coalesce(fc.email_canonical, ref_email_canonical(e.friend_email)) AS friend_canonical,
       coalesce(ac.email_canonical, ref_email_canonical(e.advocate_email)) AS advocate_canonical,
       fc.created_at AS friend_created_at
FROM fb_events e
LEFT JOIN analytics.customers fc ON fc.customer_key = e.friend_key
LEFT JOIN analytics.customers ac ON ac.customer_key = e.advocate_key
WHERE e.kind = 'signup'
UNION ALL
SELECT 'order', a.order_key, a.market_id, a.campaign_id,
       a.advocate_customer_key, a.friend_customer_key, a.placed_at, a.ip_address,
       a.friend_email_canonical, a.advocate_email_canonical, fc.created_at
FROM analytics.referral_attribution a
LEFT JOIN analytics.customers fc ON fc.customer_key = a.friend_customer_key
