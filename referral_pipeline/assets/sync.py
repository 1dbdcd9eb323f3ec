"""Sync assets (group ``sync``): push changed records to the destinations (docs/sync.md).

One asset ``sync/<target>`` per destination instance, each a thin wrapper around a plain
``run_<destination>_sync`` function of ``referral_pipeline.sync``. Every asset reads the push inputs
(``analytics/*``), so the blocking data-quality checks on those assets gate it: when one fails, no
push runs in that run. Targets that write loyalty values (Salesforce, commerce) run after the Yotpo
pull of the same run.
"""
import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset

from ..clients.yotpo import YotpoResource
from ..config.programs import Programs
from ..sync.engine import DestinationResult, SyncSettings
from ..sync.bigcommerce import run_bigcommerce_sync
from ..sync.commerce import commerce_instances
from ..sync.commercetools import run_commercetools_sync
from ..sync.friendbuy import friendbuy_instances, run_friendbuy_sync
from ..sync.salesforce import run_salesforce_sync, salesforce_instances
from ..sync.yotpo import run_yotpo_sync, yotpo_instances
from ..warehouse.schema import ensure_schema

PUSH_INPUTS = (AssetKey(["analytics", "customers"]), AssetKey(["analytics", "orders"]), AssetKey(["staging", "refunds"]))
FRIENDBUY_INPUTS = PUSH_INPUTS + (AssetKey(["staging", "order_items"]), AssetKey(["staging", "referral_events"]))
COMMERCE_INPUTS = (AssetKey(["identity", "customer_map"]), AssetKey(["staging", "customers"]),
                   AssetKey(["analytics", "customers"]), AssetKey(["analytics", "rewards"]))
SALESFORCE_INPUTS = (AssetKey(["analytics", "customers"]), AssetKey(["analytics", "referral_attribution"]),
                     AssetKey(["analytics", "rewards"]), AssetKey(["analytics", "referral_events"]))


class SyncConfig(Config):
    """Overrides; unset fields follow the job (tag ``referral/job``): the ``nightly`` job re-sends
    failed records even when unchanged (``retry_failed``) and pulls destination state back (``pull``:
    Yotpo points/tier); ``hourly`` does neither (due ``retry`` records are re-sent by every run).
    ``limit`` caps records per entity and run; ``concurrency``/``max_attempts`` override the target's
    defaults."""

    retry_failed: Optional[bool] = None
    limit: Optional[int] = None
    pull: Optional[bool] = None
    concurrency: Optional[int] = None
    max_attempts: int = 8


JOB_TAG = "referral/job"


def job_defaults(job: str | None) -> dict[str, bool]:
    """What a run does by default: nightly (and ad-hoc materializations) pull and retry failed
    records; hourly only pushes deltas and due retries (product §9)."""
    hourly = job == "hourly"
    return {"retry_failed": not hourly, "pull": not hourly}


@dataclass(frozen=True)
class SyncTarget:
    """One destination instance: its asset name, the resource that gives its client, the markets it
    serves, the assets it reads and the plain function that pushes (``run(con, client, run_id=,
    settings=, pull=)``)."""

    name: str
    resource_key: str
    markets: tuple[str, ...]
    deps: tuple[AssetKey, ...]
    description: str
    run: Callable[..., DestinationResult]
    default_concurrency: int = 4    # requests in flight; the client's token bucket keeps the rate
    make_resource: Optional[Callable[[], Any]] = None   # None: the resource exists (a source instance)
    make_client: Callable[[Any], Any] = lambda resource: resource.client()

    @property
    def key(self) -> AssetKey:
        return AssetKey(["sync", self.name])


def yotpo_resource_key(destination: str) -> str:
    return f"api_{destination}"


def yotpo_targets(programs: Programs) -> list[SyncTarget]:
    def runner(instance):
        return lambda con, client, *, run_id, settings, pull: run_yotpo_sync(
            con, client, instance, run_id=run_id, settings=settings, pull=pull)

    return [SyncTarget(inst.destination, yotpo_resource_key(inst.destination), inst.markets, PUSH_INPUTS,
                       f"Push customers, orders and refunds of markets {', '.join(inst.markets)} to Yotpo Loyalty "
                       f"({inst.env_prefix}_*), then pull points, VIP tier and referral code.", runner(inst),
                       default_concurrency=8, make_resource=partial(YotpoResource.from_env_prefix, inst.env_prefix))
            for inst in yotpo_instances(programs)]


def friendbuy_targets(programs: Programs) -> list[SyncTarget]:
    """One per Friendbuy account; its client is the extraction resource's push client (paced at the
    push rate). ``<PREFIX>_ORDER_ID_DEDUP=true`` declares that the account ignores or rejects a
    repeated purchase ``orderId`` (confirmed with Friendbuy), so in-doubt purchases may be re-sent."""
    by_prefix = {i.env_prefix: i.id for i in programs.friendbuy_instances()}

    def runner(instance):
        def run(con, client, *, run_id, settings, pull):
            dedup = os.environ.get(f"{instance.env_prefix}_ORDER_ID_DEDUP", "").lower() in ("1", "true", "yes")
            return run_friendbuy_sync(con, client, instance, run_id=run_id, settings=settings, order_id_dedup=dedup)
        return run

    return [SyncTarget(inst.destination, f"api_{by_prefix[inst.env_prefix]}", inst.markets, FRIENDBUY_INPUTS,
                       f"Push customers, purchases (once per order) and refund/cancellation events of markets "
                       f"{', '.join(inst.markets)} to Friendbuy ({inst.env_prefix}_*).", runner(inst),
                       default_concurrency=8, make_client=lambda resource: resource.push_client())
            for inst in friendbuy_instances(programs)]


