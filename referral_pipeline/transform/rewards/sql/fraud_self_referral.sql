-- SELF_REFERRAL (reject): friend and advocate are the same customer_key or share email_canonical
-- (a gmail dot/plus alias, googlemail.com...).
SELECT 'SELF_REFERRAL' AS rule, 'reject' AS severity, subject_type, subject_key, market_id, campaign_id,
       advocate_key, friend_key,
       to_json({'match': CASE WHEN friend_key = advocate_key THEN 'customer_key' ELSE 'email_canonical' END,
                'friend_customer_key': friend_key, 'advocate_customer_key': advocate_key,
                'friend_email_canonical': friend_canonical, 'advocate_email_canonical': advocate_canonical}) AS evidence
FROM fraud_subjects
WHERE friend_key = advocate_key OR friend_canonical = advocate_canonical
