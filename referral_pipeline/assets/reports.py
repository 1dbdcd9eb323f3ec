"""Report assets (group ``reports``): the daily referral funnel and the reward reconciliation with
Friendbuy. Thin wrappers around ``transform.reports``."""
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, asset

from ..transform.reports import REPORT_INPUTS, run_funnel, run_reconciliation
from .referrals import ATTRIBUTION_KEY, EVENTS_KEY, KINDS, LEDGER_KEY, OWNERS, REWARDS_KEY, _run

GROUP = "reports"
FUNNEL_KEY = AssetKey(["analytics", "referral_funnel_daily"])
RECONCILIATION_KEY = AssetKey(["analytics", "reward_reconciliation"])


def build_report_assets() -> list[AssetsDefinition]:
    @asset(key=FUNNEL_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, pool="duckdb",
           deps=[EVENTS_KEY, ATTRIBUTION_KEY, REWARDS_KEY], required_resource_keys={"duckdb", "settings"},
           metadata={"table": "analytics.referral_funnel_daily"},
           description="Per day, market, campaign and channel: shares, clicks, sign-ups, conversions, revenue and "
                       "approved rewards.")
    def referral_funnel_daily(context: AssetExecutionContext) -> MaterializeResult:
        return _run(context, REPORT_INPUTS, "analytics.referral_funnel_daily", "day DESC, market_id, channel",
                    lambda con, p, as_of: run_funnel(con, p, as_of))

    @asset(key=RECONCILIATION_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, pool="duckdb",
           deps=[EVENTS_KEY, REWARDS_KEY, LEDGER_KEY], required_resource_keys={"duckdb", "settings"},
           metadata={"table": "analytics.reward_reconciliation"},
           description="Rewards where Friendbuy's view and ours differ: distributed while we hold, cancel, reverse or "
                       "found not eligible; approved but not distributed after the grace period; and more.")
    def reward_reconciliation(context: AssetExecutionContext) -> MaterializeResult:
        return _run(context, REPORT_INPUTS, "analytics.reward_reconciliation", "detected_at DESC, mismatch",
                    lambda con, p, as_of: run_reconciliation(con, p, as_of))

    return [referral_funnel_daily, reward_reconciliation]
