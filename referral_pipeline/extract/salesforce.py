"""Incremental extraction of Salesforce sObjects by ``SystemModstamp`` (REST, or Bulk API 2.0 for big deltas).

One ``SalesforceExtractor`` per entity (``account``, ``contact``, ``order``, ``order_item``,
``referral_reward``). Each run asks for the rows changed since the cursor, deleted ones included
(``queryAll``; ``IsDeleted`` marks them), in keyset order::

    SELECT <fields> FROM <Obj>
    WHERE (SystemModstamp > :t OR (SystemModstamp = :t AND Id > :id)) [AND SystemModstamp < :end]
    ORDER BY SystemModstamp, Id

When the stored cursor is shifted back by the overlap window the tie-breaker id is dropped and
the bound becomes ``SystemModstamp >= :t``; a first run (or full refresh) has no bound at all.

Path choice: ``SELECT COUNT()`` with the same filter first. Below ``bulk_threshold`` rows the
REST query is paged by ``nextRecordsUrl`` (batch size = the instance's ``page_size``, at most
2,000) and every page carries the cursor of its last row (rows arrive in keyset order). From
``bulk_threshold`` rows on, a Bulk 2.0 ``queryAll`` job is read page by page (CSV converted back
to REST types); Bulk results are not guaranteed to be ordered, so those pages carry no cursor and
the greatest (stamp, id) seen is handed over in a last, empty page once every row has been read.
Either way the extraction loop commits rows every few thousand and moves the cursor only to a
point below which everything has been landed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from ..clients.salesforce import BULK_MAX_RECORDS, MAX_BATCH_SIZE, SalesforceClient
from ..warehouse.landing import Cursor
from .base import Page, max_cursor

STAMP, KEY = "SystemModstamp", "Id"
SYSTEM_FIELDS = ("CreatedDate", "SystemModstamp", "IsDeleted")
SF_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
DEFAULT_BULK_THRESHOLD = 10_000


@dataclass(frozen=True)
class EntitySpec:
    """A raw entity: the sObject it reads and the fields it selects (contracts §3.2 + system fields)."""

    entity: str
    sobject: str
    fields: tuple[str, ...]
    description: str

    @property
    def select(self) -> str:
        return ", ".join(("Id", *self.fields, *SYSTEM_FIELDS))


ENTITIES: dict[str, EntitySpec] = {spec.entity: spec for spec in (
    EntitySpec("account", "Account", ("Name", "CurrencyIsoCode"),
               "Salesforce Accounts (the buyer's company or person account)."),
    EntitySpec("contact", "Contact", (
        "AccountId", "Email", "FirstName", "LastName", "Phone", "HasOptedOutOfEmail", "MailingCountry",
        "Referral_Code__c", "Loyalty_Points_Balance__c", "Loyalty_VIP_Tier__c", "Referral_Customer_Key__c"),
        "Salesforce Contacts (customers: email, names, e-mail opt-out, country, account)."),
    EntitySpec("order", "Order", (
        "AccountId", "BillToContactId", "OrderNumber", "EffectiveDate", "Status", "CurrencyIsoCode", "TotalAmount",
        "Discount_Amount__c", "Tax_Amount__c", "Shipping_Amount__c", "Refunded_Amount__c", "Coupon_Code__c",
        "Referral_Code__c", "Friendbuy_Attribution_Id__c", "IP_Address__c", "User_Agent__c", "Channel__c",
        "Market__c"),
        "Salesforce Orders (status, money, coupon, referral code, attribution id, IP, user agent, channel)."),
    EntitySpec("order_item", "OrderItem", (
        "OrderId", "SKU__c", "Product_Name__c", "Quantity", "UnitPrice", "TotalPrice", "CurrencyIsoCode"),
        "Salesforce Order Products (SKU, name, quantity, prices)."),
    EntitySpec("referral_reward", "Referral_Reward__c", (
        "Name", "Reward_Key__c", "Advocate_Contact__c", "Friend_Contact__c", "Advocate_Customer_Key__c",
        "Friend_Customer_Key__c", "Order_Key__c", "Campaign_Id__c", "Market__c", "Status__c", "Status_Reason__c",
        "Amount__c", "CurrencyIsoCode", "Promo_Code__c", "Fraud_Rules__c", "Status_Changed_At__c",
        "Review_Decision__c", "Review_Notes__c"),
        "Salesforce Referral_Reward__c records, read back for the reviewers' Review_Decision__c."),
)}


# ---- SOQL --------------------------------------------------------------------------------------------------
def soql_datetime(dt: datetime) -> str:
    """An unquoted SOQL dateTime literal in UTC with milliseconds (floored)."""
    dt = dt.astimezone(timezone.utc) if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def soql_id(value: str) -> str:
    """A quoted record id; anything that is not a 15/18-character id is refused (no SOQL injection)."""
    if not SF_ID.match(value):
        raise ValueError(f"not a Salesforce id: {value!r}")
    return f"'{value}'"


def where_clause(since: Cursor, window_end: datetime | None) -> str:
    """The keyset filter after ``since`` (exclusive with its id, inclusive without), before ``window_end``."""
    parts = []
    if since.value is not None:
        t = soql_datetime(since.value)
        if since.id:
            parts.append(f"({STAMP} > {t} OR ({STAMP} = {t} AND {KEY} > {soql_id(since.id)}))")
        else:
            parts.append(f"{STAMP} >= {t}")
    if window_end is not None:
        parts.append(f"{STAMP} < {soql_datetime(window_end)}")
    return " WHERE " + " AND ".join(parts) if parts else ""


# ---- values --------------------------------------------------------------------------------------------------
def parse_sf_datetime(value: Any) -> datetime | None:
    """``2025-01-01T10:00:00.000+0000`` (or ``...Z``) as an aware UTC datetime; None when absent;
    ``ValueError`` when not a datetime."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a datetime: {value!r}")
    dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


