"""Sync assets (group ``sync``): push changed records to the destinations (docs/sync.md).

One asset per Yotpo instance (``sync/yotpo``): customers, orders, refunds through the sync engine,
then the loyalty pull into ``ops.loyalty_snapshot``. The Yotpo resource is keyed ``api_<destination>``
(``YotpoResource.from_env_prefix(<env_prefix>)``). Not registered in ``definitions.py`` yet (the lead
wires it after the upstream stages, behind their blocking checks).
"""
from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset

from ..config.programs import Programs
from ..sync.engine import SyncSettings
from ..sync.yotpo import YotpoInstance, run_yotpo_sync, yotpo_instances
from ..warehouse.schema import ensure_schema

YOTPO_DEPS = [AssetKey(["analytics", "customers"]), AssetKey(["analytics", "orders"]), AssetKey(["staging", "refunds"])]


class SyncConfig(Config):
    """``retry_failed`` re-sends failed records even when unchanged (nightly); ``limit`` caps records
    per entity and run; ``pull`` reads points/tier/referral code back."""

    retry_failed: bool = False
    limit: int | None = None
    pull: bool = True
    concurrency: int = 4
    max_attempts: int = 8


def yotpo_resource_key(instance: YotpoInstance) -> str:
    return f"api_{instance.destination}"


def build_sync_assets(programs: Programs) -> list[AssetsDefinition]:
    return [_yotpo_asset(inst) for inst in yotpo_instances(programs)]


def _yotpo_asset(instance: YotpoInstance) -> AssetsDefinition:
    resource_key = yotpo_resource_key(instance)

    @asset(key=AssetKey(["sync", instance.destination]), group_name="sync", kinds={"duckdb", "python"},
           pool="duckdb", deps=YOTPO_DEPS, required_resource_keys={"duckdb", "settings", resource_key},
           description=f"Push customers, orders and refunds of markets {', '.join(instance.markets)} to Yotpo "
                       f"Loyalty ({instance.env_prefix}_*), then pull points, VIP tier and referral code.",
           metadata={"destination": instance.destination, "markets": ", ".join(instance.markets)})
    def _sync(context: AssetExecutionContext, config: SyncConfig) -> MaterializeResult:
        client = getattr(context.resources, resource_key).client()
        settings = SyncSettings(concurrency=config.concurrency, max_attempts=config.max_attempts,
                                retry_failed=config.retry_failed, limit=config.limit)
        with context.resources.duckdb.get_connection() as con:
            ensure_schema(con)
            result = run_yotpo_sync(con, client, instance, run_id=context.run.run_id, settings=settings,
                                    pull=config.pull)
            failed = con.sql("""SELECT entity, record_key, status, attempts, last_status_code, left(last_error, 120) AS error
                                FROM ops.failed_payloads WHERE destination = ? ORDER BY entity, record_key LIMIT 10""",
                             params=[instance.destination]).df()
        totals = result.totals()
        errors = [e | {"entity": name} for name, r in result.entities.items() for e in r.errors][:10]
        return MaterializeResult(metadata={
            **{k: MetadataValue.int(v) if isinstance(v, int) else MetadataValue.float(float(v)) for k, v in totals.items()},
            "achieved_requests_per_second": MetadataValue.float(float(totals["requests_per_second"])),
            "by_entity": MetadataValue.json({k: r.as_metadata() for k, r in result.entities.items()}),
            "http": MetadataValue.json(client.stats.as_metadata()),
            "error_sample": MetadataValue.md(_errors_md(errors)),
            "failed_payloads": MetadataValue.md(failed.to_markdown(index=False) if len(failed) else "(none)"),
        })

    return _sync


def _errors_md(errors: list[dict]) -> str:
    if not errors:
        return "(none)"
    lines = ["| entity | record_key | status | error |", "|---|---|---|---|"]
    for e in errors:
        text = str(e.get("error") or "").replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {e['entity']} | {e['record_key']} | {e.get('status_code')} | {text} |")
    return "\n".join(lines)
