"""Versioned updates: ``POST /{projectKey}/<resource>/{id}`` with ``{"version": n, "actions": [...]}``.

``apply_update`` checks the body (``InvalidJsonInput`` for a malformed one or an unknown action),
the version (409 ``ConcurrentModification`` with ``currentVersion``) and applies the actions in
order to a copy of the resource; nothing is stored when any action fails. The caller bumps
``version`` and ``lastModifiedAt`` only when the actions changed the resource (an update that
changes nothing leaves both as they are).

Actions: customers ``setCustomType``, ``setCustomField``, ``changeEmail``, ``setFirstName``,
``setLastName``, ``setMiddleName``, ``setTitle``, ``setSalutation``, ``setCompanyName``,
``setVatId``, ``setDateOfBirth``, ``setLocale``, ``setExternalId``, ``setKey``,
``setCustomerNumber``; orders ``setCustomType``, ``setCustomField``, ``changeOrderState``,
``changePaymentState``, ``changeShipmentState``, ``setOrderNumber``, ``setCustomerEmail``,
``setCustomerId``, ``setLocale``, ``setPurchaseOrderNumber``; types ``addFieldDefinition``,
``removeFieldDefinition``, ``changeName``, ``setDescription``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import customfields, errors

MAX_ACTIONS = 500
ORDER_STATES = ("Open", "Confirmed", "Complete", "Cancelled")
PAYMENT_STATES = ("BalanceDue", "Failed", "Pending", "CreditOwed", "Paid")
SHIPMENT_STATES = ("Shipped", "Delivered", "Ready", "Pending", "Delayed", "Partial", "Backorder", "Canceled")


@dataclass
class UpdateContext:
    """What actions may look at besides the resource: its collection (uniqueness) and the Types."""

    collection: Any
    types: Any
    resource_type_id: str   # "customer" | "order" | "type"


Action = Callable[[dict, dict, UpdateContext], None]


def check_body(body: Any, kind: str, resource_type_id: str) -> tuple[int, list[dict]]:
    """``(version, actions)`` of a well-formed update body; like the API, an unknown action is a
    body (deserialization) error, reported before the version is compared."""
    if not isinstance(body, dict):
        raise errors.invalid_json("JSON object expected.")
    version = body.get("version")
    if version is None:
        raise errors.invalid_json("version: Missing required value.")
    if not isinstance(version, int) or isinstance(version, bool):
        raise errors.invalid_json(f"version: Invalid long value '{version}'.")
    actions = body.get("actions")
    if not isinstance(actions, list):
        raise errors.invalid_json("actions: Missing required value." if actions is None else "actions: JSON array expected.")
    if len(actions) > MAX_ACTIONS:
        raise errors.invalid_input(f"Too many update actions: {len(actions)}. At most {MAX_ACTIONS} are allowed.")
    for action in actions:
        if not isinstance(action, dict) or not isinstance(action.get("action"), str):
            raise errors.invalid_json("actions -> action: Missing required value.")
        if action["action"] not in ACTIONS[kind]:
            raise errors.invalid_json(f"actions -> action: Unknown update action '{action['action']}' "
                                      f"for resource type '{resource_type_id}'.")
    return version, actions


def apply_update(kind: str, record: dict, body: Any, ctx: UpdateContext) -> tuple[dict, bool]:
    """The updated copy of ``record`` and whether anything changed."""
    version, actions = check_body(body, kind, ctx.resource_type_id)
    current = int(record.get("version") or 0)
    if version != current:
        raise errors.concurrent_modification(record.get("id"), version, current)
    updated = dict(record)
    for action in actions:
        ACTIONS[kind][action["action"]](updated, action, ctx)
    return updated, updated != record


# ---- action factories ---------------------------------------------------------------------------
def setter(field: str, param: str | None = None, required: bool = False, kind: type = str) -> Action:
    """Set ``field`` from the action's ``param``; absent or null removes it (unless required)."""
    param = param or field

    def apply(rec: dict, action: dict, ctx: UpdateContext) -> None:
        value = action.get(param)
        if value is None:
            if required:
                raise errors.invalid_json(f"actions -> {param}: Missing required value.")
            rec.pop(field, None)
            return
        if not isinstance(value, kind):
            raise errors.invalid_json(f"actions -> {param}: {kind.__name__} value expected.")
        rec[field] = value
    return apply


