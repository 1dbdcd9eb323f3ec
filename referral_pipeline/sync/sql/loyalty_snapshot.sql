-- Upsert the customers read from Yotpo (TEMP pull_rows) into ops.loyalty_snapshot.
INSERT INTO ops.loyalty_snapshot AS s (destination, customer_key, email, points_balance, points_earned, vip_tier,
                                       referral_code, found, fetched_at, run_id)
SELECT $destination, r.customer_key, r.email, r.points_balance, r.points_earned, r.vip_tier, r.referral_code,
       r.found, $now, $run_id
FROM pull_rows r
ON CONFLICT (destination, customer_key) DO UPDATE SET
    email = excluded.email, points_balance = excluded.points_balance, points_earned = excluded.points_earned,
    vip_tier = excluded.vip_tier, referral_code = excluded.referral_code, found = excluded.found,
    fetched_at = excluded.fetched_at, run_id = excluded.run_id
