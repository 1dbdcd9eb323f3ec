"""The code location loads in the Dagster UI process the way `make dev` starts it, and the asset
graph it serves has every stage, the jobs and the schedules."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from referral_pipeline.sandbox.testing import free_port_base

QUERY = """{ repositoriesOrError { ... on RepositoryConnection { nodes { name
  jobs { name } schedules { name } assetNodes { assetKey { path } groupName } } } } }"""


def test_asset_graph_loads_in_the_dagster_webserver(tmp_path):
    port = free_port_base(1) + 1
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "REFERRAL_DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    (tmp_path / "dagster.yaml").write_text((Path(__file__).resolve().parents[2] / "dagster.yaml").read_text())
    webserver = Path(sys.executable).parent / "dagster-webserver"
    proc = subprocess.Popen([str(webserver), "-m", "referral_pipeline.definitions", "-h", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 90
        body = None
        while time.time() < deadline:
            try:
                r = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": QUERY}, timeout=5)
                nodes = r.json()["data"]["repositoriesOrError"].get("nodes")
                if nodes:
                    body = nodes[0]
                    break
            except (requests.ConnectionError, requests.Timeout, KeyError, TypeError, ValueError):
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            time.sleep(0.5)
        assert body is not None, "the code location did not load"
        groups = {n["groupName"] for n in body["assetNodes"]}
        assert {"extract", "staging", "identity", "referrals", "reports"} <= groups
        keys = {"/".join(n["assetKey"]["path"]) for n in body["assetNodes"]}
        assert {"raw/sf/contact", "raw/ct/orders", "raw/bc/orders", "raw/fb/shares", "staging/orders",
                "analytics/customers", "analytics/rewards"} <= keys
        assert {"hourly", "nightly"} <= {j["name"] for j in body["jobs"]}
        assert {"hourly_schedule", "nightly_schedule"} <= {s["name"] for s in body["schedules"]}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
