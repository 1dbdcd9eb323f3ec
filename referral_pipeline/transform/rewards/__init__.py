"""Rewards stage (asset group ``referrals``): ``audit.fraud_flags`` (product §6), then
``analytics.rewards``, ``analytics.reward_ledger`` and ``referral_attribution.reward_key`` (§7).
Pure logic, no Dagster import; SQL in ``sql/``."""
from .fraud import FRAUD_INPUTS, RULES, FraudResult, ensure_rewards_schema, run_fraud
from .rewards import REWARDS_INPUTS, RewardsResult, review_tables, run_rewards

__all__ = ["FRAUD_INPUTS", "REWARDS_INPUTS", "RULES", "FraudResult", "RewardsResult", "ensure_rewards_schema",
           "review_tables", "run_fraud", "run_rewards"]
