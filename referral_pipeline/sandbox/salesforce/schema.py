"""The simulated org's metadata: sObject types, their fields (type, required, read-only, External
ID, unique, picklist, length), record ids (key prefixes, 18-character checksum) and value
conversion for writes (JSON bodies and Bulk CSV cells).

Objects and fields follow contracts §3.2 plus the standard system fields every sObject has.
Fields that appear only in loaded records are added to the type (``Schema.observe``): if the
data has the field, the org has it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

from ..core import stamps

# ---- record ids ------------------------------------------------------------------------------
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def id_suffix(id15: str) -> str:
    """The 3-character case-safe suffix that turns a 15-character id into an 18-character one."""
    out = []
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        out.append(_SUFFIX_CHARS[bits])
    return "".join(out)


def make_id(prefix: str, number: int) -> str:
    """An 18-character id: key prefix, ``SB`` (the sandbox "pod"), a base-62 counter, checksum."""
    digits = ""
    while True:
        number, rem = divmod(number, 62)
        digits = _BASE62[rem] + digits
        if number == 0:
            break
    body = (prefix + "SB" + digits.rjust(10, "0"))[:15]
    return body + id_suffix(body)


def normalize_id(value: Any) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when it is not id-shaped."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return None
    return value if len(value) == 18 else value + id_suffix(value)


# ---- fields and objects ---------------------------------------------------------------------
TEXT_TYPES = frozenset({"string", "textarea", "email", "picklist", "phone", "url", "combobox"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})
ID_TYPES = frozenset({"id", "reference"})

# SOAP type names used in describe and in SOQL type errors
SOAP_TYPES = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
              "currency": "xsd:double", "percent": "xsd:double", "int": "xsd:int", "date": "xsd:date",
              "datetime": "xsd:dateTime"}
SOQL_TYPE_NAMES = {"datetime": "dateTime", "date": "date", "boolean": "boolean", "double": "double",
                   "currency": "double", "percent": "double", "int": "integer"}


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject type."""

    name: str
    type: str = "string"
    label: str = ""
    required: bool = False          # must be given (not null) on create; cannot be set to null
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    picklist: tuple[str, ...] = ()  # values shown by describe
    restricted: bool = False        # picklist values are enforced on write
    length: int | None = None

    @property
    def writable(self) -> bool:
        return self.createable or self.updateable

    def describe(self) -> dict:
        return {"name": self.name, "label": self.label or self.name.replace("__c", "").replace("_", " "),
                "type": self.type, "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
                "length": self.length or 0, "nillable": not self.required and self.type != "boolean",
                "createable": self.createable, "updateable": self.updateable, "externalId": self.external_id,
                "unique": self.unique, "idLookup": self.external_id or self.type == "id",
                "custom": self.name.endswith("__c"), "referenceTo": list(self.reference_to),
                "restrictedPicklist": self.restricted,
                "picklistValues": [{"value": v, "label": v, "active": True, "defaultValue": False}
                                   for v in self.picklist]}


@dataclass
class ObjectDef:
    """An sObject type: name, key prefix and fields (looked up case-insensitively)."""

    name: str
    key_prefix: str
    label: str
    fields: dict[str, FieldDef] = field(default_factory=dict)  # lower-case name -> field
    auto_name: str | None = None  # display format of an auto-number Name, e.g. "REF-{0:07d}"

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldDef | None:
        return self.fields.get(name.lower())

    def field_list(self) -> list[FieldDef]:
        return list(self.fields.values())

    def add(self, fdef: FieldDef) -> None:
        self.fields[fdef.name.lower()] = fdef

    def describe(self, version: str) -> dict:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {"name": self.name, "label": self.label, "labelPlural": self.label + "s", "keyPrefix": self.key_prefix,
                "custom": self.custom, "queryable": True, "createable": True, "updateable": True,
                "deletable": True, "undeletable": True, "searchable": True, "replicateable": True,
                "retrieveable": True, "triggerable": True,
                "urls": {"sobject": base, "describe": base + "/describe", "rowTemplate": base + "/{ID}"},
                "fields": [f.describe() for f in self.field_list()]}


