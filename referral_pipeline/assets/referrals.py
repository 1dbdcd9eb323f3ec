"""Referral assets (group ``referrals``): resolved Friendbuy activity, attribution, promo-code
issues, fraud flags, rewards and their ledger. Thin wrappers around ``transform.attribution`` and
``transform.rewards``: each opens one DuckDB connection, runs its stage in one transaction against
the run's ``as_of`` and reports row counts and a preview. A stage whose input tables do not exist
yet (the upstream stage never ran) is skipped with a warning instead of failing the run."""
from dagster import (AssetExecutionContext, AssetKey, AssetsDefinition, AssetSpec, Config, MaterializeResult,
                     MetadataValue, asset, multi_asset)

from ..config.programs import Programs
from ..transform.attribution import (ATTRIBUTION_INPUTS, EVENTS_INPUTS, PROMO_INPUTS, run_attribution,
                                     run_promo_codes, run_referral_events)
from ..transform.rewards import FRAUD_INPUTS, REWARDS_INPUTS, run_fraud, run_rewards
from ..transform.runtime import missing_tables
from ..warehouse.schema import ensure_schema
from .extract import raw_key

GROUP = "referrals"
OWNERS = ["team:data-engineering"]
KINDS = {"duckdb", "sql"}

EVENTS_KEY = AssetKey(["analytics", "referral_events"])
ATTRIBUTION_KEY = AssetKey(["analytics", "referral_attribution"])
PROMO_KEY = AssetKey(["audit", "promo_code_issues"])
FRAUD_KEY = AssetKey(["audit", "fraud_flags"])
REWARDS_KEY = AssetKey(["analytics", "rewards"])
LEDGER_KEY = AssetKey(["analytics", "reward_ledger"])
ORDERS_KEY = AssetKey(["analytics", "orders"])
CUSTOMERS_KEY = AssetKey(["analytics", "customers"])
IDENTITY_MAP_KEY = AssetKey(["identity", "customer_map"])
STAGING_EVENTS_KEY = AssetKey(["staging", "referral_events"])
STAGING_COUPONS_KEY = AssetKey(["staging", "coupons"])


class AttributionConfig(Config):
    """``rebuild``: re-evaluate every order instead of only those whose inputs changed."""

    rebuild: bool = False


def _cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    if not rows:
        return "(empty)"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def table_summary(con, table: str, order_by: str) -> dict:
    """Row count and a five-row markdown preview of ``table`` (identifiers from this module only)."""
    count = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    result = con.execute(f"SELECT * FROM {table} ORDER BY {order_by} LIMIT 5")
    columns = [d[0] for d in result.description]
    return {"dagster/row_count": MetadataValue.int(count),
            "preview": MetadataValue.md(markdown_table(columns, result.fetchall()))}


def skipped(context: AssetExecutionContext, missing: list[str]) -> dict:
    context.log.warning(f"skipped: input tables {missing} do not exist yet (their stage has not run)")
    return {"skipped": True, "missing_inputs": MetadataValue.json(missing)}


def _run(context: AssetExecutionContext, inputs, table: str, order_by: str, stage) -> MaterializeResult:
    """Open the warehouse, check the inputs, run ``stage(con, programs, as_of)``, summarize ``table``."""
    settings = context.resources.settings
    programs, as_of = settings.programs(), settings.as_of_datetime()
    with context.resources.duckdb.get_connection() as con:
        ensure_schema(con)
        missing = missing_tables(con, inputs)
        if missing:
            return MaterializeResult(metadata=skipped(context, missing))
        result = stage(con, programs, as_of)
        meta = table_summary(con, table, order_by)
    context.log.info(f"{table}: {result.as_metadata()}")
    return MaterializeResult(metadata={**meta, "as_of": as_of.isoformat(), "stage": MetadataValue.json(result.as_metadata())})


