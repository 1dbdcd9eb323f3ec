"""Identity assets (group ``identity``): the customer map, ``analytics.orders`` and ``analytics.customers``.

One multi-asset, because the three tables are written in one DuckDB transaction
(``transform.identity.runner.run_identity``); docs/identity.md describes the rules and tables.
"""
from dagster import (AssetExecutionContext, AssetKey, AssetSpec, AssetsDefinition, Config, MaterializeResult,
                     MetadataValue, multi_asset)

from ..transform.identity.runner import run_identity

OWNERS = ["team:data-engineering"]
STAGING = {name: AssetKey(["staging", name]) for name in ("customers", "orders", "referral_events")}
CUSTOMER_MAP = AssetKey(["identity", "customer_map"])
ORDERS = AssetKey(["analytics", "orders"])
CUSTOMERS = AssetKey(["analytics", "customers"])

SPECS = [
    AssetSpec(CUSTOMER_MAP, group_name="identity", kinds={"duckdb", "sql"}, owners=OWNERS,
              deps=[STAGING["customers"], STAGING["orders"], STAGING["referral_events"]],
              description="identity.customer_map and identity.email_index: every customer record, guest email and "
                          "Friendbuy person mapped to a customer_key that never changes; identity.referral_parties: "
                          "the advocate and friend of every Friendbuy event resolved to a customer_key.",
              metadata={"table": "identity.customer_map"}),
    AssetSpec(ORDERS, group_name="identity", kinds={"duckdb", "sql"}, owners=OWNERS,
              deps=[CUSTOMER_MAP, STAGING["orders"]],
              description="Every staged order with its customer_key (customer record, else guest email).",
              metadata={"table": "analytics.orders"}),
    AssetSpec(CUSTOMERS, group_name="identity", kinds={"duckdb", "sql"}, owners=OWNERS,
              deps=[CUSTOMER_MAP, ORDERS, STAGING["customers"], STAGING["referral_events"]],
              description="One golden row per customer_key: fields by system-of-record precedence, market, "
                          "first order, order count and net revenue of real (not cancelled/declined/incomplete) "
                          "orders, latest Friendbuy referral code.",
              metadata={"table": "analytics.customers"}),
]

PREVIEWS = {
    CUSTOMER_MAP: ("identity.customer_map", "SELECT * FROM identity.customer_map ORDER BY assigned_at DESC, identity_key LIMIT 5"),
    ORDERS: ("analytics.orders", "SELECT order_key, customer_key, market_id, placed_at, status, currency, net_amount "
                                 "FROM analytics.orders ORDER BY load_seq DESC LIMIT 5"),
    CUSTOMERS: ("analytics.customers", "SELECT customer_key, email, market_id, first_order_at, orders_count, net_revenue, "
                                       "referral_code FROM analytics.customers ORDER BY updated_at DESC NULLS LAST LIMIT 5"),
}


class IdentityConfig(Config):
    """``rebuild`` recomputes analytics.orders, analytics.customers and the stage's bookkeeping from all
    staged rows (after a staging ``rebuild``); the customer map and email index are kept, so keys stay."""

    rebuild: bool = False


@multi_asset(specs=SPECS, name="identity_stage", pool="duckdb", required_resource_keys={"duckdb", "settings"},
             can_subset=False)
def identity_assets(context: AssetExecutionContext, config: IdentityConfig):
    settings = context.resources.settings
    with context.resources.duckdb.get_connection() as con:
        result = run_identity(con, settings.programs(), context.run.run_id, settings.as_of_datetime(),
                              rebuild=config.rebuild)
        tables = {}
        for key, (table, preview_sql) in PREVIEWS.items():
            rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            preview = con.sql(preview_sql).df()
            tables[key] = (rows, preview)
        index_rows = con.execute("SELECT count(*) FROM identity.email_index").fetchall()[0][0]
    context.log.info(f"identity: {result.as_metadata()}")
    run_metadata = MetadataValue.json(result.as_metadata())
    extra = {
        CUSTOMER_MAP: {"new_identities": MetadataValue.json(result.new_identities), "new_emails": result.new_emails,
                       "email_index_rows": MetadataValue.int(index_rows)},
        ORDERS: {"orders_changed": result.orders_changed, "orders_removed": result.orders_removed},
        CUSTOMERS: {"customers_recomputed": result.customers_recomputed},
    }
    for key, (rows, preview) in tables.items():
        yield MaterializeResult(asset_key=key, metadata={
            "dagster/row_count": MetadataValue.int(rows), **extra[key], "identity_run": run_metadata,
            "preview": MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "(empty)")})


def build_identity_assets() -> list[AssetsDefinition]:
    return [identity_assets]
