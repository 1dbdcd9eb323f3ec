"""The shared simulator machinery: admin routes, request counting, faults, persistence, fixtures."""
from __future__ import annotations

import json
import time

import pytest
import requests
from starlette.routing import Route

from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig, config_from_mapping, merge_config, \
    parse_fault_spec
from referral_pipeline.sandbox.core.fixtures import FixtureError, read_system_fixtures
from referral_pipeline.sandbox.core.simulator import Simulator, json_response
from referral_pipeline.sandbox.core.stamps import fmt_iso_millis_z, to_micros, utcnow
from referral_pipeline.sandbox.core.store import CollectionSpec
from referral_pipeline.sandbox.testing import serve_in_thread


class ToySimulator(Simulator):
    name = "toy"
    specs = {"things": CollectionSpec("things", key="id", stamp="modifiedAt", version="version")}

    def api_routes(self):
        return [Route("/api/things/{thing_id}", self.get_thing, methods=["GET"]),
                Route("/api/things", self.post_thing, methods=["POST"])]

    async def get_thing(self, request):
        rec = self.collections["things"].get(request.path_params["thing_id"])
        return json_response(rec) if rec else self.error_response(404, "not_found", "no such thing")

    async def post_thing(self, request):
        body = await request.json()
        return json_response(self.admin_upsert("things", body), 201)


