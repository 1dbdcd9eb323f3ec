-- TEMP ev_scope (incremental run): the events whose row in analytics.referral_events may differ
-- from the stored one, i.e. everything the full computation (events.sql) would change:
--   * staging rows added or rewritten since the last run (load_seq above the watermark);
--   * events that crossed the as_of cut (occurred between the previous and this run's as_of);
--   * events naming a party whose resolution may have changed: an email or a customer id in
--     ev_parties (events_parties_*.sql: the emails and ids the identity rows added since the last
--     run can resolve, or those of every customer the identity stage rewrote);
--   * stored events no longer in staging at or before as_of (removed, or as_of moved back).
-- Inputs: staging.referral_events, ev_parties, analytics.referral_events.
-- Parameters: $as_of, $prev_as_of, $events_wm.
WITH emails AS (
    SELECT v FROM ev_parties WHERE kind = 'email'
),
ids AS (
    SELECT v FROM ev_parties WHERE kind = 'id'
)
SELECT event_key FROM staging.referral_events
WHERE occurred_at <= $as_of
  AND (load_seq > $events_wm
       OR occurred_at > least(CAST($as_of AS TIMESTAMPTZ), CAST($prev_as_of AS TIMESTAMPTZ))
       OR advocate_email IN (SELECT v FROM emails) OR friend_email IN (SELECT v FROM emails)
       OR advocate_customer_id IN (SELECT v FROM ids) OR friend_customer_id IN (SELECT v FROM ids))
UNION
SELECT event_key FROM analytics.referral_events
WHERE event_key NOT IN (SELECT event_key FROM staging.referral_events WHERE occurred_at <= $as_of)