def enum_setter(field: str, allowed: tuple[str, ...]) -> Action:
    def apply(rec: dict, action: dict, ctx: UpdateContext) -> None:
        value = action.get(field)
        if value is None:
            raise errors.invalid_json(f"actions -> {field}: Missing required value.")
        if value not in allowed:
            raise errors.invalid_json(f"actions -> {field}: Invalid enum value: '{value}'. Expected one of: "
                                      + ",".join(f"'{a}'" for a in allowed))
        rec[field] = value
    return apply


def unique(field: str, base: Action, case_insensitive: bool = False) -> Action:
    """``base`` plus: no other record of the collection may hold the same value (``DuplicateField``)."""
    def norm(v):
        return v.lower() if case_insensitive and isinstance(v, str) else v

    def apply(rec: dict, action: dict, ctx: UpdateContext) -> None:
        base(rec, action, ctx)
        value = rec.get(field)
        if value is None:
            return
        for other in ctx.collection.values():
            if other.get("id") != rec.get("id") and norm(other.get(field)) == norm(value):
                raise errors.duplicate_field(field, value)
    return apply


def set_custom_type(rec: dict, action: dict, ctx: UpdateContext) -> None:
    custom = customfields.custom_from_draft(ctx.types, ctx.resource_type_id, action.get("type"), action.get("fields"))
    if custom is None:
        rec.pop("custom", None)
    else:
        rec["custom"] = custom


def set_custom_field(rec: dict, action: dict, ctx: UpdateContext) -> None:
    rec["custom"] = customfields.set_custom_field(ctx.types, rec.get("custom"), action.get("name"), action.get("value"))


def set_customer_number(rec: dict, action: dict, ctx: UpdateContext) -> None:
    if rec.get("customerNumber"):
        raise errors.invalid_operation("A Customer number already exists and cannot be set again.")
    unique("customerNumber", setter("customerNumber"))(rec, action, ctx)


# ---- types --------------------------------------------------------------------------------------
def add_field_definition(rec: dict, action: dict, ctx: UpdateContext) -> None:
    definition = customfields.validate_field_definition(action.get("fieldDefinition"))
    if any(d.get("name") == definition["name"] for d in rec.get("fieldDefinitions") or []):
        raise errors.duplicate_field("name", definition["name"])
    rec["fieldDefinitions"] = list(rec.get("fieldDefinitions") or []) + [definition]


def remove_field_definition(rec: dict, action: dict, ctx: UpdateContext) -> None:
    name = action.get("fieldName")
    kept = [d for d in rec.get("fieldDefinitions") or [] if d.get("name") != name]
    if len(kept) == len(rec.get("fieldDefinitions") or []):
        raise errors.invalid_operation(f"The field definition '{name}' does not exist.")
    rec["fieldDefinitions"] = kept


ACTIONS: dict[str, dict[str, Action]] = {
    "customers": {
        "setCustomType": set_custom_type,
        "setCustomField": set_custom_field,
        "changeEmail": unique("email", setter("email", required=True), case_insensitive=True),
        "setFirstName": setter("firstName"),
        "setLastName": setter("lastName"),
        "setMiddleName": setter("middleName"),
        "setTitle": setter("title"),
        "setSalutation": setter("salutation"),
        "setCompanyName": setter("companyName"),
        "setVatId": setter("vatId"),
        "setDateOfBirth": setter("dateOfBirth"),
        "setLocale": setter("locale"),
        "setExternalId": setter("externalId"),
        "setKey": unique("key", setter("key")),
        "setCustomerNumber": set_customer_number,
    },
    "orders": {
        "setCustomType": set_custom_type,
        "setCustomField": set_custom_field,
        "changeOrderState": enum_setter("orderState", ORDER_STATES),
        "changePaymentState": enum_setter("paymentState", PAYMENT_STATES),
        "changeShipmentState": enum_setter("shipmentState", SHIPMENT_STATES),
        "setOrderNumber": unique("orderNumber", setter("orderNumber")),
        "setCustomerEmail": setter("customerEmail", "email"),
        "setCustomerId": setter("customerId"),
        "setLocale": setter("locale"),
        "setPurchaseOrderNumber": setter("purchaseOrderNumber"),
    },
    "types": {
        "addFieldDefinition": add_field_definition,
        "removeFieldDefinition": remove_field_definition,
        "changeName": setter("name", required=True, kind=dict),
        "setDescription": setter("description", kind=dict),
    },
}
