"""One token per destination per run: every asset builds its own client, and the clients of one
resource configuration share the token (``http.client.SHARED_TOKENS``), so a nightly run of the
generated ``tiny`` world asks each OAuth endpoint at most once (asserted on the simulators' own
``request_counts``), while every asset still reads and lands its data."""
from __future__ import annotations

import requests

from referral_pipeline.sandbox.generator import generate_world

from .harness import Pipeline

AS_OF = "2026-11-15T00:00:00Z"
TOKEN_REQUESTS = {"salesforce": "POST /services/oauth2/token", "commercetools": "POST /oauth/token",
                  "friendbuy": "POST /v1/authorization"}


def counts(pipe: Pipeline, system: str) -> dict[str, int]:
    body = requests.get(f"{pipe.sims[system].base_url}/_sandbox/requests", timeout=30).json()
    return body["request_counts"]


def test_nightly_run_makes_one_token_request_per_system(tmp_path, monkeypatch):
    generate_world("tiny", 1, tmp_path / "world")
    with Pipeline(tmp_path, monkeypatch, tmp_path / "world") as pipe:
        pipe.run(AS_OF)
        for system, token_path in TOKEN_REQUESTS.items():
            seen = counts(pipe, system)
            assert seen.get(token_path) == 1, (system, seen)
            assert sum(n for k, n in seen.items() if k != token_path) > 1, (system, seen)  # the assets did read
        landed = pipe.query("SELECT source, count(*) FROM ops.extract_log GROUP BY source ORDER BY source")
        assert {source for source, _ in landed} >= {"sf", "ct", "bc", "fb"}
        # each asset reports its own requests, not the shared client's running total
        per_asset = pipe.query("SELECT source, entity, requests, pages FROM ops.extract_log WHERE source = 'fb'")
        assert all(requests_ <= pages + 2 for _, _, requests_, pages in per_asset), per_asset
