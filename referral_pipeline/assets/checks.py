"""Data-quality asset checks (product §9): one ``data_quality`` check per validated table.

Each check runs the table's suite (``referral_pipeline.quality``): Great Expectations on the rows
changed since the last validation, SQL for whole-table rules. Checks on the inputs of pushes
(``analytics/customers``, ``analytics/orders``, ``analytics/referral_attribution``,
``analytics/rewards``) are ``blocking`` with severity ERROR: when they fail, the push assets
downstream do not run in that run. The others are WARN.

Checks are built only for asset keys present in the definitions (a suite whose table is written
by an asset with another key is attached to the asset whose ``table`` metadata names it).
"""
from collections.abc import Iterable, Sequence

from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetChecksDefinition, AssetKey,
                     AssetsDefinition, Config, MetadataValue, asset_check)

from ..quality.runner import SuiteResult, run_suite
from ..quality.suites import SUITES, Suite

CHECK_NAME = "data_quality"


class QualityCheckConfig(Config):
    """``full``: ignore the stored progress and validate every row of the table (after a suite change)."""

    full: bool = False


def _asset_tables(assets: Iterable) -> dict[AssetKey, str | None]:
    """Asset key -> its ``table`` metadata (None when it has none), for every asset in ``assets``."""
    out: dict[AssetKey, str | None] = {}
    for item in assets:
        specs = item.specs if isinstance(item, AssetsDefinition) else [item] if hasattr(item, "key") else []
        for spec in specs:
            table = (spec.metadata or {}).get("table")
            out[spec.key] = getattr(table, "value", table) if table is not None else None
    return out


def resolve_asset_key(suite: Suite, asset_tables: dict[AssetKey, str | None]) -> AssetKey | None:
    own = AssetKey(list(suite.asset_path))
    if own in asset_tables:
        return own
    for key, table in asset_tables.items():
        if table == suite.table:
            return key
    return None


def check_metadata(result: SuiteResult) -> dict:
    failed = [e.name for e in result.failed]
    meta = {
        "table": result.table,
        "table_exists": result.table_exists,
        "passed_expectations": MetadataValue.int(len(result.expectations) - len(failed)),
        "failed_expectations": MetadataValue.json(failed),
        "validated_rows": MetadataValue.int(result.validated_rows),
        "delta_rows": MetadataValue.int(result.delta_rows),
        "reopened_rows": MetadataValue.int(result.reopened_rows),
        "table_rows": MetadataValue.int(result.table_rows),
        "seconds": MetadataValue.float(float(result.seconds)),
    }
    if result.table_exists:
        meta.update({
            "strategy": result.strategy or "-", "mode": result.mode,
            "expectations": MetadataValue.md(result.markdown()),
            "results": MetadataValue.json([
                {"name": e.name, "kind": e.kind, "expectation": e.expectation, "column": e.column,
                 "success": e.success, "element_count": e.element_count, "unexpected_count": e.unexpected_count,
                 "unexpected_sample": e.unexpected_sample, "failing_keys": e.failing_keys, "note": e.note}
                for e in result.expectations]),
        })
    else:
        meta["note"] = f"{result.table} does not exist yet: nothing to validate"
    return meta


def build_quality_check(suite: Suite, asset_key: AssetKey) -> AssetChecksDefinition:
    severity = AssetCheckSeverity.ERROR if suite.blocking else AssetCheckSeverity.WARN
    description = (f"Great Expectations suite on {suite.table} ({len(suite.row)} row-level expectations on the changed "
                   f"rows, {len(suite.table_checks)} whole-table SQL checks). "
                   + ("Blocking: gates the pushes downstream." if suite.blocking else "Warning only."))

    @asset_check(asset=asset_key, name=CHECK_NAME, blocking=suite.blocking, description=description,
                 required_resource_keys={"duckdb", "settings"}, pool="duckdb",
                 metadata={"table": suite.table, "severity": severity.value,
                           "expectations": [e.name for e in suite.row] + [t.name for t in suite.table_checks]})
    def _check(context: AssetCheckExecutionContext, config: QualityCheckConfig) -> AssetCheckResult:
        programs = context.resources.settings.programs()
        with context.resources.duckdb.get_connection() as con:
            result = run_suite(con, suite, run_id=context.run.run_id, markets=[m.id for m in programs.markets],
                               full=config.full)
        if result.failed:
            context.log.warning(f"{suite.table}: failed {[e.name for e in result.failed]}")
        return AssetCheckResult(passed=result.success, severity=severity, metadata=check_metadata(result))

    return _check


def build_quality_checks(assets: Sequence, suites: Sequence[Suite] = SUITES) -> list[AssetChecksDefinition]:
    """One check per suite whose table has an asset in ``assets`` (AssetsDefinitions or AssetSpecs)."""
    asset_tables = _asset_tables(assets)
    checks = []
    for suite in suites:
        key = resolve_asset_key(suite, asset_tables)
        if key is not None:
            checks.append(build_quality_check(suite, key))
    return checks
