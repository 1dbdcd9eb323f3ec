"""Writes to stored sObjects the way Salesforce's DML does them.

``SObjectRepo`` wraps the simulator's collections with field indexes (External ID lookups,
OrderItems by OrderId). ``Transaction`` runs create / update / upsert / delete with Salesforce's
validation (unknown and read-only fields, required fields, lengths, e-mail, restricted picklists,
lookups, unique External IDs), fills system and derived fields (SystemModstamp, LastModifiedDate,
Contact.Name, auto-numbers, OrderItem.TotalPrice, the Order.TotalAmount roll-up) and keeps an
undo log so that an allOrNone request can be rolled back.

Stored records are never mutated in place: every write stores a new dict, so query cursors that
hold references to older dicts keep seeing the data as it was when the query ran.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from ..core import stamps
from ..core.store import Collection
from .schema import FieldDef, FieldValueError, ObjectDef, Schema, convert_value, normalize_id

_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


class WriteError(Exception):
    """A per-record DML error: Salesforce ``statusCode``, message and the fields concerned."""

    def __init__(self, status_code: str, message: str, fields: list[str] | None = None, http_status: int = 400):
        super().__init__(message)
        self.status_code, self.message, self.fields, self.http_status = status_code, message, fields or [], http_status

    def as_error(self) -> dict:
        """The entry of a collections / DML result's ``errors`` list."""
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def as_rest_error(self) -> dict:
        """The entry of a REST error array."""
        return {"message": self.message, "errorCode": self.status_code, "fields": self.fields}

    def as_bulk_error(self) -> str:
        """The ``sf__Error`` cell of a Bulk API 2.0 failed-results row."""
        return f"{self.status_code}:{self.message}:{','.join(self.fields)} --"


class FieldNameError(Exception):
    """A field name the type does not have (INVALID_FIELD for the whole request)."""

    def __init__(self, obj: ObjectDef, name: str):
        super().__init__(f"No such column '{name}' on sobject of type {obj.name}")
        self.obj, self.name = obj, name