def _system_fields() -> list[FieldDef]:
    ro = {"createable": False, "updateable": False}
    return [FieldDef("Id", "id", "Record ID", **ro, length=18),
            FieldDef("IsDeleted", "boolean", "Deleted", **ro),
            FieldDef("CreatedDate", "datetime", "Created Date", **ro),
            FieldDef("CreatedById", "reference", "Created By ID", reference_to=("User",), **ro, length=18),
            FieldDef("LastModifiedDate", "datetime", "Last Modified Date", **ro),
            FieldDef("LastModifiedById", "reference", "Last Modified By ID", reference_to=("User",), **ro, length=18),
            FieldDef("SystemModstamp", "datetime", "System Modstamp", **ro)]


def _owner() -> FieldDef:
    return FieldDef("OwnerId", "reference", "Owner ID", reference_to=("User", "Group"), length=18)


def _text(name: str, length: int = 255, **kw) -> FieldDef:
    return FieldDef(name, "string", length=length, **kw)


def _ref(name: str, target: str, **kw) -> FieldDef:
    return FieldDef(name, "reference", reference_to=(target,), length=18, **kw)


def _money(name: str, **kw) -> FieldDef:
    return FieldDef(name, "currency", **kw)


def _when(name: str, **kw) -> FieldDef:
    return FieldDef(name, "datetime", **kw)


CURRENCY = FieldDef("CurrencyIsoCode", "picklist", "Currency ISO Code", length=3, restricted=True,
                    picklist=("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK",
                              "HUF", "JPY", "SGD", "HKD", "INR", "MXN", "BRL", "ZAR"))
ORDER_STATUSES = ("Draft", "Activated", "Cancelled", "Refunded")
REWARD_STATUSES = ("pending", "on_hold", "approved", "issued", "canceled", "reversed", "not_eligible")


def _object(name: str, prefix: str, label: str, fields: Iterable[FieldDef], auto_name: str | None = None) -> ObjectDef:
    obj = ObjectDef(name, prefix, label, auto_name=auto_name)
    for fdef in [*_system_fields()[:1], *fields, *_system_fields()[1:]]:
        obj.add(fdef)
    return obj


def _contact_keys() -> list[FieldDef]:
    return [_ref("Advocate_Contact__c", "Contact"), _ref("Friend_Contact__c", "Contact"),
            _text("Advocate_Customer_Key__c"), _text("Friend_Customer_Key__c")]


