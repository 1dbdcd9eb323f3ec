"""The commercetools source plugin: resource, four entities, and their staging specs.

Entities (raw tables ``raw.<id>__<entity>``): ``customers``, ``orders`` (discount codes expanded),
``discount_codes``, ``cart_discounts``. Staging (SQL in ``transform/staging/sql/commercetools_*.sql``):

| stage                       | raw_delta of     | target              |
|-----------------------------|------------------|---------------------|
| ``<id>.customers``          | customers        | staging.customers   |
| ``<id>.orders``             | orders           | staging.orders      |
| ``<id>.order_items``        | orders           | staging.order_items |
| ``<id>.refunds``            | orders           | staging.refunds     |
| ``<id>.coupons``            | discount_codes   | staging.coupons     |
| ``<id>.coupons_by_cart_discount`` | cart_discounts | staging.coupons   |

Order items and refunds read the order mapping (``commercetools_orders.sql``) as ``ct_orders`` so
all three agree on which orders are quarantined. Documentation: docs/sources/commercetools.md.
"""
from __future__ import annotations

import re
from importlib import resources
from typing import Callable

from ..clients.commercetools import CommercetoolsResource
from ..extract.commercetools import make_extractor
from ..transform.staging.runner import StagingSpec
from ..warehouse.landing import raw_table
from . import EntityDef, SourcePlugin

SQL_PACKAGE = "referral_pipeline.transform.staging"
SCOPE = "source = $source"
_LEADING_WITH = re.compile(r"^((?:\s*--[^\n]*\n)*)\s*WITH\s", re.IGNORECASE)


def load_sql(name: str) -> str:
    return resources.files(SQL_PACKAGE).joinpath("sql", name).read_text()


def with_inputs(inputs: dict[str, str], body: str) -> str:
    """``body`` with the named input relations defined as leading CTEs (merged into its own
    ``WITH`` when it has one)."""
    ctes = ",\n".join(f"{name} AS (\n{sql}\n)" for name, sql in inputs.items())
    merged, n = _LEADING_WITH.subn(lambda m: f"{m.group(1)}WITH {ctes},\n", body, count=1)
    return merged if n else f"WITH {ctes}\n{body}"


# the order key a raw order row owns: its derived items and refunds are replaced as a set
ORDER_OWNER = "CAST($source AS VARCHAR) || ':' || pk"


def staging_specs(source_id: str) -> list[StagingSpec]:
    spec = _spec_factory(source_id)
    orders = load_sql("commercetools_orders.sql")
    return [
        spec("customers", "customers", "staging.customers", "customer_record_key", load_sql("commercetools_customers.sql")),
        spec("orders", "orders", "staging.orders", "order_key", orders),
        spec("order_items", "orders", "staging.order_items", "order_item_key",
             with_inputs({"ct_orders": orders}, load_sql("commercetools_order_items.sql")), owner_column="order_key"),
        spec("refunds", "orders", "staging.refunds", "refund_key",
             with_inputs({"ct_orders": orders}, load_sql("commercetools_refunds.sql")), owner_column="order_key"),
        *_coupon_specs(source_id, spec),
    ]


def _spec_factory(source_id: str) -> Callable[..., StagingSpec]:
    """Specs of one instance: parameter ``$source``, deletes limited to the instance's rows.

    ``entity`` is the raw entity read (the staging asset depends on its extraction asset). The
    derived stages use their own row ids as ``source_id``, so the runner's quarantine bookkeeping
    never touches the orders' or the codes' quarantine rows."""
    def spec(name: str, entity: str, target: str, key: str, sql: str, delete_scope: str = SCOPE,
             owner_column: str | None = None) -> StagingSpec:
        return StagingSpec(name=f"{source_id}.{name}", source=source_id, entity=entity,
                           raw=raw_table(source_id, entity), target=target, key=key, sql=sql,
                           params={"source": source_id}, delete_scope=delete_scope,
                           owner_column=owner_column, owner_expr=ORDER_OWNER if owner_column else None)
    return spec


def _coupon_specs(source_id: str, spec: Callable[..., StagingSpec]) -> list[StagingSpec]:
    """Discount codes joined to their cart discounts, from either side of a change."""
    codes, cart = raw_table(source_id, "discount_codes"), raw_table(source_id, "cart_discounts")
    body = load_sql("commercetools_coupons.sql")
    all_cart = f"SELECT pk, load_seq, payload FROM {cart}"
    codes_of_changed_cart = (
        f"SELECT c.pk, c.load_seq, c.payload FROM {codes} c WHERE EXISTS (SELECT 1 FROM raw_delta d WHERE list_contains("
        "list_transform(coalesce(TRY_CAST(CAST(c.payload AS JSON)->'cartDiscounts' AS JSON[]), []), lambda r: r->>'id'), d.pk))")
    return [
        spec("coupons", "discount_codes", "staging.coupons", "coupon_key",
             with_inputs({"ct_codes": "SELECT pk, load_seq, payload FROM raw_delta", "ct_cart_discounts": all_cart}, body)),
        # a changed cart discount re-maps the codes that apply it (good rows only: the codes' own
        # quarantine is the discount-code stage's business); a rebuild must not delete the codes
        # the discount-code stage staged, so this stage only ever replaces the rows it produces
        spec("coupons_by_cart_discount", "cart_discounts", "staging.coupons", "coupon_key",
             "SELECT * FROM (\n" + with_inputs({"ct_codes": codes_of_changed_cart, "ct_cart_discounts": all_cart}, body)
             + "\n) WHERE quarantine_reason IS NULL",
             delete_scope=f"{SCOPE} AND coupon_key IN (SELECT coupon_key FROM staged)"),
    ]


PLUGIN = SourcePlugin(
    type="commercetools",
    make_resource=CommercetoolsResource.from_env_prefix,
    entities=[
        EntityDef("customers", make_extractor("customers"), "commercetools customers (keyset by lastModifiedAt, id)."),
        EntityDef("orders", make_extractor("orders"),
                  "commercetools orders with expanded discount codes (keyset by lastModifiedAt, id)."),
        EntityDef("discount_codes", make_extractor("discount_codes"), "commercetools discount codes."),
        EntityDef("cart_discounts", make_extractor("cart_discounts"), "commercetools cart discounts (enrich the codes)."),
    ],
    staging_specs=staging_specs,
)
