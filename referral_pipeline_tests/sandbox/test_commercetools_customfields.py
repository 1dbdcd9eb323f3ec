"""Custom Types and custom-field validation of the commercetools simulator, tested directly."""
from __future__ import annotations

import pytest

from referral_pipeline.sandbox.commercetools import customfields as CF
from referral_pipeline.sandbox.commercetools.errors import ApiError
from referral_pipeline.sandbox.commercetools.resources import SPECS
from referral_pipeline.sandbox.core.store import Collection


def field(name, ftype, required=False):
    return {"name": name, "label": {"en": name}, "required": required, "type": ftype}


TYPE = {"id": "t-1", "key": "everything", "resourceTypeIds": ["customer"], "fieldDefinitions": [
    field("s", {"name": "String"}), field("n", {"name": "Number"}), field("b", {"name": "Boolean"}),
    field("e", {"name": "Enum", "values": [{"key": "a", "label": "A"}, {"key": "b", "label": "B"}]}),
    field("ls", {"name": "LocalizedString"}), field("d", {"name": "Date"}), field("t", {"name": "Time"}),
    field("dt", {"name": "DateTime"}), field("m", {"name": "Money"}),
    field("r", {"name": "Reference", "referenceTypeId": "customer"}),
    field("set", {"name": "Set", "elementType": {"name": "Number"}}),
    field("must", {"name": "String"}, required=True)]}


@pytest.fixture
def types():
    coll = Collection(SPECS["types"])
    coll.replace_all([TYPE])
    return coll


def definition(name):
    return next(d for d in TYPE["fieldDefinitions"] if d["name"] == name)


@pytest.mark.parametrize("name,good,bad", [
    ("s", "text", 5), ("n", 2.5, True), ("n", 3, "3"), ("b", False, "false"), ("e", "b", "c"),
    ("ls", {"en": "Hi"}, "Hi"), ("d", "2024-02-29", "2024-02-29T00:00:00Z"), ("t", "13:45:00.250", "1pm"),
    ("dt", "2024-02-29T10:00:00.000Z", "2024-02-29"), ("r", {"typeId": "customer", "id": "c-1"}, {"id": "c-1"}),
    ("set", [1, 2.5], [1, "2"]),
])
def test_values_are_checked_against_the_field_type(name, good, bad):
    assert CF.validate_value(definition(name), good, name) == good
    with pytest.raises(ApiError) as err:
        CF.validate_value(definition(name), bad, name)
    assert (err.value.status, err.value.code, err.value.extra["field"], err.value.extra["invalidValue"]) == \
        (400, "InvalidField", name, bad)


def test_money_is_stored_as_cent_precision_and_enum_errors_list_allowed_values():
    assert CF.validate_value(definition("m"), {"currencyCode": "JPY", "centAmount": 500}, "m") == \
        {"type": "centPrecision", "currencyCode": "JPY", "centAmount": 500, "fractionDigits": 0}
    with pytest.raises(ApiError) as err:
        CF.validate_value(definition("m"), {"currencyCode": "USD", "centAmount": 1.5}, "m")
    assert err.value.code == "InvalidField"
    with pytest.raises(ApiError) as err:
        CF.validate_value(definition("e"), "z", "e")
    assert err.value.extra["allowedValues"] == ["a", "b"]


def test_set_custom_type_requires_required_fields_and_a_matching_resource(types):
    custom = CF.custom_from_draft(types, "customer", {"typeId": "type", "key": "everything"}, {"must": "x", "n": 1})
    assert custom == {"type": {"typeId": "type", "id": "t-1"}, "fields": {"must": "x", "n": 1}}
    with pytest.raises(ApiError) as err:
        CF.custom_from_draft(types, "customer", {"typeId": "type", "id": "t-1"}, {"n": 1})
    assert (err.value.code, err.value.extra) == ("RequiredField", {"field": "must"})
    with pytest.raises(ApiError) as err:
        CF.custom_from_draft(types, "order", {"typeId": "type", "id": "t-1"}, {"must": "x"})
    assert err.value.code == "InvalidOperation"
    with pytest.raises(ApiError) as err:
        CF.custom_from_draft(types, "customer", {"typeId": "type", "id": "missing"}, {})
    assert (err.value.code, err.value.extra) == ("ReferencedResourceNotFound", {"typeId": "type", "id": "missing"})
    assert CF.custom_from_draft(types, "customer", None, None) is None


def test_set_custom_field(types):
    custom = {"type": {"typeId": "type", "id": "t-1"}, "fields": {"must": "x", "s": "old"}}
    assert CF.set_custom_field(types, custom, "s", "new")["fields"] == {"must": "x", "s": "new"}
    assert CF.set_custom_field(types, custom, "s", None)["fields"] == {"must": "x"}
    assert custom["fields"] == {"must": "x", "s": "old"}          # never mutated in place
    with pytest.raises(ApiError) as err:
        CF.set_custom_field(types, custom, "must", None)
    assert err.value.code == "RequiredField"
    with pytest.raises(ApiError) as err:
        CF.set_custom_field(types, custom, "n", None)
    assert err.value.code == "InvalidOperation"
    with pytest.raises(ApiError) as err:
        CF.set_custom_field(types, custom, "nope", 1)
    assert err.value.code == "InvalidField" and "not defined in the type 'everything'" in err.value.message
    unknown_type = {"type": {"typeId": "type", "id": "elsewhere"}, "fields": {}}
    assert CF.set_custom_field(types, unknown_type, "anything", [1])["fields"] == {"anything": [1]}


def test_type_drafts():
    draft = CF.validate_type_draft({"key": "k1", "name": {"en": "K"}, "resourceTypeIds": ["order"],
                                    "fieldDefinitions": [field("xx", {"name": "String"})]})
    assert draft["fieldDefinitions"][0]["inputHint"] == "SingleLine" and "description" not in draft
    for bad, code in (({"key": "k1", "name": {"en": "K"}, "resourceTypeIds": ["planet"]}, "InvalidJsonInput"),
                      ({"key": "k", "name": {"en": "K"}, "resourceTypeIds": ["order"]}, "InvalidField"),
                      ({"key": "k1", "name": {"en": "K"}, "resourceTypeIds": ["order"],
                        "fieldDefinitions": [field("xx", {"name": "String"}), field("xx", {"name": "Number"})]},
                       "DuplicateField"),
                      ({"key": "k1", "name": {"en": "K"}, "resourceTypeIds": ["order"],
                        "fieldDefinitions": [field("xx", {"name": "Colour"})]}, "InvalidJsonInput"),
                      ({"key": "k1", "name": {"en": "K"}, "resourceTypeIds": ["order"],
                        "fieldDefinitions": [field("x", {"name": "String"})]}, "InvalidField")):   # name 2..36
        with pytest.raises(ApiError) as err:
            CF.validate_type_draft(bad)
        assert err.value.code == code