def resolve_fields(obj: ObjectDef, body: dict, convert: Callable[[FieldDef, Any], Any] = convert_value,
                   skip: tuple[str, ...] = ("attributes",)) -> dict[str, Any]:
    """Map a JSON body's keys to canonical field names and convert values to their stored form.
    Raises ``FieldNameError`` for an unknown field and ``FieldValueError`` for an unconvertible value."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        if key in skip:
            continue
        fdef = obj.field(key)
        if fdef is None:
            raise FieldNameError(obj, key)
        out[fdef.name] = convert(fdef, value)
    return out


# ---- repository --------------------------------------------------------------------------------
class SObjectRepo:
    """The stored records by sObject type, plus value indexes on selected fields."""

    def __init__(self, collections: dict[str, Collection], schema: Schema):
        self.collections = collections
        self.schema = schema
        self._indexes: dict[tuple[str, str], dict[Any, set[str]]] = {}

    def clear_indexes(self) -> None:
        self._indexes.clear()

    def get(self, type_name: str, record_id: str) -> dict | None:
        rec = self.collections[type_name].get(record_id)
        if rec is None and isinstance(record_id, str) and len(record_id) == 15:
            rec = self.collections[type_name].get(normalize_id(record_id))
        return rec

    def find_type_of(self, record_id: str) -> str | None:
        """The stored type whose key prefix ``record_id`` has."""
        for name, obj in self.schema.objects.items():
            if record_id.startswith(obj.key_prefix):
                return name
        return None

    def put(self, type_name: str, record: dict) -> dict:
        coll = self.collections[type_name]
        rid = record["Id"]
        old = coll.get(rid)
        for (tname, fname), index in self._indexes.items():
            if tname != type_name:
                continue
            if old is not None:
                _index_remove(index, _index_value(old.get(fname)), rid)
            _index_add(index, _index_value(record.get(fname)), rid)
        return coll.put(record)

    def remove(self, type_name: str, record_id: str) -> None:
        coll = self.collections[type_name]
        old = coll.get(record_id)
        if old is None:
            return
        for (tname, fname), index in self._indexes.items():
            if tname == type_name:
                _index_remove(index, _index_value(old.get(fname)), record_id)
        coll.delete(record_id)

    def find(self, type_name: str, field_name: str, value: Any, include_deleted: bool = False) -> list[dict]:
        """Records whose ``field_name`` equals ``value`` (case-insensitive for text)."""
        index = self._index(type_name, field_name)
        ids = index.get(_index_value(value), ())
        coll = self.collections[type_name]
        out = [coll.get(i) for i in sorted(ids)]
        return [r for r in out if r is not None and (include_deleted or r.get("IsDeleted") is not True)]

    def _index(self, type_name: str, field_name: str) -> dict[Any, set[str]]:
        index = self._indexes.get((type_name, field_name))
        if index is None:
            index = {}
            for rid, rec in self.collections[type_name].records.items():
                _index_add(index, _index_value(rec.get(field_name)), rid)
            self._indexes[(type_name, field_name)] = index
        return index


def _index_value(value: Any) -> Any:
    if value is None:
        return None
    return value.casefold() if isinstance(value, str) else value


def _index_add(index: dict, value: Any, rid: str) -> None:
    if value is not None:
        index.setdefault(value, set()).add(rid)


def _index_remove(index: dict, value: Any, rid: str) -> None:
    ids = index.get(value)
    if ids is not None:
        ids.discard(rid)
        if not ids:
            del index[value]


# ---- transactions --------------------------------------------------------------------------------
@dataclass
class Transaction:
    """One DML request. Operations validate, write and log undo entries; ``rollback`` restores."""

    repo: SObjectRepo
    now: datetime
    user_id: str
    new_id: Callable[[str], str]          # key prefix -> fresh id
    next_number: Callable[[str], int]     # counter name -> next auto-number
    undo: list[tuple[str, str, dict | None]] = field(default_factory=list)

    def __post_init__(self):
        self.stamp = stamps.fmt_salesforce(self.now)

    @property
    def schema(self) -> Schema:
        return self.repo.schema

    # -- public operations
    def insert(self, obj: ObjectDef, values: dict[str, Any]) -> str:
        if "Id" in values:
            raise WriteError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        self._check_writable(obj, values, creating=True)
        self._check_values(obj, values, None)
        missing = [f.name for f in obj.field_list() if f.required and values.get(f.name) is None]
        if missing:
            raise WriteError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_unique(obj, values, None)
        rid = self.new_id(obj.key_prefix)
        record = {"Id": rid, **values}
        record.update(self._system_fields(created=True))
        self._derive(obj, record, None)
        self._put(obj.name, record)
        self._after_write(obj, record, None)
        return rid

    def update(self, obj: ObjectDef, record_id: str, values: dict[str, Any]) -> str:
        old = self._live(obj, record_id)
        values = {k: v for k, v in values.items() if k != "Id"}
        self._check_writable(obj, values, creating=False)
        self._check_values(obj, values, old)
        cleared = [f.name for f in obj.field_list() if f.required and f.name in values and values[f.name] is None]
        if cleared:
            raise WriteError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(cleared)}]", cleared)
        self._check_unique(obj, values, old["Id"])
        record = {**old, **values, **self._system_fields(created=False)}
        self._derive(obj, record, old)
        self._put(obj.name, record)
        self._after_write(obj, record, old)
        return old["Id"]

    def upsert(self, obj: ObjectDef, ext_field: FieldDef, ext_value: Any, values: dict[str, Any]) -> tuple[str, bool]:
        """Insert or update by External ID (or ``Id``); returns (id, created)."""
        if ext_field.name == "Id":
            if ext_value in (None, ""):
                return self.insert(obj, {k: v for k, v in values.items() if k != "Id"}), True
            return self.update(obj, ext_value, values), False
        if ext_value in (None, ""):
            raise WriteError("MISSING_ARGUMENT", f"{ext_field.name} not specified", [ext_field.name])
        given = values.get(ext_field.name)
        if given is not None and str(given).casefold() != str(ext_value).casefold():
            raise WriteError("INVALID_FIELD", f"The value of {ext_field.name} in the request body does not match "
                             f"the External ID value in the URL: {given}", [ext_field.name])
        matches = self.repo.find(obj.name, ext_field.name, ext_value)
        if len(matches) > 1:
            raise WriteError("DUPLICATE_EXTERNAL_ID", "A user-specified external ID matches more than one record "
                             "during an upsert", [ext_field.name], http_status=300)
        if matches:
            return self.update(obj, matches[0]["Id"], values), False
        return self.insert(obj, {**values, ext_field.name: ext_value}), True

    def delete(self, obj: ObjectDef, record_id: str, hard: bool = False) -> str:
        old = self._live(obj, record_id)
        if hard:
            self._remove(obj.name, old["Id"])
        else:
            self._put(obj.name, {**old, "IsDeleted": True, **self._system_fields(created=False)})
        if obj.name == "Order":
            for item in self.repo.find("OrderItem", "OrderId", old["Id"]):
                self.delete(self.schema.objects["OrderItem"], item["Id"], hard)
        if obj.name == "OrderItem":
            self._roll_up_order(old.get("OrderId"))
        return old["Id"]

    def rollback(self, to: int = 0) -> None:
        """Undo the writes logged after position ``to`` (newest first)."""
        while len(self.undo) > to:
            type_name, rid, old = self.undo.pop()
            if old is None:
                self.repo.remove(type_name, rid)
            else:
                self.repo.put(type_name, old)

    def savepoint(self) -> int:
        return len(self.undo)

    # -- helpers
    def _live(self, obj: ObjectDef, record_id: str) -> dict:
        rid = normalize_id(record_id)
        rec = self.repo.get(obj.name, rid) if rid and rid.startswith(obj.key_prefix) else None
        if rec is None:
            if rid is None:
                raise WriteError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}", ["Id"])
            raise WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [], http_status=404)
        if rec.get("IsDeleted") is True:
            raise WriteError("ENTITY_IS_DELETED", "entity is deleted", [], http_status=404)
        return rec

    def _system_fields(self, created: bool) -> dict:
        out = {"LastModifiedDate": self.stamp, "LastModifiedById": self.user_id, "SystemModstamp": self.stamp}
        if created:
            out = {"IsDeleted": False, "CreatedDate": self.stamp, "CreatedById": self.user_id, **out}
        return out

    def _check_writable(self, obj: ObjectDef, values: dict, creating: bool) -> None:
        attr = "createable" if creating else "updateable"
        bad = [name for name in values if not getattr(obj.field(name), attr)]
        if bad:
            raise WriteError("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {', '.join(bad)}. "
                             "Please check the security settings of this field and verify that it is read/write "
                             "for your profile or permission set.", bad)

    def _check_values(self, obj: ObjectDef, values: dict, old: dict | None) -> None:
        for name, value in values.items():
            if value is None:
                continue
            fdef = obj.field(name)
            if fdef.length and isinstance(value, str) and len(value) > fdef.length and fdef.type != "reference":
                raise WriteError("STRING_TOO_LONG", f"{fdef.label or name}: data value too large: {value[:50]} "
                                 f"(max length={fdef.length})", [name])
            if fdef.type == "email" and not _EMAIL_RE.match(value):
                raise WriteError("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {value}", [name])
            if fdef.restricted and value not in fdef.picklist:
                raise WriteError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                 f"{fdef.label or name}: bad value for restricted picklist field: {value}", [name])
            if fdef.type == "reference":
                values[name] = self._check_reference(fdef, value)

    def _check_reference(self, fdef: FieldDef, value: Any) -> str:
        """A lookup must hold an id of one of its target types; stored targets must exist."""
        label = fdef.label or fdef.name
        rid = normalize_id(value)
        if rid is None:
            raise WriteError("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [fdef.name])
        if rid[:3] not in {self.schema.prefix_of(t) for t in fdef.reference_to}:
            raise WriteError("FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {value}", [fdef.name])
        stored = [self.schema.object(t) for t in fdef.reference_to]
        target = next((o for o in stored if o is not None and o.key_prefix == rid[:3]), None)
        if target is not None:
            rec = self.repo.get(target.name, rid)
            if rec is None:
                raise WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
            if rec.get("IsDeleted") is True:
                raise WriteError("ENTITY_IS_DELETED", "entity is deleted", [fdef.name])
        return rid

    def _check_unique(self, obj: ObjectDef, values: dict, own_id: str | None) -> None:
        for name, value in values.items():
            fdef = obj.field(name)
            if not fdef.unique or value is None:
                continue
            others = [r for r in self.repo.find(obj.name, name, value) if r["Id"] != own_id]
            if others:
                raise WriteError("DUPLICATE_VALUE", f"duplicate value found: {name} duplicates value on record "
                                 f"with id: {others[0]['Id']}", [name])

    def _derive(self, obj: ObjectDef, record: dict, old: dict | None) -> None:
        """Fields Salesforce computes: Contact.Name, auto-numbers, OrderItem.TotalPrice."""
        if obj.name == "Contact":
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
        elif obj.name == "Order" and old is None:
            record["OrderNumber"] = f"{self.next_number('auto:Order.OrderNumber'):08d}"
            record["TotalAmount"] = 0.0
        elif obj.name == "OrderItem":
            if old is None:
                record["OrderItemNumber"] = f"{self.next_number('auto:OrderItem.OrderItemNumber'):010d}"
            qty, price = record.get("Quantity"), record.get("UnitPrice")
            if isinstance(qty, (int, float)) and isinstance(price, (int, float)):
                record["TotalPrice"] = round(qty * price, 2)
        elif obj.auto_name and old is None:
            record["Name"] = obj.auto_name.format(self.next_number(f"auto:{obj.name}.Name"))

    def _after_write(self, obj: ObjectDef, record: dict, old: dict | None) -> None:
        if obj.name == "OrderItem":
            self._roll_up_order(record.get("OrderId"))

    def _roll_up_order(self, order_id: str | None) -> None:
        """Order.TotalAmount is the sum of its live items' TotalPrice (a roll-up: the Order's
        SystemModstamp moves with it)."""
        order = self.repo.get("Order", order_id) if order_id else None
        if order is None or order.get("IsDeleted") is True:
            return
        total = sum(i.get("TotalPrice") or 0 for i in self.repo.find("OrderItem", "OrderId", order_id)
                    if isinstance(i.get("TotalPrice"), (int, float)))
        total = round(float(total), 2)
        if order.get("TotalAmount") != total:
            self._put("Order", {**order, "TotalAmount": total, "SystemModstamp": self.stamp})

    def _put(self, type_name: str, record: dict) -> None:
        self.undo.append((type_name, record["Id"], self.repo.get(type_name, record["Id"])))
        self.repo.put(type_name, record)

    def _remove(self, type_name: str, rid: str) -> None:
        self.undo.append((type_name, rid, self.repo.get(type_name, rid)))
        self.repo.remove(type_name, rid)


__all__ = ["FieldNameError", "SObjectRepo", "Transaction", "FieldValueError", "WriteError", "resolve_fields"]
