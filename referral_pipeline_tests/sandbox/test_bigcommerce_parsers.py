"""BigCommerce simulator internals, tested directly: query-parameter parsers, cursors and the
index-backed listing planner."""
from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from referral_pipeline.sandbox.bigcommerce.listing import (Lister, Query, TrackedCollection, id_ordering,
                                                            stamp_ordering, text_ordering)
from referral_pipeline.sandbox.bigcommerce.paging import (cursor_pagination, decode_cursor, encode_cursor,
                                                           offset_pagination)
from referral_pipeline.sandbox.bigcommerce.params import (ParamError, day_range, parse_include, parse_int_list,
                                                           parse_paging, parse_sort, parse_v2_instant,
                                                           parse_v3_instant)
from referral_pipeline.sandbox.core import stamps
from referral_pipeline.sandbox.core.store import CollectionSpec


def micros(text: str) -> int:
    return stamps.to_micros(text)


# ---- params -----------------------------------------------------------------------------------
def test_v3_dates_accept_date_datetime_offset_and_unix():
    assert parse_v3_instant("2024-05-14", "d").micros == micros("2024-05-14T00:00:00Z")
    assert parse_v3_instant("2024-05-14", "d").date_only
    assert parse_v3_instant("2024-05-14T09:34:00", "d").micros == micros("2024-05-14T09:34:00Z")  # no offset: UTC
    assert parse_v3_instant("2024-05-14T09:34:00-04:00", "d").micros == micros("2024-05-14T13:34:00Z")
    assert parse_v3_instant("2024-05-14T09:34:00.250Z", "d").micros == micros("2024-05-14T09:34:00.250Z")
    assert parse_v3_instant("1715679240", "d").micros == micros("2024-05-14T09:34:00Z")


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01", "2024-05-14T25:00:00", "Tue, 14 May 2024 09:34:00 +0000", ""])
def test_v3_dates_refuse_other_text(bad):
    with pytest.raises(ParamError) as err:
        parse_v3_instant(bad, "date_modified:min")
    assert err.value.param == "date_modified:min" and err.value.status is None


def test_v2_dates_accept_rfc2822_and_iso8601():
    expected = micros("2017-04-20T15:32:00Z")
    assert parse_v2_instant("Thu, 20 Apr 2017 11:32:00 -0400", "min_date_modified").micros == expected
    assert parse_v2_instant("2017-04-20T11:32:00.000-04:00", "min_date_modified").micros == expected
    assert parse_v2_instant("2017-04-20", "x").micros == micros("2017-04-20T00:00:00Z")
    for bad in ("Thu, 99 Foo 2017", "1492702320", "soon"):
        with pytest.raises(ParamError):
            parse_v2_instant(bad, "min_date_modified")


def test_equality_date_filter_covers_the_day_or_the_second():
    day = parse_v3_instant("2024-05-14", "d")
    assert day_range(day) == (micros("2024-05-14T00:00:00Z"), micros("2024-05-15T00:00:00Z") - 1)
    second = parse_v3_instant("2024-05-14T09:34:00Z", "d")
    assert day_range(second) == (second.micros, second.micros + 999_999)


def test_sort_include_and_lists():
    assert parse_sort("date_modified:desc", ("date_modified",)) == ("date_modified", True)
    assert parse_sort("id", ("id",)) == ("id", False)
    assert parse_sort(None, ("id",)) is None
    for bad in ("date_modified:up", "email:asc"):
        with pytest.raises(ParamError):
            parse_sort(bad, ("date_modified", "id"))
    assert parse_include("attributes,addresses", ("attributes", "addresses")) == {"attributes", "addresses"}
    with pytest.raises(ParamError, match="unknown"):
        parse_include("attributes,orders", ("attributes",))
    assert parse_int_list("4, 5,6", "id:in") == [4, 5, 6]
    with pytest.raises(ParamError):
        parse_int_list("4,x", "id:in")


def test_paging_defaults_limits_and_the_413():
    assert parse_paging(QueryParams("")) == parse_paging(QueryParams("page=1&limit=50"))
    paging = parse_paging(QueryParams("page=3&limit=250"))
    assert (paging.page, paging.limit) == (3, 250)
    with pytest.raises(ParamError) as err:
        parse_paging(QueryParams("limit=251"))
    assert err.value.status == 413 and err.value.param == "limit"
    assert parse_paging(QueryParams("limit=251"), over_max="clamp").limit == 250
    for bad in ("limit=0", "limit=ten", "page=0", "page=-2"):
        with pytest.raises(ParamError) as err:
            parse_paging(QueryParams(bad))
        assert err.value.status is None


# ---- cursors and meta ---------------------------------------------------------------------------
def test_cursor_round_trip_and_mismatch():
    by_stamp = stamp_ordering("date_modified", "date_modified")
    record = {"id": 204, "date_modified": "2024-05-14T09:34:00Z"}
    cursor = encode_cursor(by_stamp, record)
    assert "=" not in cursor
    assert decode_cursor(by_stamp, cursor, "after") == (micros("2024-05-14T09:34:00Z"), 204)
    assert decode_cursor(id_ordering(), encode_cursor(id_ordering(), record), "after") == (204,)
    with pytest.raises(ParamError, match="sort order"):
        decode_cursor(id_ordering(), cursor, "after")
    with pytest.raises(ParamError, match="not a valid cursor"):
        decode_cursor(by_stamp, "%%%not-base64", "before")


