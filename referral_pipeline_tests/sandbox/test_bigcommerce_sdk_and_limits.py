"""The ``bigcommerce`` Python library (0.23.4) against the simulator, the store request quota and
its 429, and injected faults in BigCommerce's own v2/v3 shapes."""
from __future__ import annotations

import time

import pytest
import requests
from bigcommerce.api import BigcommerceApi
from bigcommerce.connection import OAuthConnection
from bigcommerce.exception import RateLimitingException, ServerException
from bigcommerce.resources import Orders

from .bigcommerce_support import RATE_HEADERS, STORE, TOKEN, Client, running, write_world


class PlainHttpConnection(OAuthConnection):
    """The library hard-codes ``https://`` in ``full_path``; the simulator speaks plain HTTP on
    loopback, so the host (the library's ``BC_API_ENDPOINT``, here ``127.0.0.1:PORT``) is joined
    with ``http://`` instead."""

    def full_path(self, url):
        return "http://" + self.host + self.api_path.format(self.store_hash, url)


def library(sim, v3: bool = False) -> BigcommerceApi:
    api = BigcommerceApi(client_id="sandbox-client", store_hash=STORE, access_token=TOKEN)
    host = sim.base_url.removeprefix("http://")
    api.connection = PlainHttpConnection("sandbox-client", STORE, TOKEN, host=host,
                                         api_path="/stores/{}/v3/{}" if v3 else "/stores/{}/v2/{}")
    return api