def default_objects() -> dict[str, ObjectDef]:
    """The org's sObject types, by name (contracts §3.2 plus standard fields)."""
    objects = [
        _object("Account", "001", "Account", [
            _text("Name", required=True), CURRENCY, FieldDef("Type", "picklist", length=40),
            _text("AccountNumber", 40), FieldDef("Phone", "phone", length=40), FieldDef("Website", "url", length=255),
            _text("BillingCountry", 80), _text("BillingCity", 40), FieldDef("Description", "textarea", length=32000),
            _owner()]),
        _object("Contact", "003", "Contact", [
            _ref("AccountId", "Account"), FieldDef("Email", "email", length=80), _text("FirstName", 40),
            _text("LastName", 80, required=True), _text("Name", 121, createable=False, updateable=False),
            FieldDef("HasOptedOutOfEmail", "boolean"), _text("MailingCountry", 80), _text("MailingCity", 40),
            FieldDef("Phone", "phone", length=40), CURRENCY, _owner(),
            _text("Referral_Code__c", 64), FieldDef("Loyalty_Points_Balance__c", "double"),
            _text("Loyalty_VIP_Tier__c", 80), _text("Referral_Customer_Key__c", 128, external_id=True)]),
        _object("Order", "801", "Order", [
            _ref("AccountId", "Account", required=True), _ref("BillToContactId", "Contact"),
            _ref("ShipToContactId", "Contact"), _ref("Pricebook2Id", "Pricebook2"),
            _text("OrderNumber", 30, createable=False, updateable=False),
            FieldDef("EffectiveDate", "date", required=True),
            FieldDef("Status", "picklist", length=40, required=True, picklist=ORDER_STATUSES, restricted=True),
            FieldDef("Type", "picklist", length=40), FieldDef("Description", "textarea", length=32000), CURRENCY,
            _money("TotalAmount", createable=False, updateable=False),
            _money("Discount_Amount__c"), _money("Tax_Amount__c"), _money("Shipping_Amount__c"),
            _money("Refunded_Amount__c"), _text("Coupon_Code__c", 80), _text("Referral_Code__c", 64),
            _text("Friendbuy_Attribution_Id__c", 128), _text("IP_Address__c", 45), _text("User_Agent__c", 255),
            _text("Channel__c", 40), _text("Market__c", 40), _owner()]),
        _object("OrderItem", "802", "Order Product", [
            _ref("OrderId", "Order", required=True, updateable=False),
            _ref("PricebookEntryId", "PricebookEntry", required=True, updateable=False),
            _ref("Product2Id", "Product2", createable=False, updateable=False),
            _text("OrderItemNumber", 30, createable=False, updateable=False),
            _text("SKU__c", 80), _text("Product_Name__c", 255),
            FieldDef("Quantity", "double", required=True), _money("UnitPrice", required=True),
            _money("TotalPrice", createable=False, updateable=False), FieldDef("Description", "string", length=255),
            CURRENCY]),
        _object("Referral__c", "a0A", "Referral", [
            _text("Name", 80, createable=False, updateable=False),
            _text("Referral_Key__c", 255, external_id=True, unique=True), *_contact_keys(),
            _text("Referral_Code__c", 64), _text("Campaign_Id__c", 80), _text("Market__c", 40),
            FieldDef("Attribution_Method__c", "picklist", length=40,
                     picklist=("coupon", "friendbuy", "referral_code", "signup")),
            _when("Clicked_At__c"), _when("Signed_Up_At__c"), _when("First_Purchase_At__c"), CURRENCY, _owner()],
            auto_name="REF-{0:07d}"),
        _object("Referral_Reward__c", "a0B", "Referral Reward", [
            _text("Name", 80, createable=False, updateable=False),
            _text("Reward_Key__c", 255, external_id=True, unique=True), *_contact_keys(),
            _text("Order_Key__c", 255), _text("Campaign_Id__c", 80), _text("Market__c", 40),
            FieldDef("Status__c", "picklist", length=40, required=True, picklist=REWARD_STATUSES),
            _text("Status_Reason__c", 255), _money("Amount__c"), CURRENCY, _text("Promo_Code__c", 80),
            FieldDef("Fraud_Rules__c", "textarea", length=1000), _when("Status_Changed_At__c"),
            FieldDef("Review_Decision__c", "picklist", length=40, picklist=("approve", "reject")),
            FieldDef("Review_Notes__c", "textarea", length=32000), _owner()],
            auto_name="RWD-{0:07d}"),
    ]
    return {o.name: o for o in objects}


# prefixes of types we do not store but whose ids may appear in lookups
FOREIGN_PREFIXES = {"User": "005", "Group": "00G", "Pricebook2": "01s", "PricebookEntry": "01u", "Product2": "01t"}


