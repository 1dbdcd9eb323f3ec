-- The status every reward should have now (product §7), from the stored state and the inputs.
-- TEMP rw_target: one row per reward (new, existing, or existing whose orders lost attribution).
-- Inputs: analytics.referral_attribution (with the order's status and amounts), analytics.rewards (previous state),
-- audit.fraud_flags, reviews, fb_events, program_rules, rw_scope. Parameters: $as_of, $rule_order, $full
-- (false: only the (campaign, friend) pairs in rw_scope, rewards_scope.sql; each cap month is whole in it).
--
-- Precedence (first that applies):
--   stored status canceled / reversed / not_eligible  -> kept (final)
--   no attributed order any more                      -> canceled / reversed  ATTRIBUTION_REMOVED
--   a reject flag (SELF_REFERRAL)                     -> canceled / reversed  <rule>
--   not issued yet and the friend is not new          -> not_eligible NOT_NEW_CUSTOMER
--   not issued yet and order currency != program's    -> not_eligible CURRENCY_MISMATCH
--   not issued yet and net before refunds < minimum   -> not_eligible BELOW_MIN_ORDER_VALUE
--   order cancelled / declined / incomplete           -> canceled / reversed  ORDER_CANCELLED
--   order fully refunded                              -> canceled / reversed  ORDER_REFUNDED
--   net after refunds < minimum                       -> canceled / reversed  BELOW_MIN_ORDER_VALUE
--   a hold flag and the reviewer rejected             -> canceled / reversed  REVIEW_REJECTED
--   not issued yet and the advocate's cap is used     -> not_eligible ADVOCATE_CAP_REACHED
--   a hold flag not approved by the reviewer          -> on_hold <first hold rule>
--   issued before, or Friendbuy distributed it and the return window passed -> issued FRIENDBUY_DISTRIBUTED
--   return window passed                              -> approved RETURN_WINDOW_PASSED
--   otherwise                                         -> pending
-- "canceled / reversed": reversed when the reward was issued before, canceled otherwise.
WITH attributed AS (
    SELECT * FROM analytics.referral_attribution a
    WHERE $full OR EXISTS (SELECT 1 FROM rw_scope s WHERE s.campaign_id = a.campaign_id
                           AND s.friend_customer_key = a.friend_customer_key)
),
stored AS (
    SELECT * FROM analytics.rewards r
    WHERE $full OR EXISTS (SELECT 1 FROM rw_scope s WHERE s.campaign_id = r.campaign_id
                           AND s.friend_customer_key = r.friend_customer_key)
),
firsts AS (   -- one reward per (campaign, friend): the friend's first attributed order
    SELECT ref_hash_key('rwd_', campaign_id || '|' || friend_customer_key) AS reward_key, *
    FROM attributed
    QUALIFY row_number() OVER (PARTITION BY campaign_id, friend_customer_key ORDER BY placed_at, order_key) = 1
),
facts AS (
    SELECT f.reward_key, f.campaign_id, f.market_id, f.advocate_customer_key, f.friend_customer_key, f.order_key,
           f.placed_at, f.is_new_customer, f.order_status, f.currency AS order_currency,
           f.net_amount + coalesce(f.refunded_amount, 0) AS original_net, coalesce(f.refunded_amount, 0) AS refunded_amount,
           f.net_amount, r.program_currency, r.min_order_value, r.reward_amount, r.reward_currency,
           r.return_window_days, r.advocate_monthly_cap
    FROM firsts f
    JOIN program_rules r ON r.market_id = f.market_id
),
rule_flags AS (   -- flags on the reward's order, or on the friend's sign-up in the campaign
    SELECT f.reward_key, fl.rule, fl.severity
    FROM facts f JOIN audit.fraud_flags fl ON fl.subject_type = 'order' AND fl.subject_key = f.order_key
    UNION
    SELECT f.reward_key, fl.rule, fl.severity
    FROM facts f JOIN audit.fraud_flags fl
      ON fl.subject_type = 'signup' AND fl.friend_customer_key = f.friend_customer_key AND fl.campaign_id = f.campaign_id
),
flag_summary AS (
    SELECT reward_key,
           list(rule ORDER BY list_position($rule_order, rule), rule) AS fraud_rules,
           first(rule ORDER BY list_position($rule_order, rule)) FILTER (WHERE severity = 'reject') AS reject_rule,
           first(rule ORDER BY list_position($rule_order, rule)) FILTER (WHERE severity = 'hold') AS hold_rule
    FROM (SELECT DISTINCT reward_key, rule, severity FROM rule_flags)
    GROUP BY reward_key
),
distributed AS (   -- Friendbuy's distributed-advocate-rewards export, matched by (campaign, friend)
    SELECT ref_hash_key('rwd_', campaign_id || '|' || friend_key) AS reward_key, min(occurred_at) AS distributed_at
    FROM fb_events e WHERE kind = 'advocate_reward' AND friend_key IS NOT NULL
      AND ($full OR EXISTS (SELECT 1 FROM rw_scope s WHERE s.campaign_id = e.campaign_id
                            AND s.friend_customer_key = e.friend_key))
    GROUP BY 1
),
joined AS (
    SELECT coalesce(f.reward_key, p.reward_key) AS reward_key,
           f.reward_key IS NOT NULL AS attributed,
           coalesce(f.campaign_id, p.campaign_id) AS campaign_id,
           coalesce(f.market_id, p.market_id) AS market_id,
           coalesce(f.advocate_customer_key, p.advocate_customer_key) AS advocate_customer_key,
           coalesce(f.friend_customer_key, p.friend_customer_key) AS friend_customer_key,
           coalesce(f.order_key, p.order_key) AS order_key,
           coalesce(f.placed_at, p.placed_at) AS placed_at,
           coalesce(f.net_amount, p.net_amount) AS net_amount,
           -- the amount of an issued or final reward stays what it was (a programs change does not rewrite it)
           CASE WHEN p.issued_at IS NOT NULL OR p.status IN ('canceled', 'reversed', 'not_eligible') THEN p.amount
                ELSE coalesce(f.reward_amount, p.amount) END AS amount,
           CASE WHEN p.issued_at IS NOT NULL OR p.status IN ('canceled', 'reversed', 'not_eligible') THEN p.currency
                ELSE coalesce(f.reward_currency, p.currency) END AS currency,
           f.is_new_customer, f.order_status, f.order_currency, f.original_net, f.refunded_amount, f.program_currency,
           f.min_order_value, f.return_window_days, coalesce(f.advocate_monthly_cap, 0) AS advocate_monthly_cap,
           coalesce(fs.fraud_rules, []) AS fraud_rules, fs.reject_rule, fs.hold_rule,
           rv.decision AS review_decision, d.distributed_at,
           p.status AS prev_status, p.reason AS prev_reason, p.created_at AS prev_created_at,
           p.issued_at AS prev_issued_at, p.review_decision AS prev_review_decision, p.review_seen_at AS prev_review_seen_at,
           p.status_changed_at AS prev_status_changed_at,
           coalesce(p.status IN ('canceled', 'reversed', 'not_eligible'), FALSE) AS final,
           p.issued_at IS NOT NULL AS was_issued
    FROM facts f
    FULL OUTER JOIN stored p ON p.reward_key = f.reward_key
    LEFT JOIN flag_summary fs ON fs.reward_key = coalesce(f.reward_key, p.reward_key)
    LEFT JOIN reviews rv ON rv.reward_key = coalesce(f.reward_key, p.reward_key)
    LEFT JOIN distributed d ON d.reward_key = coalesce(f.reward_key, p.reward_key)
),
pre AS (   -- the rules up to the monthly cap; NULL: none applies yet
    SELECT *,
        CASE
            WHEN final THEN {'s': prev_status, 'r': prev_reason}
            WHEN NOT attributed THEN {'s': 'cancel', 'r': 'ATTRIBUTION_REMOVED'}
            WHEN reject_rule IS NOT NULL THEN {'s': 'cancel', 'r': reject_rule}
            WHEN NOT was_issued AND NOT is_new_customer THEN {'s': 'not_eligible', 'r': 'NOT_NEW_CUSTOMER'}
            WHEN NOT was_issued AND order_currency IS DISTINCT FROM program_currency
                THEN {'s': 'not_eligible', 'r': 'CURRENCY_MISMATCH'}
            WHEN NOT was_issued AND original_net < min_order_value THEN {'s': 'not_eligible', 'r': 'BELOW_MIN_ORDER_VALUE'}
            WHEN order_status IN ('cancelled', 'declined', 'incomplete') THEN {'s': 'cancel', 'r': 'ORDER_CANCELLED'}
            WHEN order_status = 'refunded' OR (refunded_amount > 0 AND refunded_amount >= original_net)
                THEN {'s': 'cancel', 'r': 'ORDER_REFUNDED'}
            WHEN net_amount < min_order_value THEN {'s': 'cancel', 'r': 'BELOW_MIN_ORDER_VALUE'}
            WHEN hold_rule IS NOT NULL AND review_decision = 'reject' THEN {'s': 'cancel', 'r': 'REVIEW_REJECTED'}
        END AS pre
    FROM joined
),
capped AS (   -- ADVOCATE_CAP_REACHED: the advocate already has `cap` counted rewards earlier in the order's month
    SELECT *,
        count(*) FILTER (WHERE pre IS NULL OR pre.s NOT IN ('cancel', 'canceled', 'reversed', 'not_eligible')) OVER (
            PARTITION BY market_id, advocate_customer_key, date_trunc('month', placed_at AT TIME ZONE 'UTC')
            ORDER BY placed_at, reward_key ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS counted_before
    FROM pre
),
decided AS (
    SELECT *,
        CASE
            WHEN pre IS NOT NULL THEN pre
            WHEN NOT was_issued AND counted_before >= advocate_monthly_cap THEN {'s': 'not_eligible', 'r': 'ADVOCATE_CAP_REACHED'}
            WHEN hold_rule IS NOT NULL AND review_decision IS DISTINCT FROM 'approve' THEN {'s': 'on_hold', 'r': hold_rule}
            WHEN was_issued OR (distributed_at IS NOT NULL AND $as_of >= placed_at + to_days(return_window_days))
                THEN {'s': 'issued', 'r': 'FRIENDBUY_DISTRIBUTED'}
            WHEN $as_of >= placed_at + to_days(return_window_days) THEN {'s': 'approved', 'r': 'RETURN_WINDOW_PASSED'}
            ELSE {'s': 'pending', 'r': NULL}
        END AS d
    FROM capped
),
final AS (
    SELECT *,
        CASE WHEN d.s = 'cancel' THEN (CASE WHEN was_issued THEN 'reversed' ELSE 'canceled' END) ELSE d.s END AS status
    FROM decided
)
SELECT reward_key, campaign_id, market_id, advocate_customer_key, friend_customer_key, order_key, status,
       CASE WHEN status IS NOT DISTINCT FROM prev_status THEN prev_reason
            WHEN prev_status = 'on_hold' AND status IN ('pending', 'approved', 'issued') THEN 'REVIEW_APPROVED'
            ELSE d.r END AS reason,
       amount, currency, fraud_rules,
       coalesce(prev_created_at, CAST($as_of AS TIMESTAMPTZ)) AS created_at,
       CAST($as_of AS TIMESTAMPTZ) AS updated_at,
       placed_at, net_amount, review_decision,
       CASE WHEN review_decision IS NOT DISTINCT FROM prev_review_decision THEN prev_review_seen_at
            WHEN review_decision IS NOT NULL THEN CAST($as_of AS TIMESTAMPTZ) END AS review_seen_at,
       coalesce(prev_issued_at, CASE WHEN status = 'issued' THEN distributed_at END) AS issued_at,
       CASE WHEN status IS NOT DISTINCT FROM prev_status THEN prev_status_changed_at
            ELSE CAST($as_of AS TIMESTAMPTZ) END AS status_changed_at,
       prev_status
FROM final