def fields(resource) -> dict:
    """A library resource's API fields (it also carries its ``_connection``)."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


@pytest.fixture(scope="module")
def world_root(tmp_path_factory):
    return write_world(tmp_path_factory.mktemp("bc-sdk"))


@pytest.fixture(scope="module")
def sim(world_root):
    with running(world_root) as sim:
        yield sim


# ---- the vendor library ----------------------------------------------------------------------
def test_library_lists_orders_and_pages_until_204(sim):
    api = library(sim)
    first = api.Orders.all(limit=5, sort="date_modified:asc")
    assert isinstance(first, list) and [o.id for o in first] == [100, 101, 102, 103, 104]
    assert first[0].date_modified == "Wed, 05 Jun 2024 20:16:55 +0000" and first[0].total_inc_tax == "45.0000"
    everything = list(api.Orders.iterall())  # pages of 250 until the 204
    assert [o.id for o in everything] == [i for i in range(100, 130) if i != 128]
    empty = api.Orders.all(min_id=5000)  # 204: the library gives one empty Orders object, not a list
    assert isinstance(empty, Orders) and fields(empty) == {}
    assert list(api.Orders.iterall(min_id=5000)) == []
    order = api.Orders.get(100)
    assert [p.id for p in order.products()] == [1001, 1002]
    assert [c.code for c in order.coupons()] == ["FRIEND-BBB"]
    assert fields(api.Orders.get(101).coupons()) == {}  # 204 on an order without coupons
    assert [c.id for c in api.Coupons.all(code="FRIEND-AAA")] == [1]
    assert api.Orders.count() == 29
    assert api.connection.rate_limit == {"ms_until_reset": api.connection.rate_limit["ms_until_reset"],
                                         "window_size_ms": 30000, "requests_remaining": 1_000_000 - sim.window.used,
                                         "requests_quota": 1_000_000}


def test_library_v3_customers_with_colon_filters(sim):
    conn = library(sim, v3=True).connection
    body = conn.get("customers", **{"date_modified:min": "2024-05-09", "include": "attributes", "limit": 2})
    assert [c["id"] for c in body["data"]] == [9, 10] and body["data"][0]["attributes"] == []
    assert body["meta"]["pagination"]["total"] == 4
    after = body["meta"]["cursor_pagination"]["end_cursor"]
    rest = conn.get("customers", **{"date_modified:min": "2024-05-09", "limit": 2, "after": after})
    assert [c["id"] for c in rest["data"]] == [11, 12]
    written = conn.put("customers/attribute-values", [{"attribute_id": 2, "customer_id": 12, "value": "pending"}])
    assert written["data"][0]["attribute_value"] == "pending"


# ---- the request quota ---------------------------------------------------------------------------
def test_quota_429_with_headers_then_window_resets(world_root):
    with running(world_root, rate_limit={"requests_per_window": 3, "window_ms": 1500}) as sim:
        c = Client(sim)
        lefts = [c.get("/v2/orders", {"limit": 1}).headers["X-Rate-Limit-Requests-Left"] for _ in range(3)]
        assert lefts == ["2", "1", "0"]
        r = c.get("/v2/orders")
        assert r.status_code == 429
        assert r.json() == [{"status": 429, "message": r.json()[0]["message"]}] and "quota" in r.json()[0]["message"]
        assert r.headers["X-Rate-Limit-Requests-Quota"] == "3" and r.headers["X-Rate-Limit-Requests-Left"] == "0"
        assert r.headers["X-Rate-Limit-Time-Window-Ms"] == "1500"
        reset_ms = int(r.headers["X-Rate-Limit-Time-Reset-Ms"])
        assert 0 < reset_ms <= 1500 and int(r.headers["X-Retry-After"]) >= 1
        v3 = c.get("/v3/customers")
        assert v3.status_code == 429 and v3.json()["status"] == 429 and v3.json()["title"].startswith("Too many")
        with pytest.raises(RateLimitingException) as err:
            library(sim).Orders.all()
        assert 0 < int(err.value.retry_after) <= 1500
        time.sleep(int(c.get("/v2/orders").headers["X-Rate-Limit-Time-Reset-Ms"]) / 1000 + 0.05)
        r = c.get("/v2/orders", {"limit": 1})
        assert r.status_code == 200 and r.headers["X-Rate-Limit-Requests-Left"] == "2"


def test_quota_can_be_lifted_at_run_time(world_root):
    with running(world_root, rate_limit={"requests_per_window": 1, "window_ms": 60000}) as sim:
        c = Client(sim)
        assert c.get("/v2/orders", {"limit": 1}).status_code == 200
        assert c.get("/v2/orders", {"limit": 1}).status_code == 429
        r = requests.post(f"{sim.base_url}/_sandbox/faults", json={"rate_limit": {"requests_per_window": 0}})
        assert r.json()["rate_limit"] == {"requests_per_window": 0, "window_ms": 60000}
        ok = c.get("/v2/orders", {"limit": 1})
        assert ok.status_code == 200 and ok.headers["X-Rate-Limit-Requests-Quota"] == "1000000"


def test_default_quota_is_150_per_30s(world_root):
    with running(world_root, rate_limit={}) as sim:
        r = Client(sim).get("/v2/order_statuses")
        assert r.headers["X-Rate-Limit-Requests-Quota"] == "150" and r.headers["X-Rate-Limit-Time-Window-Ms"] == "30000"
        assert r.headers["X-Rate-Limit-Requests-Left"] == "149" and r.headers["X-BC-ApiLimit-Remaining"] == "149"


# ---- injected faults -------------------------------------------------------------------------------
def test_injected_429_uses_the_quota_headers(world_root):
    with running(world_root, faults={"p_429": 1.0, "retry_after_seconds": 2}) as sim:
        c = Client(sim)
        r = c.get("/v2/orders")
        assert r.status_code == 429 and r.json()[0]["status"] == 429
        assert r.headers["X-Rate-Limit-Time-Reset-Ms"] == "2000" and r.headers["X-Retry-After"] == "2"
        assert r.headers["X-Rate-Limit-Requests-Left"] == "0" and all(h in r.headers for h in RATE_HEADERS)
        r = c.get("/v3/customers")
        assert r.status_code == 429 and r.json()["status"] == 429
        with pytest.raises(RateLimitingException) as err:
            library(sim).Orders.all()
        assert err.value.retry_after == "2000"
        assert sim.faults.injected["429"] == 3


@pytest.mark.parametrize("kind,status", [("p_500", 500), ("p_502", 502), ("p_503", 503)])
def test_injected_5xx_in_v2_and_v3_shapes(world_root, kind, status):
    with running(world_root, faults={kind: 1.0}) as sim:
        c = Client(sim)
        v2 = c.get("/v2/orders")
        assert v2.status_code == status and isinstance(v2.json(), list) and v2.json()[0]["status"] == status
        v3 = c.put("/v3/customers/attribute-values", [{"attribute_id": 1, "customer_id": 1, "value": "X"}])
        assert v3.status_code == status
        assert set(v3.json()) == {"status", "title", "type", "errors"} and v3.json()["status"] == status
        assert all(h in v3.headers for h in RATE_HEADERS)
        assert sim.collections["customers"].get(1)["attributes"] == []  # not applied
        with pytest.raises(ServerException):
            library(sim).Orders.all()


def test_dropped_and_truncated_responses(world_root):
    with running(world_root, faults={"p_drop": 1.0}) as sim:
        with pytest.raises(requests.exceptions.ConnectionError):
            Client(sim).get("/v2/orders")
        requests.post(f"{sim.base_url}/_sandbox/faults", json={"p_drop": 0, "p_truncate": 1.0})
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
            Client(sim).get("/v2/orders")
