"""Extraction assets (group ``extract``): one per source instance and entity, ``raw/<source>/<entity>``."""
from datetime import datetime, timedelta, timezone

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, Config, MaterializeResult, MetadataValue, asset

from ..extract.base import duckdb_settings, extract
from ..resources import extract_checkpoint_threshold, extract_memory_limit
from ..sources import EntityDef, SourcePlugin
from ..warehouse.schema import ensure_schema


class ExtractConfig(Config):
    """Launchpad options: ``full_refresh`` resets the cursor (re-reads everything, merged by key);
    ``window_start``/``window_end`` (ISO-8601) re-pull a time window without moving the cursor."""

    full_refresh: bool = False
    window_start: str | None = None
    window_end: str | None = None


def _parse(ts: str | None) -> datetime | None:
    if not ts:
        return None
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def raw_key(instance_id: str, entity: str) -> AssetKey:
    return AssetKey(["raw", instance_id, entity])


def build_extract_asset(plugin: SourcePlugin, instance, entity: EntityDef) -> AssetsDefinition:
    api_key = f"api_{instance.id}"

    @asset(key=raw_key(instance.id, entity.entity), group_name="extract", kinds={plugin.type, "duckdb"},
           pool="duckdb", required_resource_keys={"duckdb", api_key}, owners=plugin.owners,
           description=f"{entity.description} Incremental pull from {plugin.type} instance '{instance.id}' "
                       f"into raw.{instance.id}__{entity.entity} (merged by key, cursor in the same commit).",
           metadata={"source": instance.id, "entity": entity.entity, "table": f"raw.{instance.id}__{entity.entity}"})
    def _extract(context: AssetExecutionContext, config: ExtractConfig) -> MaterializeResult:
        client = getattr(context.resources, api_key).client()
        extractor = entity.make_extractor(client, instance)
        window = None
        if config.window_start or config.window_end:
            window = (_parse(config.window_start) or datetime(1970, 1, 1, tzinfo=timezone.utc),
                      _parse(config.window_end) or datetime.now(timezone.utc))
        with context.resources.duckdb.get_connection() as con, \
                duckdb_settings(con, memory_limit=extract_memory_limit(),
                                checkpoint_threshold=extract_checkpoint_threshold()):
            ensure_schema(con)
            result = extract(con, extractor, context.run_id,
                             overlap=timedelta(seconds=getattr(instance, "overlap_seconds", 300)),
                             full_refresh=config.full_refresh, window=window)
            rows = con.execute(f"SELECT count(*) FROM raw.{instance.id}__{entity.entity}").fetchone()[0]
        metadata = result.as_metadata()
        context.log.info(f"{instance.id}.{entity.entity}: {metadata}")
        return MaterializeResult(metadata={**metadata, "dagster/row_count": MetadataValue.int(rows)})

    return _extract
