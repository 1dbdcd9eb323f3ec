"""Units of the BigCommerce source without HTTP: the v2 stamp keyset walk against an in-memory
store that sorts like BigCommerce, date parsing and formatting, order preparation, and the
shared layer's reading of BigCommerce's quota headers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from referral_pipeline.clients.bigcommerce import (DictRows, StampKeysetWalk, _next_customer_position, format_rfc2822,
                                                   format_v3_date, last_second_before, parse_date)
from referral_pipeline.extract.bigcommerce import OrdersExtractor, has_coupon_discount
from referral_pipeline.http.client import ApiError, RequestStats
from referral_pipeline.http.retry import wait_hint_seconds
from referral_pipeline.sandbox.core.stamps import fmt_rfc2822

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Store:
    """Orders by (date_modified, id); ``fetch`` answers like ``GET /v2/orders`` (inclusive bounds)."""

    def __init__(self, stamps: dict[int, int]):
        self.rows = {i: {"id": i, "date_modified": fmt_rfc2822(T0 + timedelta(seconds=s))} for i, s in stamps.items()}
        self.requests = 0
        self.on_request = lambda n: None

    def fetch(self, lower, tie_min_id, page, limit):
        self.requests += 1
        self.on_request(self.requests)
        rows = sorted(self.rows.values(), key=lambda r: (parse_date(r["date_modified"]), r["id"]))
        if lower is not None:
            rows = [r for r in rows if parse_date(r["date_modified"]) >= lower]
        if tie_min_id is not None:
            rows = sorted((r for r in rows if parse_date(r["date_modified"]) == lower and r["id"] >= tie_min_id),
                          key=lambda r: r["id"])
        return rows[(page - 1) * limit: page * limit]

    def touch(self, record_id: int, seconds: int) -> None:
        self.rows[record_id] = {**self.rows[record_id], "date_modified": fmt_rfc2822(T0 + timedelta(seconds=seconds))}


def walk(store: Store, limit: int, lower=None) -> list[int]:
    w = StampKeysetWalk(lambda lo, tie, page: DictRows(store.fetch(lo, tie, page, limit), "date_modified"), limit,
                        lower=lower)
    return [r["id"] for page in w for r in page.records]


def test_the_walk_reads_every_record_once_across_shared_stamps():
    # ids 1..30; 5..17 share second 10 (more than two pages of 5), 20..22 share 20
    stamps = {i: (10 if 5 <= i <= 17 else 20 if 20 <= i <= 22 else i) for i in range(1, 31)}
    store = Store(stamps)
    assert sorted(walk(store, 5)) == list(range(1, 31))
    assert sorted(walk(Store(stamps), 13)) == list(range(1, 31))   # a tie group exactly one page long
    one_page = Store(stamps)
    assert sorted(walk(one_page, 250)) == list(range(1, 31)) and one_page.requests == 1


def test_the_walk_starts_at_the_lower_bound_inclusively():
    store = Store({i: i for i in range(1, 11)})
    assert walk(store, 3, lower=T0 + timedelta(seconds=7)) == [7, 8, 9, 10]


def test_a_record_changed_behind_the_reader_is_read_again_and_none_is_skipped():
    store = Store({i: i for i in range(1, 21)})
    store.on_request = lambda n: store.touch(2, 100) if n == 2 else None   # record 2 moves to the end
    ids = walk(store, 4)
    assert sorted(set(ids)) == list(range(1, 21)) and ids.count(2) == 2 and ids[-1] == 2


def test_records_without_a_parseable_stamp_are_read_first_by_page():
    store = Store({i: i for i in range(1, 8)})
    for i in (1, 2, 3, 4):
        store.rows[i]["date_modified"] = "garbage"
    rows = sorted(store.rows.values(), key=lambda r: (r["date_modified"] != "garbage", r["id"]))

    def fetch(lower, tie, page):   # unparseable stamps sort first and are outside any lower bound
        picked = [r for r in rows if lower is None
                  or (r["date_modified"] != "garbage" and parse_date(r["date_modified"]) >= lower)]
        return DictRows(picked[(page - 1) * 3: page * 3], "date_modified")
    w = StampKeysetWalk(fetch, 3)
    assert sorted(r["id"] for page in w for r in page.records) == list(range(1, 8))


def test_dates_parse_and_format_in_each_api_format():
    assert parse_date("Thu, 20 Apr 2017 11:32:00 -0400") == datetime(2017, 4, 20, 15, 32, tzinfo=UTC)
    assert parse_date("2024-05-14T09:34:00Z") == datetime(2024, 5, 14, 9, 34, tzinfo=UTC)
    assert parse_date("2022-06-16T16:44:15+00:00") == datetime(2022, 6, 16, 16, 44, 15, tzinfo=UTC)
    assert parse_date("") is None and parse_date(None) is None
    for bad in ("Mon, 38 Foo 2026 25:61:00 +0000", "soon", 5):
        with pytest.raises(ValueError):
            parse_date(bad)
    moment = datetime(2026, 7, 9, 3, 46, 50, 999_000, tzinfo=UTC)
    assert format_rfc2822(moment) == "Thu, 09 Jul 2026 03:46:50 +0000"
    assert format_v3_date(moment) == "2026-07-09T03:46:50"
    assert last_second_before(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert last_second_before(moment) == datetime(2026, 7, 9, 3, 46, 50, tzinfo=UTC)


class CouponsOnly:
    def __init__(self):
        self.asked = []

    def order_coupons(self, order_id):
        self.asked.append(order_id)
        if order_id == 404:
            raise ApiError("GET", f"v2/orders/{order_id}/coupons", 404, "[]")
        if order_id == 500:
            raise ApiError("GET", f"v2/orders/{order_id}/coupons", 500, "[]")
        return [{"code": "FRIEND-1"}]

    stats = RequestStats()


def test_orders_are_landed_without_links_and_with_coupons_only_when_discounted():
    client = CouponsOnly()
    extractor = OrdersExtractor(client, "bc")
    link = {"url": "http://127.0.0.1:1/stores/x/v2/orders/1/products", "resource": "/orders/1/products"}
    plain = extractor.prepare({"id": 1, "coupon_discount": "0.0000", "products": link, "coupons": dict(link),
                               "shipping_addresses": dict(link), "is_deleted": True})
    assert plain == {"id": 1, "coupon_discount": "0.0000", "is_deleted": True} and client.asked == []
    couponed = extractor.prepare({"id": 2, "coupon_discount": "5.0000", "coupons": dict(link)})
    assert couponed == {"id": 2, "coupon_discount": "5.0000", "coupons": [{"code": "FRIEND-1"}]} and client.asked == [2]
    assert extractor.deleted_of(plain) and not extractor.deleted_of(couponed)
    # an order deleted between the list and the coupons call is landed without coupons
    assert extractor.prepare({"id": 404, "coupon_discount": "1.00"}) == {"id": 404, "coupon_discount": "1.00"}
    with pytest.raises(ApiError):
        extractor.prepare({"id": 500, "coupon_discount": "1.00"})
    assert [has_coupon_discount({"coupon_discount": v}) for v in ("1.5", "0", "NaN", "abc", None, 3)] == \
        [True, False, False, False, False, True]


def test_customer_paging_follows_the_cursor_else_page_numbers():
    with_cursor = {"cursor_pagination": {"end_cursor": "abc", "links": {"next": "?after=abc"}}}
    assert _next_customer_position(with_cursor, 1) == ("abc", 1, True)
    assert _next_customer_position({"cursor_pagination": {"end_cursor": "abc", "links": {}}}, 1)[2] is False
    assert _next_customer_position({"pagination": {"total_pages": 3}}, 2) == (None, 3, True)
    assert _next_customer_position({"pagination": {"total_pages": 3}}, 3)[2] is False


def test_bigcommerce_reset_header_is_a_wait_hint_only_when_the_quota_is_used_up():
    # BigCommerce sends X-Rate-Limit-Time-Reset-Ms on every response: a 5xx with requests left
    # must back off exponentially, not sleep until the window resets
    assert wait_hint_seconds({"X-Rate-Limit-Requests-Left": "120", "X-Rate-Limit-Time-Reset-Ms": "29000"}) is None
    assert wait_hint_seconds({"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "1500"}) == 1.5
    assert wait_hint_seconds({"X-Rate-Limit-Time-Reset-Ms": "1500"}) == 1.5
    assert wait_hint_seconds({"ratelimit-remaining": "4", "ratelimit-reset": "2"}) is None
    assert wait_hint_seconds({"Retry-After": "3", "X-Rate-Limit-Requests-Left": "9"}) == 3.0
