-- Promo-code validation (product §5.1): every code Friendbuy distributed (friend incentives,
-- advocate rewards) against the coupons of the distributing market's commerce platforms.
-- One row per (code, market, problem). Inputs: fb_events, staging.coupons, market_sources,
-- program_rules, promo_scope. Parameters: $as_of, $referral_name_pattern (a platform code whose
-- name does not match it belongs to a non-referral promotion), $full (false: only the codes in
-- promo_scope; every step below is per code, so they come out exactly as in a full run).
WITH dist AS (
    SELECT coupon_code AS code, market_id, campaign_id, kind, occurred_at, event_key
    FROM fb_events
    WHERE kind IN ('friend_incentive', 'advocate_reward') AND coupon_code IS NOT NULL
      AND ($full OR coupon_code IN (SELECT code FROM promo_scope))
),
per_market AS (
    SELECT code, market_id, min(campaign_id) AS campaign_id, min(occurred_at) AS distributed_at,
           list(DISTINCT kind ORDER BY kind) AS kinds, count(*) AS distributions,
           list(event_key ORDER BY occurred_at, event_key)[1:5] AS event_keys
    FROM dist GROUP BY code, market_id
),
per_code AS (
    SELECT code, list(DISTINCT campaign_id ORDER BY campaign_id) AS campaigns,
           list(DISTINCT market_id ORDER BY market_id) AS markets
    FROM dist GROUP BY code
),
platform AS (
    SELECT c.coupon_key, c.source, upper(trim(c.code)) AS code, c.is_active, c.max_uses, c.requires_code,
           c.valid_from, c.valid_until, c.currency, c.store, c.name
    FROM staging.coupons c
    WHERE upper(trim(c.code)) IN (SELECT code FROM dist)
),
-- every platform code with the same text, seen from each market that distributed the code:
-- in_source: it lives in a source instance that feeds the market;
-- in_scope: ... and in one of the market's stores (or in every store) and in its currency (or none)
placed AS (
    SELECT pm.code, pm.market_id, pm.distributed_at, pc.coupon_key, pc.source, pc.is_active, pc.max_uses,
           pc.requires_code, pc.valid_from, pc.valid_until, pc.currency, pc.store, pc.name,
           bool_or(s.source IS NOT NULL) AS in_source,
           bool_or(s.source IS NOT NULL AND (s.store IS NULL OR pc.store IS NULL OR pc.store = s.store)
                   AND (pc.currency IS NULL OR pc.currency = r.program_currency)) AS in_scope
    FROM per_market pm
    JOIN platform pc ON pc.code = pm.code
    JOIN program_rules r ON r.market_id = pm.market_id
    LEFT JOIN market_sources s ON s.market_id = pm.market_id AND s.source = pc.source
    GROUP BY ALL
),
checked AS (
    SELECT *,
           coalesce(is_active, TRUE) AS ok_active,
           coalesce(max_uses = 1, FALSE) AND requires_code IS DISTINCT FROM FALSE AS ok_single,
           (valid_from IS NULL OR valid_from <= distributed_at) AND (valid_until IS NULL OR valid_until >= distributed_at) AS ok_valid
    FROM placed WHERE in_scope
),
best AS (   -- the in-scope platform code that passes most checks: the one a shopper would hit
    SELECT * FROM checked
    QUALIFY row_number() OVER (PARTITION BY code, market_id
                               ORDER BY ok_active::INT + ok_single::INT + ok_valid::INT DESC, coupon_key) = 1
),
platform_count AS (
    SELECT code, count(*) AS platform_codes FROM platform GROUP BY code
),
placed_summary AS (
    SELECT code, market_id,
           list({'coupon_key': coupon_key, 'store': store, 'currency': currency} ORDER BY coupon_key) AS found,
           count(*) FILTER (WHERE in_scope) AS in_scope_codes,
           list({'coupon_key': coupon_key, 'name': name} ORDER BY coupon_key)
               FILTER (WHERE in_source AND name IS NOT NULL AND NOT regexp_matches(name, $referral_name_pattern)) AS promotions
    FROM placed
    GROUP BY code, market_id
),
summary AS (
    SELECT pm.*, pcode.campaigns, pcode.markets, coalesce(pcount.platform_codes, 0) AS platform_codes,
           ps.found, coalesce(ps.in_scope_codes, 0) AS in_scope_codes, ps.promotions
    FROM per_market pm
    JOIN per_code pcode ON pcode.code = pm.code
    LEFT JOIN platform_count pcount ON pcount.code = pm.code
    LEFT JOIN placed_summary ps ON ps.code = pm.code AND ps.market_id = pm.market_id
),
problems AS (
    SELECT s.code, s.market_id, s.campaign_id, 'missing' AS problem,
           to_json({'distributed_at': s.distributed_at, 'kinds': s.kinds, 'distributions': s.distributions,
                    'event_keys': s.event_keys}) AS evidence
    FROM summary s WHERE s.platform_codes = 0
    UNION ALL
    SELECT s.code, s.market_id, s.campaign_id, 'wrong_market',
           to_json({'distributed_at': s.distributed_at, 'found': s.found,
                    'market_scope': (SELECT list({'source': ms.source, 'store': ms.store} ORDER BY ms.source, ms.store)
                                     FROM market_sources ms WHERE ms.market_id = s.market_id),
                    'program_currency': (SELECT program_currency FROM program_rules r WHERE r.market_id = s.market_id)})
    FROM summary s
    WHERE s.platform_codes > 0 AND s.in_scope_codes = 0 AND len(s.campaigns) = 1 AND len(s.markets) = 1
    UNION ALL
    SELECT b.code, b.market_id, s.campaign_id, 'inactive',
           to_json({'coupon_key': b.coupon_key, 'is_active': b.is_active, 'distributed_at': b.distributed_at})
    FROM best b JOIN summary s USING (code, market_id) WHERE NOT b.ok_active
    UNION ALL
    SELECT b.code, b.market_id, s.campaign_id, 'not_single_use',
           to_json({'coupon_key': b.coupon_key, 'max_uses': b.max_uses, 'requires_code': b.requires_code})
    FROM best b JOIN summary s USING (code, market_id) WHERE NOT b.ok_single
    UNION ALL
    SELECT b.code, b.market_id, s.campaign_id, 'expired',
           to_json({'coupon_key': b.coupon_key, 'valid_from': b.valid_from, 'valid_until': b.valid_until,
                    'distributed_at': b.distributed_at,
                    'not_yet_valid': b.valid_from IS NOT NULL AND b.valid_from > b.distributed_at})
    FROM best b JOIN summary s USING (code, market_id) WHERE NOT b.ok_valid
    UNION ALL
    SELECT s.code, s.market_id, s.campaign_id, 'collision',
           to_json({'kinds': list_filter(['two_campaigns', 'non_referral_promotion', 'several_platform_codes'],
                                         lambda k: (k = 'two_campaigns' AND (len(s.campaigns) > 1 OR len(s.markets) > 1))
                                           OR (k = 'non_referral_promotion' AND len(coalesce(s.promotions, [])) > 0)
                                           OR (k = 'several_platform_codes' AND s.in_scope_codes > 1)),
                    'campaigns': s.campaigns, 'markets': s.markets, 'promotions': s.promotions,
                    'platform_codes': s.found})
    FROM summary s
    WHERE len(s.campaigns) > 1 OR len(s.markets) > 1 OR len(coalesce(s.promotions, [])) > 0 OR s.in_scope_codes > 1
)
SELECT code, market_id, campaign_id, problem, CAST(evidence AS JSON) AS evidence,
       CAST($as_of AS TIMESTAMPTZ) AS detected_at, CAST($as_of AS TIMESTAMPTZ) AS updated_at
FROM problems
