"""Friendbuy pieces without a server: row keys, createdOn parsing, date format, lenient JSON,
token lifetime; plus the client's answer to wrong credentials (real HTTP)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from referral_pipeline.clients.friendbuy import (FriendbuyClient, FriendbuyError, decode_json, seconds_until,
                                                 usable_lifetime)
from referral_pipeline.extract.friendbuy import (EARLIEST, FriendbuyExtractor, format_mapi_date, parse_created_on,
                                                 row_key)
from referral_pipeline.warehouse.landing import Cursor, RawWriter

from .friendbuy_support import friendbuy_sim, new_warehouse, purchase, share, stage_all


def test_row_key_is_stable_for_the_same_event_and_differs_for_another():
    row = share(1, 0)
    reordered = dict(reversed(list(row.items())))
    renamed = {**row, "campaignName": "US referral (renamed)", "advocateName": "Ada Lovelace"}
    assert row_key(row) == row_key(reordered) == row_key(renamed)
    assert len(row_key(row)) == 32
    assert row_key({**row, "createdOn": "2025-03-01T00:00:00.001Z"}) != row_key(row)
    assert row_key({**row, "ipAddress": "10.9.9.9"}) != row_key(row)
    assert row_key({**purchase(1, 0), "products": [{"price": 51, "sku": "sku-1", "quantity": 1, "name": "Thing"}]}) \
        == row_key(purchase(1, 0))


def test_primary_key_is_the_row_id_when_friendbuy_sends_one():
    extractor = FriendbuyExtractor(None, "fb", "shares")
    assert extractor.pk_of({**share(1, 0), "id": "rw-123"}) == "rw-123"
    assert extractor.pk_of({**share(1, 0), "id": 7}) == "7"
    assert extractor.pk_of({**share(1, 0), "id": ""}) == row_key({**share(1, 0), "id": ""})


def test_created_on_parsing_and_request_dates():
    utc = timezone.utc
    assert parse_created_on("2021-08-14T11:48:01.603Z") == datetime(2021, 8, 14, 11, 48, 1, 603000, tzinfo=utc)
    assert parse_created_on("2021-08-14T13:48:01+02:00") == datetime(2021, 8, 14, 11, 48, 1, tzinfo=utc)
    assert parse_created_on("2021-08-14T11:48:01") == datetime(2021, 8, 14, 11, 48, 1, tzinfo=utc)  # naive = UTC
    assert parse_created_on(None) is None and parse_created_on("") is None
    for bad in ("2025-13-45T99:00:00Z", "yesterday", 1700000000000):
        with pytest.raises(ValueError):
            parse_created_on(bad)
    # fromDate is floored to the millisecond, never narrowing the inclusive start
    assert format_mapi_date(datetime(2025, 1, 2, 3, 4, 5, 678999, tzinfo=utc)) == "2025-01-02T03:04:05.678Z"
    assert format_mapi_date(datetime(2025, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))) \
        == "2025-01-02T03:04:05.000Z"
    extractor = FriendbuyExtractor(None, "fb", "shares", now=lambda: datetime(2025, 6, 1, tzinfo=utc))
    assert extractor.window(Cursor(), None) == (EARLIEST, datetime(2025, 6, 1, tzinfo=utc))
    assert list(extractor.pages(Cursor(datetime(2025, 6, 1, tzinfo=utc)), None)) == []  # empty window: no request


def test_lenient_json_keeps_unstorable_values_for_quarantine():
    assert decode_json(b'{"a": 1}') == {"a": 1}
    body = decode_json(b'{"results": [{"name": "Fr\\ud800d", "amount": NaN, "rewardAmount": -Infinity}]}')
    assert body == {"results": [{"name": "Fr\ufffdd", "amount": "nan", "rewardAmount": "-inf"}]}
    with pytest.raises(FriendbuyError):
        decode_json(b"<html>gateway</html>")
    # such rows land and are quarantined, not lost and not crashing the run
    con = new_warehouse()
    extractor = FriendbuyExtractor(None, "fb", "purchases")
    writer = RawWriter(con, "fb", "purchases", "r1", pk_of=extractor.pk_of, stamp_of=extractor.stamp_of)
    rows = [{**purchase(1, 0), **body["results"][0], "name": "ok"}, {**purchase(2, 0), "name": "Fr\ufffdd"}]
    writer.add(rows)
    writer.commit(None)
    assert stage_all(con, "r1")["purchases"].reasons == {"invalid_text": 1, "non_finite_amount": 1}


def test_token_lifetime_is_read_from_expires():
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert seconds_until("2025-01-01T00:20:00.000Z", now) == 1200
    assert seconds_until("2024-12-31T23:00:00.000Z", now) == 0
    assert seconds_until("soon", now) == 1200  # unreadable: the documented 20 minutes
    assert usable_lifetime(1200) == 1140 and usable_lifetime(1) == pytest.approx(0.9)


def test_wrong_credentials_fail_clearly_without_leaking_the_secret():
    with friendbuy_sim(None) as sim:
        client = FriendbuyClient(sim.base_url, sim.credentials["key"], "wrong-secret-value", backoff_base=0.01)
        with pytest.raises(FriendbuyError, match="HTTP 401") as failure:
            next(client.iter_analytics("shares", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"))
        assert "wrong-secret-value" not in str(failure.value)
        assert sim.request_counts["POST /v1/authorization"] == 1  # a 401 on the token call is not retried
    with pytest.raises(FriendbuyError):
        FriendbuyClient("http://127.0.0.1:9", "", "")