def build_referral_assets(programs: Programs) -> list[AssetsDefinition]:
    review_keys = [raw_key(s.id, "referral_reward") for s in programs.sources if s.type == "salesforce"]

    @asset(key=EVENTS_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, pool="duckdb",
           deps=[STAGING_EVENTS_KEY, CUSTOMERS_KEY, IDENTITY_MAP_KEY], required_resource_keys={"duckdb", "settings"},
           metadata={"table": "analytics.referral_events"},
           description="Friendbuy activity of the programs' campaigns (shares, clicks, sign-ups, purchases, "
                       "distributed rewards and incentives) with its market and both parties resolved to a "
                       "customer_key through identity.")
    def referral_events(context: AssetExecutionContext) -> MaterializeResult:
        return _run(context, EVENTS_INPUTS, "analytics.referral_events", "load_seq DESC",
                    lambda con, p, as_of: run_referral_events(con, p, as_of))

    @asset(key=ATTRIBUTION_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, pool="duckdb",
           deps=[EVENTS_KEY, ORDERS_KEY, CUSTOMERS_KEY], required_resource_keys={"duckdb", "settings"},
           metadata={"table": "analytics.referral_attribution"},
           description="One row per attributed order: advocate, friend, campaign, method (coupon > friendbuy > "
                       "referral_code > signup), click/sign-up/order times, is_new_customer (product §5).")
    def referral_attribution(context: AssetExecutionContext, config: AttributionConfig) -> MaterializeResult:
        return _run(context, ATTRIBUTION_INPUTS, "analytics.referral_attribution", "load_seq DESC",
                    lambda con, p, as_of: run_attribution(con, p, as_of, context.run.run_id, rebuild=config.rebuild))

    @asset(key=PROMO_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, pool="duckdb",
           deps=[EVENTS_KEY, STAGING_COUPONS_KEY], required_resource_keys={"duckdb", "settings"},
           metadata={"table": "audit.promo_code_issues"},
           description="Problems of the codes Friendbuy distributed, checked against the market's commerce "
                       "platforms: missing, inactive, not_single_use, expired, wrong_market, collision (product §5.1).")
    def promo_code_issues(context: AssetExecutionContext) -> MaterializeResult:
        return _run(context, PROMO_INPUTS, "audit.promo_code_issues", "detected_at DESC, code",
                    lambda con, p, as_of: run_promo_codes(con, p, as_of))

    @asset(key=FRAUD_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, pool="duckdb",
           deps=[ATTRIBUTION_KEY, EVENTS_KEY, ORDERS_KEY, CUSTOMERS_KEY], required_resource_keys={"duckdb", "settings"},
           metadata={"table": "audit.fraud_flags"},
           description="Fraud rule hits on referral sign-ups and attributed orders (SELF_REFERRAL, SAME_IP_AS_ADVOCATE, "
                       "DUPLICATE_IDENTITY, VELOCITY_ADVOCATE, VELOCITY_IP, COUPON_REUSE), never deleted (product §6).")
    def fraud_flags(context: AssetExecutionContext) -> MaterializeResult:
        return _run(context, FRAUD_INPUTS, "audit.fraud_flags", "load_seq DESC",
                    lambda con, p, as_of: run_fraud(con, p, as_of, context.run.run_id))

    reward_deps = [ATTRIBUTION_KEY, FRAUD_KEY, EVENTS_KEY, *review_keys]

    @multi_asset(specs=[AssetSpec(REWARDS_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, deps=reward_deps,
                                  metadata={"table": "analytics.rewards"},
                                  description="Current state of every advocate reward, one per (campaign, friend): "
                                              "status, reason, amount, fraud rules (product §7). Also sets "
                                              "analytics.referral_attribution.reward_key."),
                        AssetSpec(LEDGER_KEY, group_name=GROUP, kinds=KINDS, owners=OWNERS, deps=reward_deps,
                                  metadata={"table": "analytics.reward_ledger"},
                                  description="Append-only history of reward status changes (from/to status, reason, "
                                              "as_of of the run, run id).")],
                 name="rewards", pool="duckdb", required_resource_keys={"duckdb", "settings"}, can_subset=False)
    def rewards(context: AssetExecutionContext):
        settings = context.resources.settings
        programs_, as_of = settings.programs(), settings.as_of_datetime()
        with context.resources.duckdb.get_connection() as con:
            ensure_schema(con)
            missing = missing_tables(con, REWARDS_INPUTS)
            if missing:
                meta = skipped(context, missing)
                yield MaterializeResult(asset_key=REWARDS_KEY, metadata=meta)
                yield MaterializeResult(asset_key=LEDGER_KEY, metadata=meta)
                return
            result = run_rewards(con, programs_, as_of, context.run.run_id)
            rewards_meta = table_summary(con, "analytics.rewards", "updated_at DESC, reward_key")
            ledger_meta = table_summary(con, "analytics.reward_ledger", "load_seq DESC")
        context.log.info(f"analytics.rewards: {result.as_metadata()}")
        stage = {"as_of": as_of.isoformat(), "stage": MetadataValue.json(result.as_metadata())}
        yield MaterializeResult(asset_key=REWARDS_KEY, metadata={**rewards_meta, **stage})
        yield MaterializeResult(asset_key=LEDGER_KEY,
                                metadata={**ledger_meta, "appended": MetadataValue.int(result.ledger_rows)})

    return [referral_events, referral_attribution, promo_code_issues, fraud_flags, rewards]
