"""Data quality (product §9): Great Expectations suites per table, run on the changed rows read
from DuckDB into pandas, plus whole-table SQL checks. No Dagster import here; the asset checks in
``referral_pipeline.assets.checks`` wrap ``run_suite``. ``great_expectations`` is imported lazily."""
from .runner import ExpectationResult, SuiteResult, ensure_dq_schema, run_suite, run_suites
from .suites import SUITES, SUITES_BY_TABLE, Suite, suite_for

__all__ = ["ExpectationResult", "SuiteResult", "ensure_dq_schema", "run_suite", "run_suites", "SUITES",
           "SUITES_BY_TABLE", "Suite", "suite_for"]