def test_offset_pagination_links():
    meta = offset_pagination(total=120, count=50, page=2, limit=50)
    assert meta == {"total": 120, "count": 50, "per_page": 50, "current_page": 2, "total_pages": 3,
                    "links": {"current": "?page=2&limit=50", "previous": "?page=1&limit=50", "next": "?page=3&limit=50"}}
    assert offset_pagination(0, 0, 1, 50) == {"total": 0, "count": 0, "per_page": 50, "current_page": 1,
                                              "total_pages": 0, "links": {"current": "?page=1&limit=50"}}


# ---- listing planner --------------------------------------------------------------------------------
def collection(n: int = 10) -> TrackedCollection:
    coll = TrackedCollection(CollectionSpec("customers", key="id", stamp="date_modified", key_type=int))
    coll.replace_all([{"id": i, "last_name": f"n{(n - i):02d}",
                       "date_modified": "2024-05-01T00:00:00Z" if i <= 5 else f"2024-05-{i:02d}T00:00:00Z"}
                      for i in range(1, n + 1)])
    return coll


def ids(window_or_view) -> list[int]:
    records = window_or_view.records if hasattr(window_or_view, "records") else list(window_or_view)
    return [r["id"] for r in records]


def test_stamp_view_bounds_and_keyset_paging_with_ties():
    coll, lister = collection(), Lister()
    by_stamp = stamp_ordering("date_modified", "date_modified")
    view = lister.view(coll, Query(by_stamp, lower=micros("2024-05-01T00:00:00Z"), upper=micros("2024-05-07T00:00:00Z")))
    assert ids(view) == [1, 2, 3, 4, 5, 6, 7] and len(view) == 7
    first = view.page(0, 3)
    assert ids(first) == [1, 2, 3] and not first.has_before and first.has_after
    nxt = view.after(by_stamp.sort_key(first.records[-1]), 3)
    assert ids(nxt) == [4, 5, 6] and nxt.has_before and nxt.has_after
    assert ids(view.before(by_stamp.sort_key(nxt.records[0]), 3)) == [1, 2, 3]
    descending = lister.view(coll, Query(by_stamp, descending=True))
    assert ids(descending) == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    page = descending.after(by_stamp.sort_key(coll.get(6)), 2)
    assert ids(page) == [5, 4] and page.has_after


def test_writes_keep_indexes_current():
    coll, lister = collection(), Lister()
    by_id, by_stamp = id_ordering(), stamp_ordering("date_modified", "date_modified")
    assert ids(lister.view(coll, Query(by_id, lower=3, upper=5))) == [3, 4, 5]
    coll.put({"id": 4, "date_modified": "2024-06-30T00:00:00Z", "last_name": "x"})
    coll.put({"id": 11, "date_modified": "2024-05-02T00:00:00Z", "last_name": "y"})
    assert ids(lister.view(coll, Query(by_id, lower=3))) == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert ids(lister.view(coll, Query(by_stamp))) == [1, 2, 3, 5, 11, 6, 7, 8, 9, 10, 4]


def test_predicates_and_candidates():
    coll, lister = collection(), Lister()
    even = (("even",), lambda r: r["id"] % 2 == 0)
    view = lister.view(coll, Query(text_ordering("last_name", "last_name"), predicates=[even]))
    assert ids(view) == [10, 8, 6, 4, 2]  # last_name n00, n02, ...
    generation = coll.generation
    assert lister.view(coll, Query(id_ordering(), predicates=[even])).source.entries is \
        lister.view(coll, Query(id_ordering(), predicates=[even])).source.entries  # cached per version
    coll.put({"id": 12, "date_modified": "2024-05-20T00:00:00Z"})
    assert coll.generation > generation
    assert ids(lister.view(coll, Query(id_ordering(), predicates=[even]))) == [2, 4, 6, 8, 10, 12]
    candidates = [coll.get(9), coll.get(2), coll.get(7), coll.get(2)]
    assert ids(lister.view(coll, Query(id_ordering(), lower=3, candidates=candidates))) == [7, 9]


def test_cursor_pagination_block():
    coll, lister = collection(), Lister()
    by_id = id_ordering()
    window = lister.view(coll, Query(by_id)).page(0, 4)
    block = cursor_pagination(by_id, window, 4, "?page=1&limit=4")
    assert block["count"] == 4 and block["per_page"] == 4
    assert decode_cursor(by_id, block["end_cursor"], "after") == (4,)
    assert block["links"]["next"].startswith("?page=1&after=") and "previous" not in block["links"]
    empty = cursor_pagination(by_id, lister.view(coll, Query(by_id, lower=99)).page(0, 4), 4, "?page=1&limit=4")
    assert empty == {"count": 0, "per_page": 4, "links": {"current": "?page=1&limit=4"}}