@dataclass
class SalesforceExtractor:
    """One sObject of one Salesforce org (``source`` = instance id)."""

    client: SalesforceClient
    source: str
    spec: EntitySpec
    page_size: int = MAX_BATCH_SIZE
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    bulk_page_size: int = BULK_MAX_RECORDS

    @property
    def entity(self) -> str:
        return self.spec.entity

    def soql(self, since: Cursor, window_end: datetime | None) -> str:
        return f"SELECT {self.spec.select} FROM {self.spec.sobject}{where_clause(since, window_end)} ORDER BY {STAMP}, {KEY}"

    def count_soql(self, since: Cursor, window_end: datetime | None) -> str:
        return f"SELECT COUNT() FROM {self.spec.sobject}{where_clause(since, window_end)}"

    def bulk_soql(self, since: Cursor, window_end: datetime | None) -> str:
        """Bulk jobs are read without ORDER BY (their results are not ordered anyway)."""
        return f"SELECT {self.spec.select} FROM {self.spec.sobject}{where_clause(since, window_end)}"

    def pages(self, since: Cursor, window_end: datetime | None = None) -> Iterator[Page]:
        expected = self.client.count(self.count_soql(since, window_end))
        if expected == 0:
            return
        if expected >= self.bulk_threshold:
            yield from self._bulk_pages(since, window_end)
        else:
            yield from self._rest_pages(since, window_end)

    def _rest_pages(self, since: Cursor, window_end: datetime | None) -> Iterator[Page]:
        for records in self.client.query_pages(self.soql(since, window_end), batch_size=self.page_size):
            yield Page(records, self._last_cursor(records))

    def _bulk_pages(self, since: Cursor, window_end: datetime | None) -> Iterator[Page]:
        newest = Cursor()
        chunk = max(1, min(self.page_size, self.bulk_page_size))
        for records in self.client.bulk_query_pages(self.spec.sobject, self.bulk_soql(since, window_end),
                                                    max_records=self.bulk_page_size):
            for start in range(0, len(records), chunk):
                part = records[start:start + chunk]
                newest = max_cursor(newest, self._greatest_cursor(part))
                yield Page(part, None)
        if newest.value is not None:
            yield Page([], newest)

    def _last_cursor(self, records: list[dict]) -> Cursor | None:
        """The keyset position after a REST page: its last row with a readable stamp."""
        for rec in reversed(records):
            stamp = self._safe_stamp(rec)
            if stamp is not None and rec.get(KEY):
                return Cursor(stamp, str(rec[KEY]))
        return None

    def _greatest_cursor(self, records: list[dict]) -> Cursor:
        best = Cursor()
        for rec in records:
            stamp = self._safe_stamp(rec)
            if stamp is not None and rec.get(KEY):
                best = max_cursor(best, Cursor(stamp, str(rec[KEY])))
        return best

    def _safe_stamp(self, record: dict) -> datetime | None:
        try:
            return self.stamp_of(record)
        except (ValueError, TypeError, OverflowError):
            return None

    def pk_of(self, record: dict) -> str | None:
        value = record.get(KEY)
        return str(value) if isinstance(value, str) and value else None

    def stamp_of(self, record: dict) -> datetime | None:
        return parse_sf_datetime(record.get(STAMP))

    def deleted_of(self, record: dict) -> bool:
        return record.get("IsDeleted") is True

    def request_stats(self) -> dict[str, Any]:
        return self.client.stats.as_metadata()


def make_extractor(entity: str) -> Callable[[SalesforceClient, Any], SalesforceExtractor]:
    """``EntityDef.make_extractor`` for one entity: (client, SourceInstance) -> extractor."""
    if entity not in ENTITIES:
        raise KeyError(f"unknown Salesforce entity {entity!r}")

    def build(client: SalesforceClient, instance: Any) -> SalesforceExtractor:
        page_size = getattr(instance, "page_size", None) or MAX_BATCH_SIZE
        threshold = getattr(instance, "bulk_threshold", None) or DEFAULT_BULK_THRESHOLD
        return SalesforceExtractor(client, instance.id, ENTITIES[entity], page_size=page_size,
                                   bulk_threshold=threshold)

    return build
