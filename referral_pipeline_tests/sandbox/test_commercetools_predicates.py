"""The commercetools predicate language and query planner, tested directly (no HTTP)."""
from __future__ import annotations

import pytest

from referral_pipeline.sandbox.commercetools import predicates as P
from referral_pipeline.sandbox.commercetools import query as Q
from referral_pipeline.sandbox.commercetools.resources import SPECS, schema
from referral_pipeline.sandbox.core.store import Collection

ORDER = {
    "id": "o-1", "version": 3, "orderNumber": "CT-1", "customerEmail": "Ann@Example.com",
    "createdAt": "2024-03-01T10:00:00.000Z", "lastModifiedAt": "2024-03-02T10:00:00.500Z",
    "orderState": "Open", "isGift": False, "taxRate": 0.2,
    "store": {"typeId": "store", "key": "us"},
    "totalPrice": {"type": "centPrecision", "currencyCode": "USD", "centAmount": 12000, "fractionDigits": 2},
    "lineItems": [{"id": "li-1", "quantity": 2, "variant": {"sku": "SKU-A"}},
                  {"id": "li-2", "quantity": 1, "variant": {"sku": "SKU-B"}}],
    "discountCodes": [{"discountCode": {"typeId": "discount-code", "id": "dc-1"}, "state": "MatchesCart"}],
    "tags": ["vip", "eu"],
    "emptyList": [],
    "custom": {"type": {"typeId": "type", "id": "t-1"}, "fields": {"referralCode": "ABC", "score": 7}},
    "nothing": None,
}


def matches(text: str, rec: dict = ORDER, variables=None) -> bool:
    pred = P.compile_predicate(P.parse_all([text], variables))
    return pred is None or pred(rec)


@pytest.mark.parametrize("text,expected", [
    ('orderNumber = "CT-1"', True),
    ('orderNumber = "CT-2"', False),
    ('orderNumber != "CT-2"', True),
    ('orderNumber <> "CT-1"', False),
    ('version > 2', True),
    ('version >= 3 and version <= 3', True),
    ('version < 3', False),
    ('taxRate = 0.2', True),
    ('isGift = false', True),
    ('isGift = true', False),
    ('orderNumber in ("CT-9", "CT-1")', True),
    ('orderNumber not in ("CT-9", "CT-1")', False),
    ('version in (1, 2)', False),
    ('version not in (1, 2)', True),
    ('store(key = "us")', True),
    ('store(key = "eu")', False),
    ('custom(fields(referralCode = "ABC"))', True),
    ('custom(fields(referralCode = "abc"))', False),
    ('custom(fields(score > 5 and referralCode is defined))', True),
    ('totalPrice(centAmount >= 12000 and currencyCode = "USD")', True),
    ('lineItems(variant(sku = "SKU-B"))', True),               # any element of the array
    ('lineItems(variant(sku = "SKU-C"))', False),
    ('lineItems(quantity > 1 and variant(sku = "SKU-B"))', False),  # same element must match both
    ('discountCodes(discountCode(id = "dc-1"))', True),
    ('tags contains "vip"', True),
    ('tags contains any ("x", "eu")', True),
    ('tags contains all ("vip", "eu")', True),
    ('tags contains all ("vip", "x")', False),
    ('tags = "eu"', True),
    ('key is defined', False),
    ('key is not defined', True),
    ('nothing is defined', False),
    ('custom is defined', True),
    ('emptyList is empty', True),
    ('tags is not empty', True),
    ('not (orderState = "Open")', False),
    ('not orderState = "Cancelled"', True),
    ('orderState = "Cancelled" or version = 3 and orderNumber = "CT-1"', True),   # and binds tighter
    ('(orderState = "Cancelled" or version = 3) and orderNumber = "CT-2"', False),
    ('orderNumber = "CT-1" AND version = 3 Or isGift = true', True),            # keywords any case
    ('key = "x"', False),                       # missing field: false ...
    ('key != "x"', False),                      # ... for != too (use "is not defined")
    ('customerEmail = "ann@example.com"', False),  # exact, case-sensitive
    ('lastModifiedAt > "2024-03-02T10:00:00.499Z"', True),
    ('lastModifiedAt > "2024-03-02T10:00:00.500Z"', False),
    ('lastModifiedAt = "2024-03-02T10:00:00.5+00:00"', True),   # instants, not text
    ('createdAt >= "2024-03-01"', True),
    ('createdAt < "2024-03-01T09:59:59Z"', False),
])
def test_evaluation(text, expected):
    assert matches(text) is expected


