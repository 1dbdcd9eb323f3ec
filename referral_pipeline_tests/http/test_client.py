"""The shared HTTP layer against a real loopback server with injected faults."""
from __future__ import annotations

import time

import pytest
from starlette.routing import Route

from referral_pipeline.http.client import ApiClient, ApiError, BearerToken, InDoubtError
from referral_pipeline.http.retry import backoff_seconds, classify_status, quota_exhausted_wait, wait_hint_seconds
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.core.simulator import Simulator, json_response
from referral_pipeline.sandbox.core.store import CollectionSpec
from referral_pipeline.sandbox.testing import serve_in_thread


class EchoSimulator(Simulator):
    name = "echo"
    specs = {"items": CollectionSpec("items", key="id")}

    def setup(self):
        self.tokens_issued = 0
        self.valid_token = None
        self.quota_left = None

    def api_routes(self):
        return [Route("/token", self.token, methods=["POST"]), Route("/items", self.list_items, methods=["GET"]),
                Route("/items", self.create, methods=["POST"]), Route("/missing", self.missing, methods=["GET"])]

    def throttled_response(self, retry_after):
        return json_response({"error": "slow down"}, 429, {"X-Rate-Limit-Time-Reset-Ms": "50"})

    def response_headers(self, request):
        if self.quota_left is None:
            return {}
        self.quota_left -= 1
        return {"X-Rate-Limit-Requests-Left": str(max(0, self.quota_left)), "X-Rate-Limit-Time-Reset-Ms": "300"}

    async def token(self, request):
        self.tokens_issued += 1
        self.valid_token = f"t{self.tokens_issued}"
        return json_response({"token": self.valid_token, "ttl": 3600})

    async def list_items(self, request):
        if self.valid_token and request.headers.get("authorization") != f"Bearer {self.valid_token}":
            return json_response({"error": "expired"}, 401)
        return json_response({"items": list(self.collections["items"].values())})

    async def create(self, request):
        body = await request.json()
        self.collections["items"].put(body)
        return json_response(body, 201)

    async def missing(self, request):
        return json_response({"error": "nope"}, 404)


def client_for(sim, **kw):
    return ApiClient(sim.base_url, backoff_base=0.01, backoff_cap=0.05, timeout=(2, 2), **kw)


def test_pure_classification_and_hints():
    assert [classify_status(s) for s in (200, 304, 401, 404, 409, 422, 429, 503)] == \
        ["ok", "ok", "auth", "fail", "conflict", "fail", "retry", "retry"]
    assert wait_hint_seconds({"Retry-After": "3"}) == 3.0
    assert wait_hint_seconds({"x-rate-limit-time-reset-ms": "1500"}) == 1.5
    assert wait_hint_seconds({"ratelimit-reset": "2"}) == 2.0
    assert wait_hint_seconds({}) is None
    assert quota_exhausted_wait({"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "500"}) == 0.5
    assert quota_exhausted_wait({"ratelimit-remaining": "3", "ratelimit-reset": "1"}) is None
    assert all(0 <= backoff_seconds(a, 0.5, 4) <= min(4, 0.5 * 2 ** (a - 1)) for a in range(1, 8))


@pytest.mark.parametrize("fault", ["p_429", "p_500", "p_502", "p_503", "p_drop", "p_truncate"])
def test_reads_survive_each_fault_kind(fault):
    sim = EchoSimulator(SystemConfig(faults=FaultSpec(**{fault: 0.5, "seed": 3})))
    with serve_in_thread(sim):
        sim.collections["items"].put({"id": "a"})
        client = client_for(sim, max_attempts=12)
        for _ in range(10):
            assert client.get_json("/items") == {"items": [{"id": "a"}]}
        assert client.stats.retries == sum(sim.faults.injected.values()) > 0


def test_slow_response_times_out_and_is_retried():
    sim = EchoSimulator(SystemConfig(faults=FaultSpec(p_slow=0.5, slow_seconds=1.0, seed=1)))
    with serve_in_thread(sim):
        client = ApiClient(sim.base_url, backoff_base=0.01, timeout=(1, 0.3), max_attempts=10)
        for _ in range(4):
            assert client.get_json("/items") == {"items": []}
        assert client.stats.retries == sim.faults.injected["slow"] > 0


def test_write_with_dropped_connection_is_in_doubt_unless_idempotent():
    sim = EchoSimulator(SystemConfig(faults=FaultSpec(p_truncate=1.0)))
    with serve_in_thread(sim):
        client = client_for(sim, max_attempts=3)
        with pytest.raises(InDoubtError):
            client.request("POST", "/items", json={"id": "w"})
        assert sim.collections["items"].get("w") is not None  # it was applied: hence "in doubt"


def test_permanent_errors_are_not_retried():
    sim = EchoSimulator()
    with serve_in_thread(sim):
        client = client_for(sim)
        with pytest.raises(ApiError) as err:
            client.get_json("/missing")
        assert err.value.status == 404 and client.stats.requests == 1 and client.stats.retries == 0


def test_401_refreshes_the_token_once():
    sim = EchoSimulator()
    with serve_in_thread(sim):
        import requests

        def fetch():
            body = requests.post(sim.base_url + "/token").json()
            return body["token"], body["ttl"]
        client = client_for(sim, auth=BearerToken(fetch))
        assert client.get_json("/items") == {"items": []}
        sim.valid_token = "expired-on-the-server"
        assert client.get_json("/items") == {"items": []}  # 401 -> new token -> retried once
        assert sim.tokens_issued == 2 and client.stats.auth_refreshes == 1

        client2 = client_for(sim, auth=BearerToken(lambda: ("never-valid", 3600)))
        with pytest.raises(ApiError) as err:
            client2.get_json("/items")
        assert err.value.status == 401 and client2.stats.requests == 2  # one refresh, then give up


def test_client_side_rate_limit_and_quota_pause():
    sim = EchoSimulator()
    with serve_in_thread(sim):
        client = client_for(sim, rate_limit_per_second=20, burst=1)
        t0 = time.monotonic()
        for _ in range(11):
            client.get_json("/items")
        assert time.monotonic() - t0 >= 0.45  # 10 gaps of 50 ms
        sim.quota_left = 2  # the server says the window is used up after two more requests
        client2 = client_for(sim)
        t0 = time.monotonic()
        for _ in range(3):
            client2.get_json("/items")
        assert time.monotonic() - t0 >= 0.25  # paused for X-Rate-Limit-Time-Reset-Ms before the third
