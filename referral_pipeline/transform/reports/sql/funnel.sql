-- analytics.referral_funnel_daily: per UTC day, market, campaign and channel, the referral funnel.
-- shares / clicks / signups: Friendbuy events of that day (their own channel field);
-- conversions / revenue / rewards_approved: attributed orders placed that day, by the channel of
-- the share behind the attribution. Inputs: fb_events, analytics.referral_attribution,
-- analytics.rewards, program_rules. Parameters: $as_of.
WITH activity AS (
    SELECT CAST(occurred_at AT TIME ZONE 'UTC' AS DATE) AS day, market_id, campaign_id,
           coalesce(channel, 'unknown') AS channel,
           count(*) FILTER (WHERE kind = 'share') AS shares,
           count(*) FILTER (WHERE kind = 'click') AS clicks,
           count(*) FILTER (WHERE kind = 'signup') AS signups
    FROM fb_events
    WHERE kind IN ('share', 'click', 'signup')
    GROUP BY ALL
),
converted AS (
    SELECT CAST(a.placed_at AT TIME ZONE 'UTC' AS DATE) AS day, a.market_id, a.campaign_id, a.channel,
           count(*) FILTER (WHERE a.order_status NOT IN ('cancelled', 'declined', 'incomplete')) AS conversions,
           coalesce(sum(a.net_amount) FILTER (WHERE a.order_status NOT IN ('cancelled', 'declined', 'incomplete')
                                                  AND a.currency = p.program_currency), 0) AS revenue,
           count(r.reward_key) FILTER (WHERE r.status IN ('approved', 'issued')) AS rewards_approved
    FROM analytics.referral_attribution a
    JOIN program_rules p ON p.market_id = a.market_id
    LEFT JOIN analytics.rewards r ON r.reward_key = a.reward_key AND r.order_key = a.order_key
    GROUP BY ALL
)
SELECT day, market_id, campaign_id, channel,
       coalesce(x.shares, 0) AS shares, coalesce(x.clicks, 0) AS clicks, coalesce(x.signups, 0) AS signups,
       coalesce(c.conversions, 0) AS conversions, CAST(coalesce(c.revenue, 0) AS DECIMAL(18,4)) AS revenue,
       coalesce(c.rewards_approved, 0) AS rewards_approved, p.program_currency AS currency,
       CAST($as_of AS TIMESTAMPTZ) AS updated_at
FROM activity x
FULL OUTER JOIN converted c USING (day, market_id, campaign_id, channel)
JOIN program_rules p USING (market_id)
WHERE coalesce(x.shares, 0) + coalesce(x.clicks, 0) + coalesce(x.signups, 0) + coalesce(c.conversions, 0) > 0
