"""Salesforce write-back: Contact fields, ``Referral__c`` and ``Referral_Reward__c`` pushed through
the sync engine in batches (docs/sync.md, "Salesforce").

Contacts are updated by ``Id`` (never created) and the two custom objects are upserted by their
External IDs (``Referral_Key__c``, ``Reward_Key__c``), ≤ 200 records per sObject Collections
request with ``allOrNone: false`` (per-record outcomes), or one Bulk API 2.0 ingest job per entity
when the delta reaches ``bulk_threshold`` records (per-record outcomes from the job's successful,
failed and unprocessed results). Field names in the mapping SQL, the ownership file and the payload
models are the Salesforce API names lower-cased (API names are case-insensitive); the request body
uses the API spelling (the models' aliases).

One instance per Salesforce source of the programs file: destination ``salesforce`` for the first,
``salesforce_<id>`` for others; it takes the markets whose orders come from that source, and the
first instance also takes markets no Salesforce source serves (the org support works in).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config.programs import Programs
from ..http.client import ApiError
from ..transform.runtime import load_sql
from .engine import SQL_PACKAGE, DestinationResult, EntitySpec, SendOutcome, SyncSettings, ensure_sync_schema, run_sync
from .ownership import FieldOwnership, load_ownership

COLLECTION_MAX_RECORDS = 200   # sObject Collections: records per request (the API's maximum)
SF_ID = r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$"
DATETIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"
# per-record status codes that a later attempt can get past (lock contention, rollback of the others)
TRANSIENT_RECORD_ERRORS = frozenset({"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "SERVER_UNAVAILABLE",
                                     "REQUEST_RUNNING_TOO_LONG", "UNKNOWN_EXCEPTION"})
RECORD_ERROR_STATUS = 400    # a per-record DML error is recorded with the status a single-record call gets


# ---- payload models (validated before any request; aliases are the API names) -------------------------------
class _SfModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SfContact(_SfModel):
    id: str = Field(alias="Id", pattern=SF_ID)
    referral_customer_key__c: str = Field(alias="Referral_Customer_Key__c", min_length=1, max_length=128)
    referral_code__c: str | None = Field(default=None, alias="Referral_Code__c", max_length=64)
    loyalty_points_balance__c: float | None = Field(default=None, alias="Loyalty_Points_Balance__c")
    loyalty_vip_tier__c: str | None = Field(default=None, alias="Loyalty_VIP_Tier__c", max_length=80)


class SfReferral(_SfModel):
    referral_key__c: str = Field(alias="Referral_Key__c", min_length=1, max_length=255)
    advocate_contact__c: str | None = Field(default=None, alias="Advocate_Contact__c", pattern=SF_ID)
    friend_contact__c: str | None = Field(default=None, alias="Friend_Contact__c", pattern=SF_ID)
    advocate_customer_key__c: str = Field(alias="Advocate_Customer_Key__c", min_length=1, max_length=255)
    friend_customer_key__c: str = Field(alias="Friend_Customer_Key__c", min_length=1, max_length=255)
    campaign_id__c: str | None = Field(default=None, alias="Campaign_Id__c", max_length=80)
    market__c: str | None = Field(default=None, alias="Market__c", max_length=40)
    attribution_method__c: Literal["coupon", "friendbuy", "referral_code", "signup"] | None = Field(
        default=None, alias="Attribution_Method__c")
    referral_code__c: str | None = Field(default=None, alias="Referral_Code__c", max_length=64)
    clicked_at__c: str | None = Field(default=None, alias="Clicked_At__c", pattern=DATETIME)
    signed_up_at__c: str | None = Field(default=None, alias="Signed_Up_At__c", pattern=DATETIME)
    first_purchase_at__c: str | None = Field(default=None, alias="First_Purchase_At__c", pattern=DATETIME)


class SfReward(_SfModel):
    reward_key__c: str = Field(alias="Reward_Key__c", min_length=1, max_length=255)
    advocate_contact__c: str | None = Field(default=None, alias="Advocate_Contact__c", pattern=SF_ID)
    friend_contact__c: str | None = Field(default=None, alias="Friend_Contact__c", pattern=SF_ID)
    advocate_customer_key__c: str | None = Field(default=None, alias="Advocate_Customer_Key__c", max_length=255)
    friend_customer_key__c: str = Field(alias="Friend_Customer_Key__c", min_length=1, max_length=255)
    order_key__c: str | None = Field(default=None, alias="Order_Key__c", max_length=255)
    campaign_id__c: str | None = Field(default=None, alias="Campaign_Id__c", max_length=80)
    market__c: str | None = Field(default=None, alias="Market__c", max_length=40)
    status__c: Literal["pending", "on_hold", "approved", "issued", "canceled", "reversed", "not_eligible"] = Field(
        alias="Status__c")
    status_reason__c: str | None = Field(default=None, alias="Status_Reason__c", max_length=255)
    amount__c: float | None = Field(default=None, alias="Amount__c", ge=0)
    currencyisocode: str | None = Field(default=None, alias="CurrencyIsoCode", pattern=r"^[A-Z]{3}$")
    promo_code__c: str | None = Field(default=None, alias="Promo_Code__c", max_length=80)
    fraud_rules__c: str | None = Field(default=None, alias="Fraud_Rules__c", max_length=1000)
    status_changed_at__c: str | None = Field(default=None, alias="Status_Changed_At__c", pattern=DATETIME)


# ---- targets: how an entity's records are written ------------------------------------------------------------
@dataclass(frozen=True)
class SObjectTarget:
    """``sobject`` written by ``external_id`` upsert, or by ``Id`` update when ``external_id`` is None."""

    sobject: str
    model: type[BaseModel]
    key_field: str                    # the payload field (model name) that identifies the record
    external_id: str | None = None    # API name of the External ID field (upsert)

    def api_body(self, body: dict) -> dict:
        fields = self.model.model_fields
        return {(fields[k].alias or k) if k in fields else k: v for k, v in body.items()}

    @property
    def key_column(self) -> str:
        return self.model.model_fields[self.key_field].alias or self.key_field


CONTACTS = SObjectTarget("Contact", SfContact, "id")
REFERRALS = SObjectTarget("Referral__c", SfReferral, "referral_key__c", "Referral_Key__c")
REWARDS = SObjectTarget("Referral_Reward__c", SfReward, "reward_key__c", "Reward_Key__c")


@dataclass(frozen=True)
class SalesforceWriteOptions:
    """``bulk_threshold``: a delta of at least this many records goes through Bulk API 2.0 ingest jobs
    of at most ``bulk_job_records`` rows; below it, sObject Collections requests of ``collection_size``
    records (≤ 200; lower it when triggers on the object hit ``UNABLE_TO_LOCK_ROW`` or governor
    limits). A batch no larger than ``collection_size`` always goes through one collection request
    (the tail of a large delta, or a threshold below 200). ``all_or_none`` stays False: one bad record
    must not block the others."""

    bulk_threshold: int = 2000
    bulk_job_records: int = 100_000
    collection_size: int = COLLECTION_MAX_RECORDS
    all_or_none: bool = False
    bulk_timeout_seconds: float = 3600.0

    def __post_init__(self):
        if not 1 <= self.collection_size <= COLLECTION_MAX_RECORDS:
            raise ValueError(f"collection_size must be 1..{COLLECTION_MAX_RECORDS}")

    def batch_size(self, delta_rows: int) -> int:
        if delta_rows >= self.bulk_threshold:
            return max(1, min(delta_rows, self.bulk_job_records))
        return self.collection_size


def _record_error(errors: list) -> tuple[str, str]:
    """(first statusCode, readable text) of a collections result's ``errors``."""
    parts, code = [], ""
    for e in errors or []:
        if not isinstance(e, dict):
            continue
        code = code or str(e.get("statusCode") or e.get("errorCode") or "")
        fields = e.get("fields") or []
        parts.append(f"{e.get('statusCode') or e.get('errorCode')}: {e.get('message')}"
                     + (f" (fields: {', '.join(map(str, fields))})" if fields else ""))
    return code, "; ".join(parts) or "record not written (no error detail)"