class Schema:
    """All sObject types of the org; names are resolved case-insensitively."""

    def __init__(self, objects: dict[str, ObjectDef] | None = None):
        self.objects = objects if objects is not None else default_objects()
        self._by_lower = {n.lower(): o for n, o in self.objects.items()}

    def object(self, name: str) -> ObjectDef | None:
        return self._by_lower.get(str(name).lower())

    def prefix_of(self, type_name: str) -> str | None:
        obj = self.object(type_name)
        return obj.key_prefix if obj else FOREIGN_PREFIXES.get(type_name)

    def observe(self, type_name: str, records: Iterable[dict]) -> None:
        """Add fields that appear in stored records but not in the type (typed from the first value)."""
        obj = self.objects[type_name]
        seen: dict[str, Any] = {}
        for rec in records:
            for key in rec.keys() - seen.keys():
                if key != "attributes" and obj.field(key) is None:
                    seen[key] = rec[key]
        for key, sample in seen.items():
            obj.add(FieldDef(key, _infer_type(sample)))


def _infer_type(sample: Any) -> str:
    if isinstance(sample, bool):
        return "boolean"
    if isinstance(sample, (int, float)):
        return "double"
    if isinstance(sample, str) and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", sample):
        return "datetime"
    return "string"


# ---- value conversion for writes ------------------------------------------------------------
class FieldValueError(ValueError):
    """A value that cannot be converted to the field's type (JSON_PARSER_ERROR in JSON bodies,
    a per-row error in Bulk CSV)."""

    def __init__(self, fdef: FieldDef, value: Any, json_type: str):
        self.fdef, self.value, self.json_type = fdef, value, json_type
        super().__init__(f"Cannot deserialize instance of {SOQL_TYPE_NAMES.get(fdef.type, fdef.type)} "
                         f"from {json_type} value {value} or request may be missing a required field")


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUM_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER_INT" if isinstance(value, int) else "VALUE_NUMBER_FLOAT"
    return "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"


def convert_value(fdef: FieldDef, value: Any) -> Any:
    """The stored form of a written value (as Salesforce keeps it); raises ``FieldValueError``."""
    if value is None:
        return False if fdef.type == "boolean" else None
    t = fdef.type
    if isinstance(value, (dict, list)):
        raise FieldValueError(fdef, value, _json_type(value))
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise FieldValueError(fdef, value, _json_type(value))
    if t in NUMBER_TYPES:
        return _convert_number(fdef, value)
    if t == "datetime":
        return _convert_datetime(fdef, value)
    if t == "date":
        return _convert_date(fdef, value)
    text = value if isinstance(value, str) else (str(value).lower() if isinstance(value, bool) else str(value))
    return text if text != "" else None  # Salesforce stores an empty string as null


def _convert_number(fdef: FieldDef, value: Any) -> Any:
    if isinstance(value, bool):
        raise FieldValueError(fdef, value, _json_type(value))
    if isinstance(value, str):
        if not _NUM_RE.match(value.strip()):
            raise FieldValueError(fdef, value, "VALUE_STRING")
        value = float(value)
    if fdef.type == "int":
        if float(value) != int(value):
            raise FieldValueError(fdef, value, _json_type(value))
        return int(value)
    return float(value)


def _convert_datetime(fdef: FieldDef, value: Any) -> str:
    if not isinstance(value, str) or not value[:1].isdigit():
        raise FieldValueError(fdef, value, _json_type(value))
    try:
        return stamps.fmt_salesforce(stamps.parse_any(value))
    except (ValueError, OverflowError, IndexError):
        raise FieldValueError(fdef, value, "VALUE_STRING") from None


def _convert_date(fdef: FieldDef, value: Any) -> str:
    if not isinstance(value, str):
        raise FieldValueError(fdef, value, _json_type(value))
    text = value[:10] if len(value) > 10 and value[10:11] == "T" else value
    try:
        if not _DATE_RE.match(text):
            raise ValueError(text)
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise FieldValueError(fdef, value, "VALUE_STRING") from None
    return text


def convert_csv_cell(fdef: FieldDef, cell: str) -> tuple[bool, Any]:
    """A Bulk API CSV cell: ``(False, None)`` for an empty cell (field left unchanged), ``#N/A``
    sets null, anything else is converted like a JSON string."""
    if cell == "":
        return False, None
    if cell == "#N/A":
        return True, convert_value(fdef, None)
    return True, convert_value(fdef, cell)
