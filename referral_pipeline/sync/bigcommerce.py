"""BigCommerce write-back: referral code and reward status as customer attribute values
(``referral_code``, ``referral_reward_status``; contracts §3.2) on every customer record of a
BigCommerce source instance (destination = the instance id, e.g. ``bc``; docs/sync.md "BigCommerce").

A batch destination: the engine hands ``BATCH_CUSTOMERS`` customer records to one ``send_batch``
call, which packs whole customers into ``PUT /v3/customers/attribute-values`` requests of at most 10
values (the upsert's limit; the API also allows at most 10 customers per call) — usually one request.
A request refused with 422 is re-sent one customer at a time, so one bad record fails alone. The
attributes are created at the start of the run if missing. The upsert is a set-to-value write:
re-sending after a crash is safe, so in-flight records are simply re-sent. At most 3 requests are in
flight (the endpoint's concurrency limit), and the client pauses before the store quota runs out
(``X-Rate-Limit-Requests-Left`` below the number of requests in flight).
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..clients.bigcommerce import MAX_ATTRIBUTE_VALUES
from ..http.client import ApiError
from ..transform.runtime import load_sql
from .commerce import REWARD_STATUSES, CommerceInstance, commerce_instances, define_customer_values
from .engine import (SQL_PACKAGE, DestinationResult, EntitySpec, SendOutcome, SyncSettings, classify_exception,
                     ensure_sync_schema, run_sync)
from .ownership import FieldOwnership, load_ownership

ATTRIBUTES = ("referral_code", "referral_reward_status")     # payload field = attribute name, type string
MAX_CONCURRENT_REQUESTS = 3                                   # attribute-values PUT: 3 concurrent requests
BATCH_CUSTOMERS = 10


class BigCommerceSetupError(RuntimeError):
    """An attribute of ours exists with another type (BigCommerce cannot change an attribute's type)."""


class BcCustomerAttributes(BaseModel):
    """What we write on one BigCommerce customer (NULL fields are left out: nothing is cleared)."""

    model_config = ConfigDict(extra="forbid")
    customer_id: int = Field(ge=1)
    referral_code: str | None = Field(default=None, max_length=255)
    referral_reward_status: Literal[REWARD_STATUSES] | None = None


def ensure_attributes(client) -> dict[str, int]:
    """``{attribute name: id}`` of our attributes, creating the missing ones (type ``string``)."""
    found = {a.get("name"): a for a in client.customer_attributes()}
    missing = [name for name in ATTRIBUTES if name not in found]
    if missing:
        try:
            created = client.create_customer_attributes([{"name": n, "type": "string"} for n in missing])
            found.update({a.get("name"): a for a in created})
        except ApiError as exc:
            if exc.status != 422:
                raise
            found = {a.get("name"): a for a in client.customer_attributes()}   # created concurrently
    wrong = [f"{n} is {found[n].get('type')}" for n in ATTRIBUTES if n in found and found[n].get("type") != "string"]
    if wrong or any(n not in found for n in ATTRIBUTES):
        raise BigCommerceSetupError(f"BigCommerce customer attributes cannot hold our values: {wrong or missing}")
    return {n: int(found[n]["id"]) for n in ATTRIBUTES}


def attribute_values(payload: dict, attribute_ids: dict[str, int]) -> list[dict]:
    """The attribute values of one customer's payload (a NULL is sent as "" only for a field with
    ``clear: true``; otherwise it is not in the payload)."""
    return [{"attribute_id": attribute_ids[name], "customer_id": payload["customer_id"],
             "value": "" if payload[name] is None else str(payload[name])}
            for name in ATTRIBUTES if name in payload]


def pack(groups: list[list[dict]], limit: int = MAX_ATTRIBUTE_VALUES) -> list[list[int]]:
    """Indexes of ``groups`` (one customer's values each) packed whole into requests of ≤ ``limit`` values."""
    requests: list[list[int]] = []
    size = 0
    for i, values in enumerate(groups):
        if not requests or size + len(values) > limit:
            requests.append([])
            size = 0
        requests[-1].append(i)
        size += len(values)
    return requests


def make_send_batch(attribute_ids: dict[str, int], classify: Callable[[Exception], SendOutcome],
                    quota_reserve: int) -> Callable:
    def put(client, groups: list[list[dict]], members: list[int]) -> None:
        values = [v for i in members for v in groups[i]]
        if values:
            client.upsert_attribute_values(values, quota_reserve=quota_reserve)

    def send_batch(client, bodies: list[dict]) -> list[SendOutcome]:
        groups = [attribute_values(body, attribute_ids) for body in bodies]
        outcomes: list[SendOutcome | None] = [None] * len(bodies)
        for members in pack(groups):
            try:
                put(client, groups, members)
                results = {i: SendOutcome("ok", 200, remote_id=str(bodies[i]["customer_id"])) for i in members}
            except ApiError as exc:
                if exc.status == 422 and len(members) > 1:
                    results = {i: _alone(client, groups, i, bodies, put, classify) for i in members}
                else:
                    results = {i: classify(exc) for i in members}
            except Exception as exc:  # noqa: BLE001 - classified like the engine does
                results = {i: classify(exc) for i in members}
            for i, outcome in results.items():
                outcomes[i] = outcome
        return outcomes
    return send_batch


def _alone(client, groups, i: int, bodies, put, classify) -> SendOutcome:
    """One customer's values on their own (after its request was refused with 422)."""
    try:
        put(client, groups, [i])
        return SendOutcome("ok", 200, remote_id=str(bodies[i]["customer_id"]))
    except Exception as exc:  # noqa: BLE001
        return classify(exc)


def bigcommerce_instances(programs) -> list[CommerceInstance]:
    return commerce_instances(programs, "bigcommerce")


def bigcommerce_spec(destination: str, attribute_ids: dict[str, int], ownership: FieldOwnership | None = None,
                     quota_reserve: int = MAX_CONCURRENT_REQUESTS) -> EntitySpec:
    own = (ownership or load_ownership()).for_object("bigcommerce.customers")
    spec: EntitySpec | None = None

    def classify(exc: Exception) -> SendOutcome:
        return classify_exception(spec, exc)

    spec = EntitySpec(destination, "customers", own, load_sql(SQL_PACKAGE, "bc_customers.sql"), BcCustomerAttributes,
                      send_batch=make_send_batch(attribute_ids, classify, quota_reserve), batch_size=BATCH_CUSTOMERS)
    return spec


def run_bigcommerce_sync(con, client, instance: CommerceInstance, *, run_id: str,
                         settings: SyncSettings | None = None, now: datetime | None = None,
                         ownership: FieldOwnership | None = None,
                         after_send: Callable[[str, dict], None] | None = None) -> DestinationResult:
    """Ensure the attributes, then upsert the customers' attribute values (≤ 3 requests in flight)."""
    ensure_sync_schema(con)
    define_customer_values(con)
    settings = settings or SyncSettings()
    settings = replace(settings, concurrency=max(1, min(settings.concurrency, MAX_CONCURRENT_REQUESTS)))
    out = DestinationResult(instance.destination)
    requests_before = client.stats.requests
    attribute_ids = ensure_attributes(client)
    setup_requests = client.stats.requests - requests_before
    spec = bigcommerce_spec(instance.destination, attribute_ids, ownership, quota_reserve=settings.concurrency)
    res = run_sync(con, spec, client, run_id=run_id, markets=[], settings=settings, now=now, after_send=after_send)
    res.requests += setup_requests
    out.entities["customers"] = res
    return out