def _failure(code: str, text: str) -> SendOutcome:
    return SendOutcome("retry" if code in TRANSIENT_RECORD_ERRORS else "failed", RECORD_ERROR_STATUS, text)


def send_collection(client, target: SObjectTarget, bodies: list[dict], all_or_none: bool = False) -> list[SendOutcome]:
    """One sObject Collections request; one outcome per record from its result entry."""
    records = [target.api_body(b) for b in bodies]
    if target.external_id:
        results = client.upsert_collection(target.sobject, target.external_id, records, all_or_none=all_or_none)
    else:
        results = client.update_collection(target.sobject, records, all_or_none=all_or_none)
    out = []
    for result in results:
        if isinstance(result, dict) and result.get("success"):
            out.append(SendOutcome("ok", 200, remote_id=result.get("id")))
        else:
            out.append(_failure(*_record_error(result.get("errors") if isinstance(result, dict) else [])))
    return out


def send_bulk(client, target: SObjectTarget, bodies: list[dict], timeout_seconds: float = 3600.0) -> list[SendOutcome]:
    """One Bulk 2.0 ingest job; per-record outcomes matched by the key column (rows come back in any
    order): successful -> ok, failed -> failed (``sf__Error``), unprocessed or missing -> retry."""
    records = [target.api_body(b) for b in bodies]
    operation = "upsert" if target.external_id else "update"
    column = target.key_column
    result = client.bulk_ingest(target.sobject, operation, records, external_id_field=target.external_id,
                                timeout_seconds=timeout_seconds)
    if result.state != "JobComplete":
        error = f"bulk job {result.job_id} {result.state}: {result.error}"
        if result.state == "Failed":   # the job itself was refused (e.g. a bad column): a retry does not fix it
            return [SendOutcome("failed", RECORD_ERROR_STATUS, error)] * len(bodies)
        return [SendOutcome("retry", None, error)] * len(bodies)
    by_key: dict[str, SendOutcome] = {}
    for row in result.successful:
        by_key[_key(row.get(column))] = SendOutcome("ok", 200, remote_id=row.get("sf__Id") or None)
    for row in result.failed:
        error = row.get("sf__Error") or ""
        by_key[_key(row.get(column))] = _failure(error.split(":", 1)[0], f"{error} (bulk job {result.job_id})")
    for row in result.unprocessed:
        by_key.setdefault(_key(row.get(column)), SendOutcome("retry", None, f"unprocessed by bulk job {result.job_id}"))
    missing = SendOutcome("retry", None, f"no result row in bulk job {result.job_id}")
    return [by_key.get(_key(r.get(column)), missing) for r in records]


