"""Attribution stage (asset group ``referrals``): ``analytics.referral_events`` (Friendbuy activity
with resolved parties), ``analytics.referral_attribution`` (product §5) and
``audit.promo_code_issues`` (§5.1). Pure logic, no Dagster import; SQL in ``sql/``."""
from .attribution import AttributionResult, run_attribution
from .context import (ATTRIBUTION_INPUTS, EVENTS_INPUTS, PROMO_INPUTS, EventsResult, ensure_attribution_schema,
                      prepare_referral_context, run_referral_events)
from .promo import REFERRAL_NAME_PATTERN, PromoResult, run_promo_codes

__all__ = ["ATTRIBUTION_INPUTS", "EVENTS_INPUTS", "PROMO_INPUTS", "REFERRAL_NAME_PATTERN", "AttributionResult",
           "EventsResult", "PromoResult", "ensure_attribution_schema", "prepare_referral_context", "run_attribution",
           "run_promo_codes", "run_referral_events"]
