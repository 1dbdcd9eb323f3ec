"""commercetools write-back: referral code, reward status and loyalty points as custom fields of the
customer type ``referral-customer`` (contracts §3.2) on every customer record of a commercetools
source instance (destination = the instance id, e.g. ``ct``; docs/sync.md "commercetools").

Per batch of 20 changed records one ``GET /customers?where=id in (...)`` (current versions and custom
fields), then per customer one ``POST /customers/{id}`` with ``version`` and only the actions that
change something:
``setCustomType`` (type by key, our fields inside) when the customer has no custom type,
``setCustomField`` per differing field when it has ours. A customer carrying another custom type is a
per-record failure (``setCustomType`` would drop that type's fields). A 409 ``ConcurrentModification``
re-reads the customer and retries once inside the send; a second 409 is a retry for a later run.
The type is created at the start of the run if missing (missing field definitions are added).
"""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..http.client import ApiError, TransientError
from ..transform.runtime import load_sql
from .commerce import REWARD_STATUSES, CommerceInstance, commerce_instances, define_customer_values
from .engine import (SQL_PACKAGE, DestinationResult, EntitySpec, SendOutcome, SyncSettings, classify_exception,
                     ensure_sync_schema, run_sync)
from .ownership import FieldOwnership, load_ownership

TYPE_KEY = "referral-customer"
# payload field -> (custom field name, field type, label)
CUSTOM_FIELDS = {"referral_code": ("referralCode", "String", "Referral code"),
                 "referral_reward_status": ("referralRewardStatus", "String", "Referral reward status"),
                 "loyalty_points": ("loyaltyPoints", "Number", "Loyalty points balance")}
# commercetools publishes no request-rate limit; the write-back paces itself so a nightly push of
# many customers does not crowd the storefront's own traffic on the project (configurable per run)
DEFAULT_RATE_PER_SECOND = 20.0
READ_BATCH = 20   # customers read in one query before their updates (one request instead of 20)


class CommerceSetupError(RuntimeError):
    """The project's ``referral-customer`` type cannot hold our fields (wrong resource or field type)."""


class ForeignCustomType(Exception):
    """The customer carries a custom type that is not ``referral-customer``."""


