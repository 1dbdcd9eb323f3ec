-- DUPLICATE_IDENTITY (hold): the friend's email_canonical equals that of a different customer
-- created earlier (any market: a duplicate account is a duplicate wherever it was opened).
WITH subjects AS (
    SELECT * FROM fraud_subjects
    WHERE friend_key IS NOT NULL AND friend_canonical IS NOT NULL AND friend_created_at IS NOT NULL
),
earlier AS (
    SELECT s.subject_type, s.subject_key, c.customer_key, c.created_at
    FROM subjects s
    JOIN analytics.customers c ON c.email_canonical = s.friend_canonical
    WHERE c.customer_key <> s.friend_key AND c.created_at < s.friend_created_at
)
SELECT 'DUPLICATE_IDENTITY' AS rule, 'hold' AS severity, s.subject_type, s.subject_key, s.market_id, s.campaign_id,
       s.advocate_key, s.friend_key,
       to_json({'email_canonical': s.friend_canonical, 'friend_customer_key': s.friend_key,
                'friend_created_at': s.friend_created_at,
                'earlier_customer_key': first(e.customer_key ORDER BY e.created_at, e.customer_key),
                'earlier_created_at': min(e.created_at), 'earlier_customers': count(*)}) AS evidence
FROM subjects s
JOIN earlier e ON e.subject_type = s.subject_type AND e.subject_key = s.subject_key
GROUP BY s.subject_type, s.subject_key, s.market_id, s.campaign_id, s.advocate_key, s.friend_key, s.friend_canonical,
         s.friend_created_at
