"""Salesforce as a source: Accounts, Contacts, Orders, OrderItems and Referral_Reward__c.

Each entity lands in ``raw.<instance>__<entity>`` (``extract/salesforce.py``). Staging maps
Contacts to ``staging.customers``, Orders to ``staging.orders`` and ``staging.refunds``
(refunds and cancellations derived from the order), and OrderItems to ``staging.order_items``
(SQL in ``transform/staging/sql/salesforce_*.sql``). Accounts and Referral_Reward__c stay raw:
the first for reference, the second for the reviewers' decisions read by the rewards stage.
"""
from __future__ import annotations

from importlib import resources

from ..clients.salesforce import SalesforceResource
from ..extract.salesforce import ENTITIES, make_extractor
from ..transform.staging.runner import StagingSpec
from . import EntityDef, SourcePlugin


def _sql(name: str) -> str:
    return resources.files("referral_pipeline.transform.staging").joinpath(f"sql/{name}.sql").read_text()


ORDERS_SQL = _sql("salesforce_orders")
REFUNDS_SQL = _sql("salesforce_refunds").replace("{orders_sql}", ORDERS_SQL)
CUSTOMERS_SQL = _sql("salesforce_customers")
ORDER_ITEMS_SQL = _sql("salesforce_order_items")

# (stage, raw entity, target, key, sql, owner column, owner expression over raw_delta): derived rows
# are replaced as a set, so a refund or a deleted item that disappeared at the source leaves staging
STAGES = (
    ("customers", "contact", "staging.customers", "customer_record_key", CUSTOMERS_SQL, None, None),
    ("orders", "order", "staging.orders", "order_key", ORDERS_SQL, None, None),
    ("refunds", "order", "staging.refunds", "refund_key", REFUNDS_SQL, "order_key",
     "CAST($source AS VARCHAR) || ':' || pk"),
    ("order_items", "order_item", "staging.order_items", "order_item_key", ORDER_ITEMS_SQL, "order_item_key",
     "CAST($source AS VARCHAR) || ':' || coalesce(CAST(payload AS JSON)->>'OrderId', '') || ':' || pk"),
)


def staging_specs(instance_id: str) -> list[StagingSpec]:
    """The four Salesforce stages of one instance, each limited to this instance's rows."""
    return [StagingSpec(name=f"{instance_id}.{stage}", source=instance_id, entity=entity,
                        raw=f"raw.{instance_id}__{entity}", target=target, key=key, sql=sql,
                        params={"source": instance_id}, delete_scope="source = $source",
                        owner_column=owner_column, owner_expr=owner_expr)
            for stage, entity, target, key, sql, owner_column, owner_expr in STAGES]


PLUGIN = SourcePlugin(
    type="salesforce",
    make_resource=SalesforceResource.from_env_prefix,
    entities=[EntityDef(spec.entity, make_extractor(spec.entity), spec.description) for spec in ENTITIES.values()],
    staging_specs=staging_specs,
)