def salesforce_targets(programs: Programs, after: tuple[AssetKey, ...]) -> list[SyncTarget]:
    """Write-back to each Salesforce org (Contact fields, Referral__c, Referral_Reward__c), after the
    Yotpo pull of the same run (``after``) so loyalty values are current."""
    def runner(instance):
        return lambda con, client, *, run_id, settings, pull: run_salesforce_sync(
            con, client, instance, run_id=run_id, settings=settings)

    return [SyncTarget(inst.destination, f"api_{inst.source_id}", inst.markets, SALESFORCE_INPUTS + after,
                       f"Write referral codes and loyalty values to Contacts, and Referral__c / Referral_Reward__c "
                       f"of markets {', '.join(inst.markets)}, to Salesforce ({inst.env_prefix}_*).", runner(inst))
            for inst in salesforce_instances(programs)]


def commerce_targets(programs: Programs, after: tuple[AssetKey, ...]) -> list[SyncTarget]:
    """Write-back to each commerce store: referral code, reward status and loyalty points on the
    customer (commercetools custom fields, BigCommerce attribute values), after the Yotpo pull."""
    runners = {"commercetools": run_commercetools_sync, "bigcommerce": run_bigcommerce_sync}
    what = {"commercetools": "custom fields (type referral-customer)", "bigcommerce": "attribute values"}

    def runner(instance):
        run = runners[instance.source_type]
        return lambda con, client, *, run_id, settings, pull: run(con, client, instance, run_id=run_id,
                                                                  settings=settings)

    return [SyncTarget(inst.destination, f"api_{inst.destination}", (), COMMERCE_INPUTS + after,
                       f"Write referral code, reward status and loyalty points to the {inst.source_type} customers of "
                       f"source {inst.destination} as {what[inst.source_type]} ({inst.env_prefix}_*).", runner(inst))
            for kind in ("commercetools", "bigcommerce") for inst in commerce_instances(programs, kind)]


def sync_targets(programs: Programs) -> list[SyncTarget]:
    """Every destination instance of the programs file, in a stable order."""
    yotpo = yotpo_targets(programs)
    loyalty = tuple(t.key for t in yotpo)
    return [*yotpo, *friendbuy_targets(programs), *salesforce_targets(programs, loyalty),
            *commerce_targets(programs, loyalty)]


def build_sync_assets(programs: Programs, targets: list[SyncTarget] | None = None) -> list[AssetsDefinition]:
    return [_sync_asset(t) for t in (targets if targets is not None else sync_targets(programs))]


def _settings(target: SyncTarget, config: SyncConfig, defaults: dict[str, bool]) -> SyncSettings:
    retry_failed = defaults["retry_failed"] if config.retry_failed is None else config.retry_failed
    return SyncSettings(concurrency=config.concurrency or target.default_concurrency,
                        max_attempts=config.max_attempts, retry_failed=retry_failed, limit=config.limit)


def _sync_asset(target: SyncTarget) -> AssetsDefinition:
    @asset(key=target.key, group_name="sync", kinds={"duckdb", "python"}, pool="duckdb", deps=list(target.deps),
           required_resource_keys={"duckdb", "settings", target.resource_key}, description=target.description,
           metadata={"destination": target.name, "markets": ", ".join(target.markets)})
    def _sync(context: AssetExecutionContext, config: SyncConfig) -> MaterializeResult:
        client = target.make_client(getattr(context.resources, target.resource_key))
        defaults = job_defaults(context.run.tags.get(JOB_TAG))
        pull = defaults["pull"] if config.pull is None else config.pull
        with context.resources.duckdb.get_connection() as con:
            ensure_schema(con)
            result = target.run(con, client, run_id=context.run.run_id, settings=_settings(target, config, defaults),
                                pull=pull)
            failed = con.sql("""SELECT entity, record_key, status, attempts, last_status_code, left(last_error, 120) AS error
                                FROM ops.failed_payloads WHERE destination = ? ORDER BY entity, record_key LIMIT 10""",
                             params=[result.destination]).df()
        return MaterializeResult(metadata=sync_metadata(result, client, failed))

    return _sync


def sync_metadata(result: DestinationResult, client: Any, failed) -> dict[str, Any]:
    totals = result.totals()
    errors = [e | {"entity": name} for name, r in result.entities.items() for e in r.errors][:10]
    stats = getattr(client, "stats", None)
    return {
        **{k: MetadataValue.int(v) if isinstance(v, int) else MetadataValue.float(float(v)) for k, v in totals.items()},
        "achieved_requests_per_second": MetadataValue.float(float(totals["requests_per_second"])),
        "by_entity": MetadataValue.json({k: r.as_metadata() for k, r in result.entities.items()}),
        "http": MetadataValue.json(stats.as_metadata() if stats is not None else {}),
        "error_sample": MetadataValue.md(_errors_md(errors)),
        "failed_payloads": MetadataValue.md(failed.to_markdown(index=False) if len(failed) else "(none)"),
    }


def _errors_md(errors: list[dict]) -> str:
    if not errors:
        return "(none)"
    lines = ["| entity | record_key | status | error |", "|---|---|---|---|"]
    for e in errors:
        text = str(e.get("error") or "").replace("|", "\\|").replace("\n", " ")[:160]
        lines.append(f"| {e['entity']} | {e['record_key']} | {e.get('status_code')} | {text} |")
    return "\n".join(lines)
