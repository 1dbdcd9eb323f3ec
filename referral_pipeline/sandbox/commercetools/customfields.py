"""Custom Types and custom fields: resolving a Type, validating values against its field
definitions, and the ``setCustomType`` / ``setCustomField`` semantics shared by customers and orders.

A resource's ``custom`` is ``{"type": {"typeId": "type", "id": ...}, "fields": {...}}``. Values are
checked against the Type's ``fieldDefinitions`` (``String``, ``Number``, ``Boolean``, ``Enum``,
``LocalizedEnum``, ``LocalizedString``, ``Date``, ``Time``, ``DateTime``, ``Money``,
``Reference``, ``Set``); a wrong value is ``InvalidField``, a missing required field
``RequiredField``, an unknown field ``InvalidField``, an unknown Type
``ReferencedResourceNotFound``, a Type not made for the resource ``InvalidOperation``.
"""
from __future__ import annotations

import re
from typing import Any

from . import errors

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_RE = re.compile(r"^\d{2}:\d{2}:\d{2}(\.\d{1,3})?$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$")
_ZERO_DECIMAL = {"JPY", "KRW", "CLP", "ISK", "VND", "XAF", "XOF", "HUF"}


def find_type(types, ident: Any) -> dict:
    """The Type a ``TypeResourceIdentifier`` (``{"typeId": "type", "id"|"key": ...}``) names."""
    if not isinstance(ident, dict) or (ident.get("id") is None and ident.get("key") is None):
        raise errors.invalid_json("type: Either 'id' or 'key' must be set on the type resource identifier.")
    if ident.get("id") is not None:
        found = types.get(ident["id"])
    else:
        found = next((t for t in types.values() if t.get("key") == ident["key"]), None)
    if found is None:
        raise errors.referenced_not_found("type", ident)
    return found


def _definitions(type_rec: dict) -> dict[str, dict]:
    return {d.get("name"): d for d in type_rec.get("fieldDefinitions") or [] if isinstance(d, dict)}


def validate_value(definition: dict, value: Any, field: str) -> Any:
    """The value as stored, or ``InvalidField``."""
    ftype = definition.get("type") or {}
    ok, stored = _check(ftype, value)
    if not ok:
        allowed = _enum_keys(ftype) if ftype.get("name") in ("Enum", "LocalizedEnum") else None
        raise errors.invalid_field(field, value, allowed=allowed)
    return stored


def _enum_keys(ftype: dict) -> list:
    return [v.get("key") for v in ftype.get("values") or [] if isinstance(v, dict)]


def _check(ftype: dict, value: Any) -> tuple[bool, Any]:
    name = ftype.get("name")
    if name == "String":
        return isinstance(value, str), value
    if name == "Boolean":
        return isinstance(value, bool), value
    if name == "Number":
        return isinstance(value, (int, float)) and not isinstance(value, bool), value
    if name in ("Enum", "LocalizedEnum"):
        return isinstance(value, str) and value in _enum_keys(ftype), value
    if name == "LocalizedString":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values()), value
    if name == "Date":
        return isinstance(value, str) and bool(_DATE_RE.match(value)), value
    if name == "Time":
        return isinstance(value, str) and bool(_TIME_RE.match(value)), value
    if name == "DateTime":
        return isinstance(value, str) and bool(_DATETIME_RE.match(value)), value
    if name == "Money":
        return _check_money(value)
    if name == "Reference":
        ok = isinstance(value, dict) and isinstance(value.get("id"), str) \
            and value.get("typeId") == ftype.get("referenceTypeId")
        return ok, value
    if name == "Set":
        if not isinstance(value, list):
            return False, value
        element = ftype.get("elementType") or {}
        checked = [_check(element, v) for v in value]
        return all(ok for ok, _ in checked), [v for _, v in checked]
    return True, value  # a field type the sandbox does not know: accept as given


def _check_money(value: Any) -> tuple[bool, Any]:
    if not (isinstance(value, dict) and isinstance(value.get("currencyCode"), str)
            and isinstance(value.get("centAmount"), int) and not isinstance(value.get("centAmount"), bool)):
        return False, value
    digits = value.get("fractionDigits", 0 if value["currencyCode"] in _ZERO_DECIMAL else 2)
    return True, {"type": "centPrecision", "currencyCode": value["currencyCode"],
                  "centAmount": value["centAmount"], "fractionDigits": digits}


def custom_from_draft(types, resource_type_id: str, type_ident: Any, fields: Any) -> dict | None:
    """``setCustomType``: the new ``custom`` (None when ``type`` is absent: removes the Type)."""
    if type_ident is None:
        return None
    type_rec = find_type(types, type_ident)
    if resource_type_id not in (type_rec.get("resourceTypeIds") or []):
        raise errors.invalid_operation(
            f"The type with key '{type_rec.get('key')}' does not have '{resource_type_id}' as resourceTypeId.")
    if fields is not None and not isinstance(fields, dict):
        raise errors.invalid_json("fields: JSON object expected.")
    definitions = _definitions(type_rec)
    stored = {}
    for name, value in (fields or {}).items():
        if value is None:
            continue
        if name not in definitions:
            raise _undefined_field(name, value, type_rec)
        stored[name] = validate_value(definitions[name], value, name)
    for name, definition in definitions.items():
        if definition.get("required") and name not in stored:
            raise errors.required_field(name)
    return {"type": {"typeId": "type", "id": type_rec["id"]}, "fields": stored}