def test_escaped_strings_and_variables():
    rec = {"name": 'say "hi"', "key": "k2", "version": 4}
    assert matches(r'name = "say \"hi\""', rec)
    assert matches("key = :k", rec, {"k": ["k2"]})
    assert matches("key in :keys", rec, {"keys": ["k1", "k2"]})
    assert not matches("key in :keys", rec, {"keys": ["k1"]})
    assert matches("version = :v", rec, {"v": ["4"]})    # a variable is text, compared as a number here
    with pytest.raises(P.PredicateError, match="Missing value for predicate variable 'k'"):
        P.parse("key = :k")
    with pytest.raises(P.PredicateError, match="exactly one value"):
        P.parse("key = :k", {"k": ["a", "b"]})


def test_several_where_parameters_are_anded():
    node = P.parse_all(['orderNumber = "CT-1"', "version = 2"])
    assert isinstance(node, P.And) and not P.compile_predicate(node)(ORDER)
    assert isinstance(P.parse_all([]), P.TrueNode) and P.compile_predicate(P.parse_all([])) is None


@pytest.mark.parametrize("text,column,expected", [
    ('orderNumber = ', 15, "Unexpected end of input, expected a string, number, boolean or :variable"),
    ('orderNumber == "x"', 14, "Invalid input '=', expected a string"),
    ('orderNumber "x"', 13, "Invalid input '\"', expected '(', a comparison operator"),
    ('a = "x" and (b = 1', 19, "Unexpected end of input, expected ')', 'and' or 'or'"),
    ('a = "x" b = 1', 9, "Invalid input 'b', expected 'and', 'or' or end of input"),
    ('a = "unterminated', 5, "Invalid input '\"', expected a field name"),
    ('a in ("x" "y")', 11, "Invalid input '\"', expected ',' or ')'"),
    ('key is nothing', 8, "Invalid input 'n', expected 'defined', 'empty' or 'not'"),
    ('a = 1 and', 10, "Unexpected end of input, expected a field name, 'not' or '('"),
])
def test_syntax_errors_point_at_the_column(text, column, expected):
    with pytest.raises(P.PredicateError) as err:
        P.parse(text)
    detail = err.value.detail
    assert err.value.kind == "syntax"
    assert detail.startswith("Syntax error while parsing 'where'. ")
    assert expected in detail and f"(line 1, column {column}):\n{text}\n" in detail
    assert detail.endswith(" " * (column - 1) + "^")


def test_validation_against_the_resource_schema():
    orders = schema("orders", strict=True)
    P.validate(P.parse('custom(fields(anything = "x")) and store(key = "us")'), orders)
    with pytest.raises(P.PredicateError, match=r"^The field 'limit' does not exist\.$"):
        P.validate(P.parse('orderState = "Open" and limit = 5'), orders)
    with pytest.raises(P.PredicateError, match=r"^Invalid enum value for OrderState: aOpen$"):
        P.validate(P.parse('orderState = "aOpen"'), orders)
    with pytest.raises(P.PredicateError, match="Invalid enum value for PaymentState: Nope"):
        P.validate(P.parse('paymentState in ("Paid", "Nope")'), orders)
    with pytest.raises(P.PredicateError, match="Invalid DateTime value for field 'lastModifiedAt'"):
        P.validate(P.parse('lastModifiedAt > "yesterday"'), orders)
    with pytest.raises(P.PredicateError, match="Invalid DateTime value for field 'createdAt'"):
        P.validate(P.parse('lineItems(createdAt > "x")'), orders)
    P.validate(P.parse("limit = 5"), schema("orders", strict=False))


# ---- planner --------------------------------------------------------------------------------------
def stamp(i: int) -> str:
    return f"2024-01-01T00:00:{i:02d}.000Z"