class CtCustomerFields(BaseModel):
    """What we write on one commercetools customer (NULL fields are left out: nothing is cleared)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256)
    referral_code: str | None = Field(default=None, min_length=1, max_length=256)
    referral_reward_status: Literal[REWARD_STATUSES] | None = None
    loyalty_points: int | None = None


# ---- the type -----------------------------------------------------------------------------------------
def field_definitions() -> list[dict]:
    return [{"name": name, "label": {"en": label}, "required": False, "type": {"name": kind},
             "inputHint": "SingleLine"} for name, kind, label in CUSTOM_FIELDS.values()]


def type_draft() -> dict:
    return {"key": TYPE_KEY, "name": {"en": "Referral customer"},
            "description": {"en": "Referral program fields written by referral_pipeline"},
            "resourceTypeIds": ["customer"], "fieldDefinitions": field_definitions()}


def ensure_customer_type(client) -> str:
    """The id of the ``referral-customer`` type, created (``POST /types``) or completed
    (``addFieldDefinition``) when needed. Raises ``CommerceSetupError`` when the existing type cannot
    hold our fields."""
    existing = client.get_type(TYPE_KEY)
    if existing is None:
        try:
            existing = client.create_type(type_draft())
        except ApiError as exc:
            if exc.status != 400 or "DuplicateField" not in (exc.body or ""):
                raise
            existing = client.get_type(TYPE_KEY)      # created concurrently (or our lost response)
    if "customer" not in (existing.get("resourceTypeIds") or []):
        raise CommerceSetupError(f"commercetools type {TYPE_KEY!r} is not a customer type "
                                 f"(resourceTypeIds {existing.get('resourceTypeIds')})")
    have = {d.get("name"): d for d in existing.get("fieldDefinitions") or []}
    wrong = [f"{d['name']} is {have[d['name']].get('type', {}).get('name')}, expected {d['type']['name']}"
             for d in field_definitions() if d["name"] in have
             and (have[d["name"]].get("type") or {}).get("name") != d["type"]["name"]]
    if wrong:
        raise CommerceSetupError(f"commercetools type {TYPE_KEY!r} has fields of another type: {'; '.join(wrong)}")
    missing = [d for d in field_definitions() if d["name"] not in have]
    if missing:
        existing = client.update("types", existing["id"], existing["version"],
                                 [{"action": "addFieldDefinition", "fieldDefinition": d} for d in missing])
    return existing["id"]


# ---- actions --------------------------------------------------------------------------------------------
def plan_actions(customer: dict, payload: dict, type_id: str) -> list[dict]:
    """The update actions that make ``customer`` carry ``payload``'s values (empty: nothing to do).
    Only our fields are touched; a NULL in the payload (a field with ``clear: true``) removes ours."""
    wanted = {CUSTOM_FIELDS[k][0]: payload[k] for k in CUSTOM_FIELDS if k in payload}
    custom = customer.get("custom") if isinstance(customer.get("custom"), dict) else None
    if custom is None or not isinstance(custom.get("type"), dict):
        fields = {k: v for k, v in wanted.items() if v is not None}
        return [{"action": "setCustomType", "type": {"typeId": "type", "key": TYPE_KEY}, "fields": fields}] \
            if fields else []
    ref = custom["type"]
    if ref.get("id") != type_id and ref.get("key") != TYPE_KEY:
        raise ForeignCustomType(f"customer {customer.get('id')} has custom type {ref.get('key') or ref.get('id')}, "
                                f"not {TYPE_KEY}; not overwritten (setCustomType would drop its fields)")
    current = custom.get("fields") or {}
    actions = []
    for name, value in wanted.items():
        if value is None:
            if name in current:
                actions.append({"action": "setCustomField", "name": name})
        elif current.get(name) != value:
            actions.append({"action": "setCustomField", "name": name, "value": value})
    return actions


def make_send_batch(type_id: str) -> Callable[..., list[SendOutcome]]:
    """One query reads the batch's customers (current versions), then one update per customer that
    needs one; a 409 (changed since our read) re-reads that customer and retries once."""
    def send_batch(client, payloads: list[dict]) -> list[SendOutcome]:
        found = {c["id"]: c for c in client.get_customers([p["id"] for p in payloads])}
        return [_apply(client, p, found.get(p["id"]), type_id) for p in payloads]
    return send_batch


def _apply(client, payload: dict, customer: dict | None, type_id: str) -> SendOutcome:
    customer_id = payload["id"]
    for attempt in (1, 2):
        if customer is None:
            return SendOutcome("failed", 404, f"commercetools customer {customer_id} not found")
        try:
            actions = plan_actions(customer, payload, type_id)
        except ForeignCustomType as exc:
            return SendOutcome("failed", None, str(exc))
        if not actions:
            return SendOutcome("ok", 200, remote_id=customer_id)
        try:
            client.update_customer(customer_id, customer["version"], actions)
            return SendOutcome("ok", 200, remote_id=customer_id)
        except ApiError as exc:
            if attempt == 1 and exc.status == 409 and not isinstance(exc, TransientError):
                customer = _reread(client, customer_id)   # ConcurrentModification: someone changed it
                continue
            return classify_exception(_CONFLICTS, exc)
        except Exception as exc:  # noqa: BLE001 - transport trouble: retried later, like a single send
            return classify_exception(_CONFLICTS, exc)
    raise AssertionError("unreachable")


def _reread(client, customer_id: str) -> dict | None:
    return client.get_customer(customer_id)


def classify_conflict(exc: ApiError) -> SendOutcome | None:
    """A 409 that survived the re-read: the customer is being changed right now; try again next run."""
    if exc.status == 409:
        return SendOutcome("retry", 409, exc.body or str(exc))
    return None


_CONFLICTS = SimpleNamespace(classify=classify_conflict)   # what engine.classify_exception reads of a spec


def make_reconcile(type_id: str) -> Callable[..., bool | None]:
    def reconcile(client, payload: dict) -> bool | None:
        """A crashed send took effect when the customer already carries every value we sent."""
        customer = client.get_customer(payload["id"])
        if customer is None:
            return None
        try:
            return not plan_actions(customer, payload, type_id)
        except ForeignCustomType:
            return None
    return reconcile


# ---- instances and the run ----------------------------------------------------------------------------
def commercetools_instances(programs) -> list[CommerceInstance]:
    return commerce_instances(programs, "commercetools")


def commercetools_spec(destination: str, type_id: str, ownership: FieldOwnership | None = None) -> EntitySpec:
    own = (ownership or load_ownership()).for_object("commercetools.customers")
    return EntitySpec(destination, "customers", own, load_sql(SQL_PACKAGE, "ct_customers.sql"), CtCustomerFields,
                      classify=classify_conflict, reconcile=make_reconcile(type_id),
                      send_batch=make_send_batch(type_id), batch_size=READ_BATCH)


def run_commercetools_sync(con, client, instance: CommerceInstance, *, run_id: str,
                           settings: SyncSettings | None = None, now: datetime | None = None,
                           ownership: FieldOwnership | None = None,
                           after_send: Callable[[str, dict], None] | None = None,
                           rate_per_second: float | None = DEFAULT_RATE_PER_SECOND) -> DestinationResult:
    """Ensure the type, then push the customers' custom fields. ``rate_per_second`` paces the client
    when it has no rate of its own (None: unpaced)."""
    ensure_sync_schema(con)
    define_customer_values(con)
    if rate_per_second and not client.api.limiter.rate:
        client.limit_rate(rate_per_second)
    out = DestinationResult(instance.destination)
    requests_before = client.stats.requests
    type_id = ensure_customer_type(client)
    setup_requests = client.stats.requests - requests_before
    res = run_sync(con, commercetools_spec(instance.destination, type_id, ownership), client, run_id=run_id,
                   markets=[], settings=settings, now=now, after_send=after_send)
    res.requests += setup_requests
    out.entities["customers"] = res
    return out
