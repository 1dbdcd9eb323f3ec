"""Staging assets (group ``staging``): one per canonical table, fed by every source that maps into it."""
from collections import defaultdict

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset

from ..transform.staging.runner import StagingSpec, ensure_staging_schema, run_staging
from ..warehouse.schema import ensure_schema
from .extract import raw_key

TABLE_DESCRIPTIONS = {
    "staging.customers": "Customers of every source in one shape (normalized email, consent, country).",
    "staging.orders": "Orders of every source: normalized status, money in DECIMAL major units, market, "
                      "coupon/referral/attribution fields.",
    "staging.order_items": "Order lines of every source.",
    "staging.refunds": "Refunds and cancellations of every source.",
    "staging.coupons": "Promotion/coupon codes that exist in the commerce platforms.",
    "staging.referral_events": "Friendbuy referral activity: shares, clicks, sign-ups, purchases, rewards.",
}


class StagingConfig(Config):
    """``rebuild`` re-maps every raw row (after a mapping change) instead of only the changed ones."""

    rebuild: bool = False


def build_staging_assets(specs_with_instance: list[tuple[StagingSpec, str]]) -> list[AssetsDefinition]:
    by_target: dict[str, list[tuple[StagingSpec, str]]] = defaultdict(list)
    for spec, instance_id in specs_with_instance:
        by_target[spec.target].append((spec, instance_id))
    return [_staging_asset(target, items) for target, items in sorted(by_target.items())]


def _staging_asset(target: str, items: list[tuple[StagingSpec, str]]) -> AssetsDefinition:
    schema, table = target.split(".")
    deps = sorted({raw_key(instance_id, spec.entity) for spec, instance_id in items}, key=lambda k: k.to_string())

    @asset(key=AssetKey([schema, table]), group_name="staging", kinds={"duckdb", "sql"}, pool="duckdb",
           deps=deps, required_resource_keys={"duckdb", "settings"}, description=TABLE_DESCRIPTIONS.get(target, target),
           metadata={"table": target})
    def _stage(context: AssetExecutionContext, config: StagingConfig) -> MaterializeResult:
        programs = context.resources.settings.programs()
        results = []
        with context.resources.duckdb.get_connection() as con:
            ensure_schema(con)
            ensure_staging_schema(con, programs)
            for spec, _ in items:
                results.append(run_staging(con, spec, context.run_id, rebuild=config.rebuild))
            rows = con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]  # fetchone leaves the result open
            preview = con.sql(f"SELECT * FROM {target} ORDER BY load_seq DESC LIMIT 5").df()
        metadata = {r.name: MetadataValue.json(r.as_metadata()) for r in results}
        return MaterializeResult(metadata={
            **metadata, "dagster/row_count": MetadataValue.int(rows),
            "rows_staged": sum(r.staged for r in results), "rows_quarantined": sum(r.quarantined for r in results),
            "preview": MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "(empty)")})

    return _stage
