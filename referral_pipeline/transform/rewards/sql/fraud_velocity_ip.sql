-- VELOCITY_IP (hold): more than velocity.ip_per_hour referral sign-ups or attributed orders from
-- one IP (in one market) within the hour ending at this event, i.e. in (at - 1 h, at]. The event
-- that exceeds the threshold fires, and every later one while the count stays above.
WITH counted AS (
    SELECT s.*, r.ip_per_hour AS threshold,
           count(*) OVER w AS events_in_window,
           list(s.subject_type || ':' || s.subject_key) OVER w AS window_events
    FROM fraud_subjects s
    JOIN program_rules r ON r.market_id = s.market_id
    WHERE s.ip IS NOT NULL
    WINDOW w AS (PARTITION BY s.market_id, s.ip ORDER BY epoch_us(s.event_at)
                 RANGE BETWEEN 3599999999 PRECEDING AND CURRENT ROW)
)
SELECT 'VELOCITY_IP' AS rule, 'hold' AS severity, subject_type, subject_key, market_id, campaign_id,
       advocate_key, friend_key,
       to_json({'ip': ip, 'events_in_hour': events_in_window, 'threshold': threshold, 'window_end': event_at,
                'events': window_events}) AS evidence
FROM counted
WHERE events_in_window > threshold
