"""``python -m referral_pipeline.sandbox serve`` as a user runs it: five processes, env file,
fixture round trip through ``/_sandbox/state``, state written on shutdown and reloaded."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from referral_pipeline.runner import read_env_file
from referral_pipeline.sandbox.core.config import PORT_OFFSETS
from referral_pipeline.sandbox.testing import free_port_base

FIXTURES = {
    "salesforce/Account.jsonl": [{"Id": "001000000000001AAA", "Name": "Ann Account", "CurrencyIsoCode": "USD",
                                  "SystemModstamp": "2026-05-01T10:00:00.000+0000", "CreatedDate": "2026-05-01T10:00:00.000+0000"}],
    "salesforce/Contact.jsonl": [{"Id": "003000000000001AAA", "AccountId": "001000000000001AAA", "Email": "Ann@Example.com",
                                  "FirstName": "Ann", "LastName": "Lee", "HasOptedOutOfEmail": False,
                                  "MailingCountry": "US", "SystemModstamp": "2026-05-01T10:00:00.000+0000",
                                  "CreatedDate": "2026-05-01T10:00:00.000+0000"}],
    "commercetools/customers.jsonl": [{"id": "8f9a7c55-1111-4d6e-9a55-000000000001", "version": 3,
                                       "email": "ann@example.com", "firstName": "Ann", "lastName": "Lee",
                                       "createdAt": "2026-05-01T10:00:00.000Z", "lastModifiedAt": "2026-05-02T10:00:00.000Z"}],
    "bigcommerce/customers.jsonl": [{"id": 7, "email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
                                     "date_created": "2026-05-01T10:00:00Z", "date_modified": "2026-05-03T10:00:00Z"}],
    "friendbuy/shares.jsonl": [{"advocateCustomerId": "c-1", "advocateEmail": "ann@example.com", "channel": "email",
                                "referralCode": "ANN10", "campaignId": "camp-us", "campaignName": "US",
                                "createdOn": "2026-05-04T10:00:00.000Z", "ipAddress": "10.0.0.1", "userAgent": "UA"}],
    "yotpo/customers.jsonl": [{"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
                               "points_balance": 120, "points_earned": 120}],
}


def write_fixtures(root: Path) -> None:
    for rel, records in FIXTURES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in records))


def start(data: Path, state: Path, base: int, env_file: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--data", str(data),
                             "--state-dir", str(state), "--port-base", str(base), "--env-file", str(env_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while not env_file.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"sandbox did not start: {proc.stdout.read()}")
        time.sleep(0.1)
    return proc


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def url(base: int, system: str) -> str:
    return f"http://127.0.0.1:{base + PORT_OFFSETS[system]}"


def test_serve_round_trips_fixtures_and_persists_state(tmp_path):
    data, state, env_file = tmp_path / "fx", tmp_path / "state", tmp_path / "sandbox.env"
    write_fixtures(data)
    base = free_port_base()
    proc = start(data, state, base, env_file)
    try:
        env = read_env_file(env_file)
        for var in ("SALESFORCE_INSTANCE_URL", "CTP_API_URL", "CTP_AUTH_URL", "BIGCOMMERCE_API_URL",
                    "FRIENDBUY_MAPI_URL", "YOTPO_API_URL", "CTP_CLIENT_SECRET", "YOTPO_API_KEY"):
            assert env.get(var), var
        assert env["SALESFORCE_INSTANCE_URL"] == url(base, "salesforce")
        for rel, records in FIXTURES.items():
            system, name = rel.split("/")
            got = requests.get(url(base, system) + "/_sandbox/state", timeout=10).json()
            collection = got[name.removesuffix(".jsonl")]
            for expected in records:
                match = [r for r in collection if all(r.get(k) == v for k, v in expected.items())]
                assert match, f"{rel}: {expected} not served back in {collection}"
        changed = requests.post(url(base, "bigcommerce") + "/_sandbox/records", timeout=10,
                                json={"collection": "customers", "records": [{"id": 7, "first_name": "Annie"}]}).json()
        assert changed["records"][0]["first_name"] == "Annie"
    finally:
        out = stop(proc)
    assert "stopped" in out
    assert {p.name for p in state.iterdir()} >= {f"{s}.json" for s in PORT_OFFSETS}
    saved = json.loads((state / "bigcommerce.json").read_text())
    assert [c["first_name"] for c in saved["customers"]] == ["Annie"]
    assert not env_file.exists()

    proc = start(data, state, base, env_file)  # restart: the saved state comes back
    try:
        got = requests.get(url(base, "bigcommerce") + "/_sandbox/state", timeout=10).json()
        assert [c["first_name"] for c in got["customers"]] == ["Annie"]
        requests.post(url(base, "bigcommerce") + "/_sandbox/reset", timeout=10)
        got = requests.get(url(base, "bigcommerce") + "/_sandbox/state", timeout=10).json()
        assert [c["first_name"] for c in got["customers"]] == ["Ann"]
    finally:
        stop(proc)


def test_serve_refuses_a_malformed_fixture_with_file_line_and_reason(tmp_path):
    data = tmp_path / "fx"
    write_fixtures(data)
    (data / "commercetools" / "orders.jsonl").write_text('{"id": "o-1", "version": 1}\n{"version": 2}\n')
    proc = subprocess.run([sys.executable, "-m", "referral_pipeline.sandbox", "serve", "--data", str(data),
                           "--port-base", str(free_port_base()), "--env-file", str(tmp_path / "e.env")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "orders.jsonl:2" in proc.stderr and "primary key" in proc.stderr
