-- ops.fraud_signup_emails brought up to date with analytics.referral_events (fraud.py,
-- _sync_signup_emails, runs the steps in order; $mark is the table's highest load_seq after the
-- first step). Rows of another macro go; the events written since $mark replace their rows
-- (so an event_key has at most one row) and their sign-ups get one; rows whose event is no longer
-- a sign-up go when the table holds more rows than there are sign-ups (step prune, rarely).

-- step: other_macro
DELETE FROM ops.fraud_signup_emails WHERE macro_digest <> $macro_digest;

-- step: rewritten
DELETE FROM ops.fraud_signup_emails
WHERE event_key IN (SELECT event_key FROM analytics.referral_events WHERE load_seq > $mark);

-- step: new
INSERT INTO ops.fraud_signup_emails
SELECT event_key, friend_email, advocate_email, ref_email_canonical(friend_email), ref_email_canonical(advocate_email),
       $macro_digest, load_seq
FROM analytics.referral_events WHERE kind = 'signup' AND load_seq > $mark;

-- step: prune
DELETE FROM ops.fraud_signup_emails c
WHERE NOT EXISTS (SELECT 1 FROM analytics.referral_events e WHERE e.kind = 'signup' AND e.event_key = c.event_key);
