"""BigCommerce v2 order lists parsed by DuckDB (``extract.json_pages.OrdersPageParser``): the same
raw rows, counts and cursor as the Python path (coupons appended the same way), and the fallback
for records only the Python path handles exactly."""
from __future__ import annotations

import orjson
import pytest

from referral_pipeline.extract.base import extract
from referral_pipeline.extract.bigcommerce import OrdersExtractor, has_coupon_discount, strip_links
from referral_pipeline.extract.json_pages import OrdersPageParser
from referral_pipeline.http.jsonbody import decode_json
from referral_pipeline.warehouse.landing import read_cursor

from .bigcommerce_support import OVERLAP, bc_sim, client_for, new_warehouse, order, small_world, write_world

LINK = {"url": "https://api.example/stores/x/v2/orders/1/coupons", "resource": "/orders/1/coupons"}


def _run(sim, fast: bool, page_size: int = 7):
    con = new_warehouse()
    extractor = OrdersExtractor(client_for(sim), "bc", page_size)
    extractor.fast = fast
    result = extract(con, extractor, "r1", overlap=OVERLAP, flush_rows=10)
    rows = con.execute("SELECT pk, stamp, payload, payload_hash, is_deleted FROM raw.bc__orders ORDER BY pk").fetchall()
    return result, rows, read_cursor(con, "bc", "orders"), extractor.fast_pages


def _python_payloads(body: bytes) -> list[str]:
    return [orjson.dumps(strip_links(o)).decode() for o in decode_json(body)]


def test_fast_pages_land_the_same_rows_and_cursor_as_the_python_path(tmp_path):
    world = small_world()
    # text the two paths could write differently: escapes, control characters, non-ASCII, floats
    world["orders"].append(order(140, 50, staff_notes='tab\t "quoted" \\ back \u0001 é ☃ \U0001F600',
                                 customer_message="</script>", weight=0.1, ratio=1e-7, big=12345678901234567))
    world["orders"].append(order(141, 51, coupon="FRIEND-BBB", coupon_discount="0.5000"))
    with bc_sim(write_world(tmp_path, world)) as sim:
        fast, fast_rows, fast_cursor, fast_pages = _run(sim, True)
        slow, slow_rows, slow_cursor, slow_pages = _run(sim, False)
    assert fast_pages == fast.pages > 0 and slow_pages == 0
    assert fast_rows == slow_rows and len(fast_rows) == fast.counts.fetched == 33
    assert fast_cursor == slow_cursor and fast_cursor.value is not None
    assert (fast.counts.new, fast.counts.quarantined) == (slow.counts.new, slow.counts.quarantined)
    landed = {pk: orjson.loads(p) for pk, _, p, _, _ in fast_rows}
    assert [c["code"] for c in landed["103"]["coupons"]] == ["FRIEND-AAA"]
    assert [c["code"] for c in landed["141"]["coupons"]] == ["FRIEND-BBB"]
    assert list(landed["141"])[-1] == "coupons" and "coupons" not in landed["104"]
    assert not any(k in o for o in landed.values() for k in ("products", "shipping_addresses"))
    assert [pk for pk, *_, deleted in fast_rows if deleted] == ["131"]


def test_parser_matches_python_field_by_field():
    base = {"id": 1, "date_modified": "Wed, 01 Apr 2026 08:43:54 +0000", "products": LINK, "x": 1,
            "shipping_addresses": LINK, "coupons": LINK, "consignments": {"shipping": [{"products": LINK}]}}
    recs = [
        base,
        {**base, "id": 2, "coupon_discount": "5.0000", "is_deleted": True},
        {**base, "id": 3, "coupon_discount": "0.0000", "is_deleted": "true"},
        {**base, "id": 4, "coupon_discount": 2.5},
        {**base, "id": 5, "coupon_discount": 0},
        {**base, "id": 6, "coupon_discount": None},
        {**base, "id": 7, "coupon_discount": "-1.00"},
        {**base, "id": 8, "products": {"url": "u", "resource": "r", "other": 1}, "shipping_addresses": []},
        {"id": 9, "date_modified": "Thu, 02 Apr 2026 00:00:00 -0400", "products": {}},      # {} is a link too
        {"id": 10, "date_modified": "Thu, 02 Apr 2026 00:00:00 +0000"},                    # no links at all
    ]
    body = orjson.dumps(recs)
    parsed = OrdersPageParser().parse(body)
    assert parsed is not None
    assert parsed.batch["payload"].to_pylist() == _python_payloads(body)
    assert parsed.couponed == [has_coupon_discount(r) for r in recs] == [False, True, False, True] + [False] * 6
    assert parsed.batch["is_deleted"].to_pylist() == [r.get("is_deleted") is True for r in recs]
    ids, stamps = zip(*parsed.positions())
    assert list(ids) == list(range(1, 11))
    assert stamps[8].isoformat() == "2026-04-02T04:00:00+00:00"
    nested = orjson.loads(parsed.batch["payload"][0].as_py())["consignments"]["shipping"][0]
    assert nested == {"products": LINK}     # only the order's own links are removed


def test_lone_surrogates_are_repaired_as_in_the_python_path():
    body = (b'[{"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000","s":"Wr\\ud800ght",'
            b'"e":"\\ud83d\\ude00","t":"\\\\ud800","u":"\\u00e9"}]')
    expected = _python_payloads(body)
    assert "\ufffd" in expected[0]
    assert OrdersPageParser().parse(body).batch["payload"].to_pylist() == expected


@pytest.mark.parametrize("body", [
    b'[{"id":"1","date_modified":"Wed, 01 Apr 2026 08:43:54 +0000"}]',          # id as text
    b'[{"id":1.0,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000"}]',          # id as a float
    b'[{"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000"}]',                   # no id (quarantine)
    b'[{"id":1,"date_modified":"2026-04-01T08:43:54Z"}]',                       # another stamp form
    b'[{"id":1,"date_modified":"Wed, 1 Apr 2026 08:43:54 +0000"}]',
    b'[{"id":1}]',                                                               # no stamp
    b'[{"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000","coupons":[]}]',  # coupons not a link
    b'[{"products":{"url":"u","resource":"r"},"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000"}]',
    b'[{"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000","products":{"url":"u"},"n":{"x":1,"products":{"url":"u"}}}]',
    b'[{"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000","coupon_discount":" 5"}]',
    b'[{"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000","coupon_discount":"1e3"}]',
    b'[{"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000","n":NaN}]',
    b'[{"id":1,"date_modified":"Wed, 01 Apr 2026 08:43:54 +0000","s":"\xff"}]',  # invalid UTF-8
    b'[5]',
    b'{"status":404}',
    b'[{"id":1,',
])
def test_records_only_the_python_path_handles_are_left_to_it(body):
    assert OrdersPageParser().parse(body) is None


def test_a_page_with_one_unusual_record_lands_through_python_and_the_rest_stays_fast(tmp_path):
    world = small_world()
    world["orders"].append(order(150, 60, date_modified="2026-06-01T01:00:00Z"))   # ISO stamp on a v2 order
    with bc_sim(write_world(tmp_path, world)) as sim:
        fast, fast_rows, _, fast_pages = _run(sim, True, page_size=250)
        _, slow_rows, _, _ = _run(sim, False, page_size=250)
    assert fast_rows == slow_rows and "150" in {pk for pk, *_ in fast_rows}
    assert fast.pages >= 2 and fast_pages < fast.pages      # the page holding order 150 went the Python way