def write_fixture(tmp_path, lines):
    folder = tmp_path / "toy"
    folder.mkdir(parents=True)
    (folder / "things.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_fixture_errors_name_file_line_and_reason(tmp_path):
    root = write_fixture(tmp_path, ['{"id": "a"}', '{"name": "no key"}'])
    with pytest.raises(FixtureError) as err:
        read_system_fixtures(root, "toy", ToySimulator.specs, utcnow())
    assert err.value.line == 2 and "primary key" in err.value.reason and str(err.value.path).endswith("things.jsonl")
    (root / "toy" / "things.jsonl").write_text('{"id": "a"}\n{bad json\n')
    with pytest.raises(FixtureError, match=r"things.jsonl:2: not valid JSON"):
        read_system_fixtures(root, "toy", ToySimulator.specs, utcnow())
    (root / "toy" / "widgets.jsonl").write_text("")
    with pytest.raises(FixtureError, match="unknown collection file"):
        read_system_fixtures(root, "toy", ToySimulator.specs, utcnow())


def test_missing_stamp_is_filled_at_load(tmp_path):
    root = write_fixture(tmp_path, ['{"id": "a"}', '{"id": "b", "modifiedAt": "2020-01-01T00:00:00.000Z"}'])
    data = read_system_fixtures(root, "toy", ToySimulator.specs, utcnow())
    assert data["things"][0]["modifiedAt"] > "2025"
    assert data["things"][1]["modifiedAt"] == "2020-01-01T00:00:00.000Z"


def test_admin_routes_counts_and_persistence(tmp_path):
    root = write_fixture(tmp_path / "fx", ['{"id": "a", "modifiedAt": "2020-01-01T00:00:00.000Z", "version": 1}'])
    state_dir = tmp_path / "state"
    with serve_in_thread(ToySimulator(data_root=root, state_dir=state_dir)) as sim:
        url = sim.base_url
        assert requests.get(f"{url}/api/things/a").json()["id"] == "a"
        assert requests.get(f"{url}/api/things/zz").status_code == 404
        r = requests.post(f"{url}/_sandbox/records", json={"collection": "things", "records": [{"id": "a", "color": "red"}]})
        rec = r.json()["records"][0]
        assert rec["version"] == 2 and rec["color"] == "red" and rec["modifiedAt"] > "2020-01-01T00:00:00.000Z"
        assert requests.post(f"{url}/_sandbox/records", json={"collection": "nope", "records": []}).status_code == 404
        requests.post(f"{url}/api/things", json={"id": "b"})
        state = requests.get(f"{url}/_sandbox/state").json()
        assert {t["id"] for t in state["things"]} == {"a", "b"}
        assert state["request_counts"] == {"GET /api/things/{thing_id}": 2, "POST /api/things": 1}
        log = requests.get(f"{url}/_sandbox/requests").json()["requests"]
        assert [(e["method"], e["status"]) for e in log] == [("GET", 200), ("GET", 404), ("POST", 201)]
    saved = (state_dir / "toy.json").read_bytes()
    assert b'"color":"red"' in saved
    # a restart with the same source reloads the saved state, including request counts
    with serve_in_thread(ToySimulator(data_root=root, state_dir=state_dir)) as sim:
        state = requests.get(f"{sim.base_url}/_sandbox/state").json()
        assert {t["id"] for t in state["things"]} == {"a", "b"}
        assert state["request_counts"]["POST /api/things"] == 1
        requests.post(f"{sim.base_url}/_sandbox/reset")
        state = requests.get(f"{sim.base_url}/_sandbox/state").json()
        assert [t["id"] for t in state["things"]] == ["a"] and state["request_counts"] == {}


@pytest.mark.parametrize("kind,status", [("p_429", 429), ("p_500", 500), ("p_502", 502), ("p_503", 503)])
def test_status_faults(kind, status):
    sim = ToySimulator(SystemConfig(faults=FaultSpec(**{kind: 1.0})))
    with serve_in_thread(sim):
        r = requests.post(f"{sim.base_url}/api/things", json={"id": "x"})
        assert r.status_code == status
        assert sim.collections["things"].get("x") is None  # not applied
        assert sim.request_counts["POST /api/things"] == 1
        assert sim.faults.injected[kind[2:]] == 1


def test_drop_and_truncate_faults():
    sim = ToySimulator(SystemConfig(faults=FaultSpec(p_drop=1.0)))
    with serve_in_thread(sim):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(f"{sim.base_url}/api/things", json={"id": "x"})
        assert sim.collections["things"].get("x") is None
        requests.post(f"{sim.base_url}/_sandbox/faults", json={"p_drop": 0, "p_truncate": 1.0})
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
            requests.post(f"{sim.base_url}/api/things", json={"id": "y", "pad": "x" * 100})
        assert sim.collections["things"].get("y") is not None  # applied, response lost


def test_slow_fault_applies_then_delays():
    sim = ToySimulator(SystemConfig(faults=FaultSpec(p_slow=1.0, slow_seconds=1.0)))
    with serve_in_thread(sim):
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(f"{sim.base_url}/api/things", json={"id": "s"}, timeout=0.3)
        assert sim.collections["things"].get("s") is not None
        t0 = time.monotonic()
        assert requests.get(f"{sim.base_url}/api/things/s", timeout=5).status_code == 200
        assert time.monotonic() - t0 >= 0.9


def test_faults_are_deterministic_per_seed():
    def run(seed):
        sim = ToySimulator(SystemConfig(faults=FaultSpec(p_503=0.3, seed=seed)))
        with serve_in_thread(sim):
            return [requests.get(f"{sim.base_url}/api/things/q").status_code for _ in range(30)]
    assert run(5) == run(5)
    assert run(5) != run(6)


def test_fault_spec_parsing():
    raw = parse_fault_spec("p_429=0.1,seed=3;yotpo:p_slow=0.2,slow_seconds=2")
    cfg = merge_config(config_from_mapping({}), raw)
    assert cfg.seed == 3
    assert cfg.for_system("salesforce").faults.p_429 == 0.1
    assert cfg.for_system("yotpo").faults.p_slow == 0.2 and cfg.for_system("yotpo").faults.p_429 == 0.1
    assert cfg.for_system("salesforce").faults.seed != cfg.for_system("yotpo").faults.seed
    with pytest.raises(ValueError):
        config_from_mapping({"nosuchsystem": {}})


def test_stamp_index_keyset_order():
    sim = ToySimulator()
    coll = sim.collections["things"]
    t = "2024-01-01T00:00:00.000Z"
    for key in ["c", "a", "b"]:
        coll.put({"id": key, "modifiedAt": t})
    coll.put({"id": "d", "modifiedAt": "2024-01-02T00:00:00.000Z"})
    assert [r["id"] for r in coll.iter_by_stamp()] == ["a", "b", "c", "d"]
    assert [r["id"] for r in coll.iter_by_stamp(to_micros(t), after_key="a")] == ["b", "c", "d"]
    assert [r["id"] for r in coll.iter_by_stamp(to_micros(t), inclusive=False)] == ["d"]
    coll.put({"id": "a", "modifiedAt": fmt_iso_millis_z(utcnow())})
    assert [r["id"] for r in coll.iter_by_stamp()] == ["b", "c", "d", "a"]


def test_invalid_unicode_is_loaded_and_served_as_planted(tmp_path):
    root = write_fixture(tmp_path, ['{"id": "a", "name": "bad \\ud800 text"}'])
    with serve_in_thread(ToySimulator(data_root=root)) as sim:
        r = requests.get(f"{sim.base_url}/api/things/a")
        assert r.status_code == 200 and b'"bad \\ud800 text"' in r.content
        assert r.json()["name"] == "bad \ud800 text"


def test_only_the_refused_part_of_a_response_goes_through_the_slow_encoder():
    from referral_pipeline.sandbox.core.jsonio import dumps

    page = [{"id": 1, "name": "é ok", "n": [1.5, None, True]}, {"id": 2, "name": "bad \ud800", "tags": {"k": "\udfff"}},
            {"id": 3, "name": "☃"}]
    body = dumps(page)
    assert json.loads(body) == page
    # the good records keep orjson's UTF-8; only the planted strings are escaped
    assert "é ok".encode() in body and "☃".encode() in body and b'"bad \\ud800"' in body and b'"\\udfff"' in body
    assert dumps({"data": page, "meta": {}}) == b'{"data":' + body + b',"meta":{}}'
    assert dumps({1: "\ud800"}) == b'{"1":"\\ud800"}'