def set_custom_field(types, custom: Any, name: Any, value: Any) -> dict:
    """``setCustomField``: the new ``custom`` (``value`` null or absent removes the field)."""
    if not isinstance(name, str) or not name:
        raise errors.invalid_json("name: Missing required value.")
    if not isinstance(custom, dict) or not isinstance(custom.get("type"), dict):
        raise errors.invalid_operation("This resource has no custom type; use 'setCustomType' first.")
    fields = dict(custom.get("fields") or {})
    type_rec = types.get(custom["type"].get("id"))
    definitions = _definitions(type_rec) if type_rec else None
    if value is None:
        if name not in fields:
            raise errors.invalid_operation(f"Cannot remove custom field '{name}' because it does not exist.")
        if definitions and definitions.get(name, {}).get("required"):
            raise errors.required_field(name)
        del fields[name]
    elif definitions is None:
        fields[name] = value  # the resource's Type is not in the sandbox: accept as given
    elif name not in definitions:
        raise _undefined_field(name, value, type_rec)
    else:
        fields[name] = validate_value(definitions[name], value, name)
    return {**custom, "fields": fields}


def _undefined_field(name: str, value: Any, type_rec: dict) -> errors.ApiError:
    return errors.invalid_field(name, value,
                                message=f"The field '{name}' is not defined in the type '{type_rec.get('key')}'.")


# ---- Types --------------------------------------------------------------------------------------
FIELD_TYPES = {"Boolean", "String", "LocalizedString", "Enum", "LocalizedEnum", "Number", "Money", "Date", "Time",
               "DateTime", "Reference", "Set"}
RESOURCE_TYPE_IDS = {"address", "asset", "associate-role", "attribute-group", "business-unit", "cart-discount",
                     "category", "channel", "customer", "customer-group", "custom-line-item", "discount-code",
                     "inventory-entry", "line-item", "order", "order-edit", "order-delivery",
                     "order-parcel", "order-return-item", "payment", "payment-interface-interaction",
                     "product-price", "product-selection", "product-tailoring", "quote", "review",
                     "shipping", "shipping-method", "shopping-list", "shopping-list-text-line-item",
                     "standalone-price", "store", "transaction", "recurring-order", "discount-group"}


def validate_field_definition(definition: Any) -> dict:
    if not isinstance(definition, dict):
        raise errors.invalid_json("fieldDefinitions: JSON object expected.")
    for required in ("name", "type", "label"):
        if definition.get(required) in (None, ""):
            raise errors.invalid_json(f"fieldDefinitions -> {required}: Missing required value.")
    ftype = definition["type"]
    if not isinstance(ftype, dict) or ftype.get("name") not in FIELD_TYPES:
        raise errors.invalid_json(f"fieldDefinitions -> type: Invalid field type '{_type_name(ftype)}'.")
    if not re.match(r"^[A-Za-z0-9_\-]{2,36}$", str(definition["name"])):
        raise errors.invalid_field("name", definition["name"])
    return {"required": False, "inputHint": "SingleLine", **definition}


def _type_name(ftype: Any) -> str:
    return ftype.get("name") if isinstance(ftype, dict) else str(ftype)


def validate_type_draft(draft: Any) -> dict:
    """A ``TypeDraft`` checked for the fields the API requires."""
    if not isinstance(draft, dict):
        raise errors.invalid_json("JSON object expected.")
    for required in ("key", "name", "resourceTypeIds"):
        if draft.get(required) in (None, "", []):
            raise errors.invalid_json(f"{required}: Missing required value.")
    if not re.match(r"^[A-Za-z0-9_\-]{2,256}$", str(draft["key"])):
        raise errors.invalid_field("key", draft["key"])
    if not isinstance(draft["name"], dict):
        raise errors.invalid_json("name: JSON object expected (LocalizedString).")
    if not isinstance(draft["resourceTypeIds"], list):
        raise errors.invalid_json("resourceTypeIds: JSON array expected.")
    bad = [r for r in draft["resourceTypeIds"] if r not in RESOURCE_TYPE_IDS]
    if bad:
        raise errors.invalid_json(f"resourceTypeIds: Invalid resource type id '{bad[0]}'.")
    definitions = [validate_field_definition(d) for d in draft.get("fieldDefinitions") or []]
    names = [d["name"] for d in definitions]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise errors.duplicate_field("name", duplicate)
    return {"key": draft["key"], "name": draft["name"],
            **({"description": draft["description"]} if draft.get("description") is not None else {}),
            "resourceTypeIds": list(draft["resourceTypeIds"]), "fieldDefinitions": definitions}
