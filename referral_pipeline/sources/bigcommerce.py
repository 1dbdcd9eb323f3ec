"""The BigCommerce source plugin: resource, four entities, and their staging specs.

Entities (raw tables ``raw.<id>__<entity>``): ``customers`` (v3), ``orders`` (v2, line items
and coupons inline), ``refunds`` (v3), ``coupons`` (v2, no modification stamp: nightly only).
Staging (SQL in ``transform/staging/sql/bigcommerce_*.sql``):

| stage                 | raw_delta of | target              |
|-----------------------|--------------|---------------------|
| ``<id>.customers``    | customers    | staging.customers   |
| ``<id>.orders``       | orders       | staging.orders      |
| ``<id>.order_items``  | orders       | staging.order_items |
| ``<id>.refunds``      | refunds      | staging.refunds     |
| ``<id>.coupons``      | coupons      | staging.coupons     |

Order items read the order mapping (``bigcommerce_orders.sql``) as ``bc_orders`` so both agree on
which orders are quarantined. Documentation: docs/sources/bigcommerce.md.
"""
from __future__ import annotations

from importlib import resources

from ..clients.bigcommerce import BigCommerceResource
from ..extract.bigcommerce import make_extractor
from ..transform.staging.runner import StagingSpec
from ..warehouse.landing import raw_table
from . import EntityDef, SourcePlugin

SQL_PACKAGE = "referral_pipeline.transform.staging"


def load_sql(name: str) -> str:
    return resources.files(SQL_PACKAGE).joinpath("sql", name).read_text()


def order_items_sql() -> str:
    """The order-items mapping over the orders mapping (a CTE named ``bc_orders``)."""
    return f"WITH bc_orders AS (\n{load_sql('bigcommerce_orders.sql')}\n)\n{load_sql('bigcommerce_order_items.sql')}"


def staging_specs(source_id: str) -> list[StagingSpec]:
    params = {"source": source_id}

    def spec(name: str, entity: str, target: str, key: str, sql: str, owner: bool = False) -> StagingSpec:
        # entity = the raw entity read; derived stages (order items) use their own row ids as
        # source_id, so the runner's quarantine bookkeeping never touches the orders' rows
        return StagingSpec(name=f"{source_id}.{name}", source=source_id, entity=entity,
                           raw=raw_table(source_id, entity), target=target, key=key, sql=sql,
                           params=params, delete_scope="source = $source",
                           owner_column="order_key" if owner else None,
                           owner_expr="CAST($source AS VARCHAR) || ':' || pk" if owner else None)

    return [
        spec("customers", "customers", "staging.customers", "customer_record_key", load_sql("bigcommerce_customers.sql")),
        spec("orders", "orders", "staging.orders", "order_key", load_sql("bigcommerce_orders.sql")),
        spec("order_items", "orders", "staging.order_items", "order_item_key", order_items_sql(), owner=True),
        spec("refunds", "refunds", "staging.refunds", "refund_key", load_sql("bigcommerce_refunds.sql")),
        spec("coupons", "coupons", "staging.coupons", "coupon_key", load_sql("bigcommerce_coupons.sql")),
    ]


PLUGIN = SourcePlugin(
    type="bigcommerce",
    make_resource=BigCommerceResource.from_env_prefix,
    entities=[
        EntityDef("customers", make_extractor("customers"),
                  "BigCommerce v3 customers with attributes and addresses (by date_modified, cursor paging)."),
        EntityDef("orders", make_extractor("orders"),
                  "BigCommerce v2 orders with consignment line items and applied coupons (by date_modified, "
                  "stamp keyset)."),
        EntityDef("refunds", make_extractor("refunds"), "BigCommerce v3 order refunds (by created)."),
        EntityDef("coupons", make_extractor("coupons"),
                  "BigCommerce v2 coupons, read in full (no modification stamp).", nightly_only=True),
    ],
    staging_specs=staging_specs,
)