def make_collection(n: int = 60, per_stamp: int = 6) -> Collection:
    coll = Collection(SPECS["orders"])
    coll.replace_all([{"id": f"id-{(i * 37) % n:04d}", "lastModifiedAt": stamp(i // per_stamp),
                       "createdAt": stamp(59 - i // per_stamp), "n": i % 5} for i in range(n)])
    return coll


def spec_of(params: list[tuple[str, str]]) -> Q.QuerySpec:
    return Q.parse_query(params, schema("orders", strict=False))


def keyset_where(last_stamp: str, last_id: str) -> str:
    return f'lastModifiedAt > "{last_stamp}" or (lastModifiedAt = "{last_stamp}" and id > "{last_id}")'


def test_keyset_predicate_is_an_index_start_not_a_filter():
    coll = make_collection()
    ordered = sorted(coll.values(), key=lambda r: (r["lastModifiedAt"], r["id"]))
    pivot = ordered[20]
    for where in (keyset_where(pivot["lastModifiedAt"], pivot["id"]),
                  f'(lastModifiedAt = "{pivot["lastModifiedAt"]}" and id > "{pivot["id"]}") '
                  f'or lastModifiedAt > "{pivot["lastModifiedAt"]}"'):
        spec = spec_of([("where", where), ("sort", "lastModifiedAt asc"), ("sort", "id asc")])
        records, residual = Q.candidates(coll, spec)
        assert isinstance(residual, P.TrueNode)          # nothing left to evaluate per record
        assert [r["id"] for r in records] == [r["id"] for r in ordered[21:]]


def test_lower_and_upper_stamp_bounds():
    coll = make_collection()
    spec = spec_of([("where", f'lastModifiedAt >= "{stamp(3)}"'), ("where", f'lastModifiedAt < "{stamp(5)}"'),
                    ("sort", "lastModifiedAt asc")])
    records, residual = Q.candidates(coll, spec)
    got = list(records)
    assert [r["lastModifiedAt"] for r in got] == [stamp(3)] * 6 + [stamp(4)] * 6   # walk stopped at 5
    assert [P.Compare] == [type(n) for n in P.conjuncts(residual)]                  # the upper bound stays
    body = Q.run_query(coll, spec)
    assert body["count"] == 12 and body["total"] == 12


def test_descending_stamp_sort_with_lower_bound_stops_early():
    coll = make_collection()
    spec = spec_of([("where", f'lastModifiedAt > "{stamp(7)}"'), ("sort", "lastModifiedAt desc"), ("limit", "500")])
    ids = [r["id"] for r in Q.run_query(coll, spec)["results"]]
    expected = sorted((r for r in coll.values() if r["lastModifiedAt"] > stamp(7)),
                      key=lambda r: (r["lastModifiedAt"], r["id"]), reverse=True)
    assert ids == [r["id"] for r in expected]


def test_other_sorts_use_the_cached_ordering_with_bisection():
    coll = make_collection()
    spec = spec_of([("where", 'id > "id-0040"'), ("sort", "id asc"), ("limit", "5")])
    body = Q.run_query(coll, spec)
    assert [r["id"] for r in body["results"]] == [f"id-{i:04d}" for i in range(41, 46)]
    assert body["total"] == 19
    # mixed directions: n desc, createdAt asc, then the id tie-break in the first key's direction (desc)
    spec = spec_of([("sort", "n desc"), ("sort", "createdAt asc"), ("limit", "500")])
    got = [(r["n"], r["createdAt"], r["id"]) for r in Q.run_query(coll, spec)["results"]]
    expected = sorted(got, key=lambda t: (-t[0], t[1], "".join(chr(255 - ord(c)) for c in t[2])))
    assert got == expected and len(got) == 60


def test_total_is_capped_with_a_predicate_only():
    coll = Collection(SPECS["orders"])
    coll.replace_all([{"id": f"{i:06d}", "lastModifiedAt": stamp(i % 60), "n": 1} for i in range(10_050)])
    assert Q.run_query(coll, spec_of([]))["total"] == 10_050
    body = Q.run_query(coll, spec_of([("where", "n = 1"), ("limit", "3")]))
    assert body["total"] == 10_000 and body["count"] == 3
    assert "total" not in Q.run_query(coll, spec_of([("where", "n = 1"), ("withTotal", "False")]))


@pytest.mark.parametrize("params,message", [
    ([("limit", "501")], "Malformed parameter: limit: The limit parameter must be in the range of [0..500]"),
    ([("limit", "-1")], "Malformed parameter: limit: The limit parameter must be in the range of [0..500]"),
    ([("offset", "10001")], "Malformed parameter: offset: The offset parameter must be in the range of [0..10000]"),
    ([("limit", "ten")], "Malformed parameter: limit: Invalid int value 'ten'."),
    ([("withTotal", "yes")], "Malformed parameter: withTotal: Invalid boolean value 'yes'"),
    ([("sort", "id")], "Malformed parameter: sort: Invalid sort expression 'id'"),
    ([("sort", "id up")], "Malformed parameter: sort: Invalid sort expression 'id up'"),
    ([("where", "id = ")], "Malformed parameter: where: Syntax error while parsing 'where'."),
])
def test_parameter_errors(params, message):
    with pytest.raises(Q.QueryError) as err:
        Q.parse_query(params, schema("orders", strict=True))
    assert str(err.value).startswith(message)


def test_parameter_defaults_and_boolean_case():
    spec = spec_of([])
    assert (spec.limit, spec.offset, spec.with_total, spec.sort) == (20, 0, True, [])
    for raw, value in (("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)):
        assert spec_of([("withTotal", raw)]).with_total is value
    spec = spec_of([("sort", "custom.fields.score DESC"), ("limit", "0"), ("offset", "10000")])
    assert spec.sort[0].path == ("custom", "fields", "score") and spec.sort[0].descending
    assert (spec.limit, spec.offset) == (0, 10_000)
    with pytest.raises(Q.QueryError, match="sort: The field 'nope' does not exist"):
        Q.parse_query([("sort", "nope asc")], schema("orders", strict=True))