def _key(value) -> str:
    return str(value or "").casefold()


def _classify(exc: ApiError) -> SendOutcome | None:
    """403 REQUEST_LIMIT_EXCEEDED (the org's daily allowance, after in-run retries of the concurrency
    throttle): nothing wrong with the records — retry them in a later run."""
    if exc.status == 403 and "REQUEST_LIMIT_EXCEEDED" in (exc.body or ""):
        return SendOutcome("retry", 403, exc.body)
    return None


def _batch_sender(target: SObjectTarget, options: SalesforceWriteOptions) -> Callable[[object, list[dict]],
                                                                                      list[SendOutcome]]:
    def send(client, bodies: list[dict]) -> list[SendOutcome]:
        if len(bodies) > options.collection_size:
            return send_bulk(client, target, bodies, options.bulk_timeout_seconds)
        return send_collection(client, target, bodies, options.all_or_none)
    return send


# ---- instances and specs ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SalesforceInstance:
    destination: str
    source_id: str
    env_prefix: str
    markets: tuple[str, ...]


def salesforce_instances(programs: Programs) -> list[SalesforceInstance]:
    sources = [s for s in programs.sources if s.type == "salesforce"]
    served = {s.id: [m.id for m in programs.markets if any(r.source == s.id for r in m.match)] for s in sources}
    orphans = [m.id for m in programs.markets if not any(m.id in ms for ms in served.values())]
    out = []
    for i, s in enumerate(sources):
        markets = served[s.id] + (orphans if i == 0 else [])
        ordered = tuple(m.id for m in programs.markets if m.id in markets)
        out.append(SalesforceInstance("salesforce" if i == 0 else f"salesforce_{s.id}", s.id, s.prefix, ordered))
    return out


def salesforce_specs(instance: SalesforceInstance, ownership: FieldOwnership | None = None,
                     options: SalesforceWriteOptions | None = None) -> list[EntitySpec]:
    """Contacts, referrals, rewards (independent of each other: lookups point at existing Contacts)."""
    own = ownership or load_ownership()
    opts = options or SalesforceWriteOptions()
    source = "'" + instance.source_id.replace("'", "''") + "'"

    def spec(entity: str, target: SObjectTarget) -> EntitySpec:
        sql = load_sql(SQL_PACKAGE, f"salesforce_{entity}.sql").replace("/*SOURCE_ID*/", source)
        return EntitySpec(instance.destination, entity, own.for_object(f"salesforce.{entity}"), sql, target.model,
                          classify=_classify, send_batch=_batch_sender(target, opts), batch_size=opts.batch_size)

    return [spec("contacts", CONTACTS), spec("referrals", REFERRALS), spec("rewards", REWARDS)]


def sync_settings(settings: SyncSettings | None, options: SalesforceWriteOptions | None = None) -> SyncSettings:
    """Chunks of at least ``concurrency`` collection requests, so the workers run in parallel."""
    s = settings or SyncSettings()
    size = (options or SalesforceWriteOptions()).collection_size
    return replace(s, chunk_size=max(s.chunk_size, s.concurrency * size))


def run_salesforce_sync(con, client, instance: SalesforceInstance, *, run_id: str,
                        settings: SyncSettings | None = None, now: datetime | None = None,
                        ownership: FieldOwnership | None = None, options: SalesforceWriteOptions | None = None,
                        after_send: Callable[[str, dict], None] | None = None) -> DestinationResult:
    """Push the three entities of one Salesforce instance. Reads ``analytics.customers`` (after the
    Yotpo pull of the same run), ``analytics.referral_attribution``, ``analytics.rewards`` and
    ``analytics.referral_events``."""
    ensure_sync_schema(con)
    out = DestinationResult(instance.destination)
    for spec in salesforce_specs(instance, ownership, options):
        out.entities[spec.entity] = run_sync(con, spec, client, run_id=run_id, markets=list(instance.markets),
                                             settings=sync_settings(settings, options), now=now,
                                             after_send=after_send)
    return out
