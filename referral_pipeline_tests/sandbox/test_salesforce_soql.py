"""The SOQL subset of the Salesforce simulator, tested directly: parsing, binding against the
schema, evaluation, ordering, the stamp-index plan and the errors Salesforce gives."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from referral_pipeline.sandbox.core.store import Collection, CollectionSpec
from referral_pipeline.sandbox.core import stamps
from referral_pipeline.sandbox.salesforce.query import select_rows
from referral_pipeline.sandbox.salesforce.schema import Schema, make_id
from referral_pipeline.sandbox.salesforce.soql import SoqlError, compile_query, datetime_micros, parse

SCHEMA = Schema()
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=timezone.utc)


def q(soql: str):
    return compile_query(soql, SCHEMA, NOW)


def ids(bound, records):
    rows = [r for r in records if bound.match is None or bound.match(r)]
    bound.sort(rows)
    return [r["Id"] for r in rows]


def err(soql: str) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        q(soql)
    return info.value


C1, C2, C3, C4 = (make_id("003", n) for n in (1, 2, 3, 4))
CONTACTS = [
    {"Id": C1, "LastName": "Smith", "FirstName": "Ann", "Email": "ann@example.com", "HasOptedOutOfEmail": False,
     "Loyalty_Points_Balance__c": 10.0, "SystemModstamp": "2025-01-01T00:00:00.000+0000", "MailingCountry": "US"},
    {"Id": C2, "LastName": "jones", "FirstName": None, "Email": "bob@example.org", "HasOptedOutOfEmail": True,
     "Loyalty_Points_Balance__c": 250.5, "SystemModstamp": "2025-01-02T00:00:00.000+0000", "MailingCountry": "DE"},
    {"Id": C3, "LastName": "O'Brien", "Email": None, "Loyalty_Points_Balance__c": "lots",  # planted invalid value
     "SystemModstamp": "2025-01-02T00:00:00.000+0000", "MailingCountry": "us"},
    {"Id": C4, "LastName": "Zed", "Email": "z@example.com", "Loyalty_Points_Balance__c": None,
     "SystemModstamp": "not a date", "MailingCountry": None},
]


# ---- parsing -----------------------------------------------------------------------------------
def test_parse_select_where_order_limit_offset():
    parsed = parse("select Id, LastName FROM Contact where LastName = 'x' order by SystemModstamp desc nulls first, "
                   "Id limit 10 offset 5")
    assert [f.path for f in parsed.fields] == ["Id", "LastName"]
    assert parsed.sobject == "Contact" and parsed.limit == 10 and parsed.offset == 5
    first, second = parsed.order_by
    assert (first.field.path, first.desc, first.nulls_last) == ("SystemModstamp", True, False)
    assert (second.field.path, second.desc, second.nulls_last) == ("Id", False, False)
    assert parse("SELECT COUNT() FROM Contact").count_only


def test_field_and_object_names_are_case_insensitive_and_canonical_in_results():
    bound = q("select id, lastname from contact where lastname = 'SMITH'")
    assert bound.obj.name == "Contact"
    assert [f.name for f in bound.fields] == ["Id", "LastName"]
    assert ids(bound, CONTACTS) == [C1]


@pytest.mark.parametrize("literal", ["2025-01-02T00:00:00Z", "2025-01-02T00:00:00.000+0000",
                                     "2025-01-02T01:00:00+01:00", "2025-01-01T19:00:00-05:00"])
def test_unquoted_datetime_literals_in_any_offset_format(literal):
    bound = q(f"SELECT Id FROM Contact WHERE SystemModstamp >= {literal}")
    assert ids(bound, CONTACTS) == [C2, C3]


def test_string_escapes_and_like():
    assert ids(q(r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien'"), CONTACTS) == [C3]
    assert ids(q("SELECT Id FROM Contact WHERE Email LIKE '%@example.com'"), CONTACTS) == [C1, C4]
    assert ids(q("SELECT Id FROM Contact WHERE LastName LIKE 'J_nes'"), CONTACTS) == [C2]
    assert ids(q(r"SELECT Id FROM Contact WHERE LastName LIKE '100\%'"), [{"Id": C1, "LastName": "100%"},
                                                                          {"Id": C2, "LastName": "1000"}]) == [C1]


def test_comparisons_in_not_in_and_boolean_logic():
    assert ids(q("SELECT Id FROM Contact WHERE Loyalty_Points_Balance__c > 10"), CONTACTS) == [C2]
    assert ids(q("SELECT Id FROM Contact WHERE Loyalty_Points_Balance__c <= 10.0"), CONTACTS) == [C1]
    assert ids(q("SELECT Id FROM Contact WHERE MailingCountry IN ('US', 'FR')"), CONTACTS) == [C1, C3]
    assert ids(q("SELECT Id FROM Contact WHERE MailingCountry NOT IN ('US', null)"), CONTACTS) == [C2]
    assert ids(q("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = false"), CONTACTS) == [C1, C3, C4]
    assert ids(q("SELECT Id FROM Contact WHERE NOT (MailingCountry = 'US' OR Email = null)"), CONTACTS) == [C2, C4]
    assert ids(q("SELECT Id FROM Contact WHERE (MailingCountry = 'DE' OR LastName = 'zed') AND Email != null"),
               CONTACTS) == [C2, C4]
    assert ids(q("SELECT Id FROM Contact WHERE Id IN ('" + C1[:15] + "', '" + C4 + "')"), CONTACTS) == [C1, C4]


def test_null_semantics():
    assert ids(q("SELECT Id FROM Contact WHERE Email = null"), CONTACTS) == [C3]
    assert ids(q("SELECT Id FROM Contact WHERE FirstName != null"), CONTACTS) == [C1]
    # like Salesforce, != 'x' also returns rows whose value is null
    assert ids(q("SELECT Id FROM Contact WHERE MailingCountry != 'DE'"), CONTACTS) == [C1, C3, C4]


def test_invalid_stored_values_never_match_and_never_crash():
    assert ids(q("SELECT Id FROM Contact WHERE Loyalty_Points_Balance__c > 0"), CONTACTS) == [C1, C2]
    assert ids(q("SELECT Id FROM Contact WHERE SystemModstamp < 2030-01-01T00:00:00Z"), CONTACTS) == [C1, C2, C3]
    rows = list(CONTACTS)
    q("SELECT Id FROM Contact ORDER BY Loyalty_Points_Balance__c DESC, SystemModstamp").sort(rows)
    assert [r["Id"] for r in rows] == [C2, C1, C4, C3]  # "lots" sorts as null; then the bad stamp (null) first


def test_order_by_several_fields_with_nulls_first_and_last():
    assert ids(q("SELECT Id FROM Contact ORDER BY SystemModstamp DESC, Id DESC"), CONTACTS) == [C3, C2, C1, C4]
    assert ids(q("SELECT Id FROM Contact ORDER BY FirstName"), CONTACTS) == [C2, C3, C4, C1]  # ASC: nulls first
    assert ids(q("SELECT Id FROM Contact ORDER BY FirstName NULLS LAST, Id"), CONTACTS) == [C1, C2, C3, C4]
    assert ids(q("SELECT Id FROM Contact ORDER BY FirstName DESC"), CONTACTS) == [C1, C2, C3, C4]  # DESC: nulls last
    assert ids(q("SELECT Id FROM Contact ORDER BY MailingCountry DESC NULLS FIRST, LastName"), CONTACTS) == [
        C4, C3, C1, C2]  # text ordering ignores case: 'US' and 'us' tie, then LastName


def test_date_literals_relative_to_now():
    items = [{"Id": make_id("801", n), "EffectiveDate": d} for n, d in
             enumerate(["2025-03-09", "2025-03-10", "2025-03-11", "2025-02-01"], start=1)]
    assert [r["Id"][-6:] for r in items if q("SELECT Id FROM Order WHERE EffectiveDate = TODAY").match(r)] == \
        [items[1]["Id"][-6:]]
    assert len([r for r in items if q("SELECT Id FROM Order WHERE EffectiveDate = LAST_N_DAYS:7").match(r)]) == 2
    assert len([r for r in items if q("SELECT Id FROM Order WHERE EffectiveDate > TODAY").match(r)]) == 1
    assert q("SELECT Id FROM Contact WHERE CreatedDate = YESTERDAY").match({"CreatedDate": "2025-03-09T23:59:59.000+0000"})
    assert not q("SELECT Id FROM Contact WHERE CreatedDate = YESTERDAY").match({"CreatedDate": "2025-03-10T00:00:00.000Z"})
    assert q("SELECT Id FROM Order WHERE EffectiveDate >= 2025-03-10").match({"EffectiveDate": "2025-03-11"})


# ---- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("soql,reason", [
    ("SELECT Id FROM", "unexpected token: <EOF>"),
    ("SELECT Id Contact", "unexpected token: 'Contact'"),
    ("SELECT Id FROM Contact WHERE", "unexpected token: <EOF>"),
    ("SELECT Id FROM Contact WHERE LastName = 'x' AND Email = 'y' OR Id = null", "unexpected token: 'OR'"),
    ("SELECT Id FROM Contact WHERE LastName = \"x\"", "no viable alternative at character '\"'"),
    ("SELECT Id FROM Contact WHERE LastName = 'x", "no viable alternative at character '''"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00", "no viable alternative at character '<EOF>'"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00.000 0000", "no viable alternative at character ' '"),
    ("SELECT Id FROM Contact LIMIT x", "unexpected token: 'x'"),
    ("SELECT Id FROM Contact GROUP BY Id", "GROUP is not supported"),
])
def test_malformed_queries(soql, reason):
    e = err(soql)
    assert e.code == "MALFORMED_QUERY"
    assert reason in e.message and "ERROR at Row:1:Column:" in e.message


def test_error_message_points_at_the_column():
    e = err("SELECT Id, Nope__c FROM Contact")
    assert e.code == "INVALID_FIELD"
    assert e.message.startswith("\nSELECT Id, Nope__c FROM Contact\n           ^\nERROR at Row:1:Column:12\n"
                                "No such column 'Nope__c' on entity 'Contact'.")


@pytest.mark.parametrize("soql,code,fragment", [
    ("SELECT Id FROM Contacts", "INVALID_TYPE", "sObject type 'Contacts' is not supported"),
    ("SELECT Id FROM Contact WHERE Bogus = 1", "INVALID_FIELD", "No such column 'Bogus'"),
    ("SELECT Id FROM Contact ORDER BY Bogus", "INVALID_FIELD", "No such column 'Bogus'"),
    ("SELECT Account.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship 'Account'"),
    ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_FIELD",
     "value of filter criterion for field 'LastName' must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = 'true'", "INVALID_FIELD", "must be of type boolean"),
    ("SELECT Id FROM Contact WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
    ("SELECT Id, id FROM Contact", "INVALID_FIELD", "duplicate field selected: Id"),
    ("SELECT Id FROM Contact WHERE Loyalty_Points_Balance__c LIKE '1%'", "INVALID_FIELD", "invalid operator"),
])
def test_binding_errors(soql, code, fragment):
    e = err(soql)
    assert e.code == code and fragment in e.message


def test_offset_limit_and_empty_query():
    assert err("SELECT Id FROM Contact OFFSET 2001").code == "NUMBER_OUTSIDE_VALID_RANGE"
    assert err("  ").code == "MALFORMED_QUERY"


# ---- the stamp-index plan ---------------------------------------------------------------------------
def test_stamp_range_of_keyset_and_window_queries():
    x = "2025-01-02T00:00:00.000+0000"
    keyset = q(f"SELECT Id FROM Contact WHERE SystemModstamp > {x} OR (SystemModstamp = {x} AND Id > '{C1}') "
               "ORDER BY SystemModstamp, Id LIMIT 5")
    rng = keyset.stamp_range("SystemModstamp")
    assert (rng.lo, rng.lo_inclusive, rng.hi) == (datetime_micros(x), True, None)
    assert keyset.ordered_like_stamp_index("SystemModstamp", "Id")
    window = q("SELECT Id FROM Contact WHERE LastName != null AND SystemModstamp >= 2025-01-01T00:00:00Z "
               "AND SystemModstamp < 2025-02-01T00:00:00Z")
    rng = window.stamp_range("SystemModstamp")
    assert (rng.lo_inclusive, rng.hi_inclusive) == (True, False)
    assert rng.hi - rng.lo == 31 * 86400 * 10**6
    assert q("SELECT Id FROM Contact WHERE SystemModstamp > 2025-01-01T00:00:00Z OR LastName = 'x'") \
        .stamp_range("SystemModstamp") is None
    assert not q("SELECT Id FROM Contact ORDER BY Id").ordered_like_stamp_index("SystemModstamp", "Id")
    assert not q("SELECT Id FROM Contact ORDER BY SystemModstamp DESC").ordered_like_stamp_index("SystemModstamp", "Id")


def test_keyset_query_walks_the_index_instead_of_scanning():
    """A keyset page near the end of 20,000 records evaluates the filter on about one page of rows."""
    coll = Collection(CollectionSpec("Contact", key="Id", stamp="SystemModstamp", stamp_format=stamps.fmt_salesforce))
    base = stamps.to_micros("2025-01-01T00:00:00Z")
    coll.replace_all({"Id": make_id("003", i), "LastName": f"n{i}",
                      "SystemModstamp": stamps.fmt_salesforce(datetime.fromtimestamp((base + i // 4 * 10**6) / 1e6,
                                                                                     timezone.utc))}
                     for i in range(20_000))
    last = sorted(coll.values(), key=lambda r: (r["SystemModstamp"], r["Id"]))[19_000]
    x, y = last["SystemModstamp"], last["Id"]
    bound = q(f"SELECT Id FROM Contact WHERE SystemModstamp > {x} OR (SystemModstamp = {x} AND Id > '{y}') "
              "ORDER BY SystemModstamp, Id LIMIT 100")
    calls = 0
    inner = bound.match

    def counting(rec):
        nonlocal calls
        calls += 1
        return inner(rec)
    bound.match = counting
    rows = select_rows(coll, bound, include_deleted=False)
    assert len(rows) == 100 and calls <= 104
    expected = sorted(coll.values(), key=lambda r: (r["SystemModstamp"], r["Id"]))[19_001:19_101]
    assert [r["Id"] for r in rows] == [r["Id"] for r in expected]
    # an upper bound stops the walk too
    bound = q("SELECT Id FROM Contact WHERE SystemModstamp >= 2025-01-01T00:00:00Z AND "
              "SystemModstamp < 2025-01-01T00:00:10Z")
    calls, inner = 0, bound.match
    bound.match = counting
    assert len(select_rows(coll, bound, include_deleted=False)) == 40 and calls <= 41
