"""Reports stage (asset group ``reports``): ``analytics.referral_funnel_daily`` and
``analytics.reward_reconciliation``. Pure logic, no Dagster import; SQL in ``sql/``."""
from .reports import REPORT_INPUTS, ReportResult, ensure_reports_schema, run_funnel, run_reconciliation

__all__ = ["REPORT_INPUTS", "ReportResult", "ensure_reports_schema", "run_funnel", "run_reconciliation"]
