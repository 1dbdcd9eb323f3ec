"""Analyst-facing assets (group ``reports``, product §10):

* ``reports/referral_report`` — the self-contained HTML report next to the DuckDB file
  (``<data dir>/reports/referral_report.html``); nightly.
* ``reports/published_copy`` — the read-only copy analysts query (``<data dir>/published/referral.duckdb``);
  depends on every other asset, so it runs last in any job that selects it.
"""
from collections.abc import Iterable, Sequence

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, MetadataValue, asset

from ..analyst.publish import publish_copy, report_path
from ..analyst.report import write_report

REPORT_KEY = AssetKey(["reports", "referral_report"])
PUBLISHED_KEY = AssetKey(["reports", "published_copy"])
# Tables the report reads, as asset keys; only those present in the definitions become deps.
REPORT_INPUTS = [AssetKey(["analytics", "referral_funnel_daily"]), AssetKey(["staging", "referral_events"]),
                 AssetKey(["analytics", "rewards"]), AssetKey(["audit", "fraud_flags"]),
                 AssetKey(["analytics", "customers"]), AssetKey(["analytics", "orders"]),
                 AssetKey(["analytics", "referral_attribution"])]


def _keys(assets: Iterable) -> list[AssetKey]:
    keys: list[AssetKey] = []
    for item in assets:
        if isinstance(item, AssetsDefinition):
            keys.extend(item.keys)
        elif hasattr(item, "key"):
            keys.append(item.key)
    return keys


def build_report_asset(existing_keys: Sequence[AssetKey]) -> AssetsDefinition:
    deps = [k for k in REPORT_INPUTS if k in set(existing_keys)]

    @asset(key=REPORT_KEY, group_name="reports", kinds={"duckdb", "html"}, pool="duckdb", deps=deps,
           required_resource_keys={"duckdb", "settings"},
           description="Referral program report for analysts (HTML, self-contained): funnel by market and channel, "
                       "conversion over time, rewards by status, fraud flags by rule, data-quality status.")
    def referral_report(context: AssetExecutionContext) -> MaterializeResult:
        settings = context.resources.settings
        programs = settings.programs()
        campaigns = [(m.friendbuy.campaign_id, m.id) for m in programs.markets if m.friendbuy]
        database = context.resources.duckdb.database
        path = report_path(database)
        with context.resources.duckdb.get_connection() as con:
            result = write_report(con, path, as_of=settings.as_of_datetime().isoformat(timespec="seconds"),
                                  run_id=context.run.run_id, campaign_markets=campaigns, database=str(database))
        for sid, err in result.errors.items():
            context.log.warning(f"report section {sid} could not be built: {err}")
        return MaterializeResult(metadata={
            "path": MetadataValue.path(result.path), "url": MetadataValue.url(f"file://{result.path}"),
            "bytes": MetadataValue.int(result.bytes), "sections_with_data": MetadataValue.json(result.sections),
            "missing_tables": MetadataValue.json(result.missing_tables), "errors": MetadataValue.json(result.errors)})

    return referral_report


def build_published_copy_asset(upstream_keys: Sequence[AssetKey]) -> AssetsDefinition:
    deps = sorted(set(upstream_keys) - {PUBLISHED_KEY}, key=lambda k: k.to_string())

    @asset(key=PUBLISHED_KEY, group_name="reports", kinds={"duckdb"}, pool="duckdb", deps=deps,
           required_resource_keys={"duckdb"},
           description="Read-only copy of the warehouse for analysts (published/referral.duckdb next to the DuckDB "
                       "file), replaced atomically after every run; depends on every other asset so it runs last.")
    def published_copy(context: AssetExecutionContext) -> MaterializeResult:
        database = context.resources.duckdb.database
        with context.resources.duckdb.get_connection() as con:
            result = publish_copy(con, database)
        context.log.info(f"published {result.tables} tables to {result.path} ({result.method})")
        return MaterializeResult(metadata={
            "path": MetadataValue.path(result.path), "bytes": MetadataValue.int(result.bytes),
            "tables": MetadataValue.int(result.tables), "method": result.method})

    return published_copy


def build_analyst_assets(assets: Sequence) -> list[AssetsDefinition]:
    """The report (deps: its input tables present in ``assets``) and the published copy (deps: every
    asset in ``assets`` plus the report). Call after every other asset has been collected."""
    keys = _keys(assets)
    report = build_report_asset(keys)
    return [report, build_published_copy_asset([*keys, REPORT_KEY])]
