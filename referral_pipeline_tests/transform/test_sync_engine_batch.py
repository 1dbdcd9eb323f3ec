"""Batch destinations in the sync engine: per-record outcomes of one request, whole-batch failures,
chunks holding whole batches (docs/sync.md "Batch destinations")."""
from __future__ import annotations

from pydantic import BaseModel

from referral_pipeline.http.client import ApiError, TransientError
from referral_pipeline.sync.engine import EntitySpec, SendOutcome, SyncSettings, ensure_sync_schema, run_sync
from referral_pipeline.sync.ownership import parse_ownership
from referral_pipeline_tests.transform.sync_support import NOW, new_db

OWN = parse_ownership({"test.things": {"key": {"owner": "pipeline", "policy": "always"},
                                       "value": {"owner": "pipeline", "policy": "always"}}}).for_object("test.things")
SOURCE = "SELECT key AS record_key, key AS subject_key, key, value FROM things"


class Thing(BaseModel):
    key: str
    value: int


class BatchClient:
    """Accepts batches; refuses records whose value is negative (per-record error), and fails whole
    requests while ``fail_next`` > 0."""

    def __init__(self):
        self.batches: list[list[dict]] = []
        self.fail_next = 0
        self.fail_with: Exception = TransientError("POST", "/batch", 503, "busy")

    def send(self, bodies: list[dict]) -> list[SendOutcome]:
        if self.fail_next:
            self.fail_next -= 1
            raise self.fail_with
        self.batches.append(bodies)
        return [SendOutcome("failed", 400, "NEGATIVE") if b["value"] < 0 else SendOutcome("ok", 200, remote_id=b["key"])
                for b in bodies]


def spec(batch_size=3):
    return EntitySpec("test", "things", OWN, SOURCE, Thing,
                      send_batch=lambda client, bodies: client.send(bodies), batch_size=batch_size)


def world(n: int, negative: tuple[int, ...] = ()):
    con = new_db()
    ensure_sync_schema(con)
    con.execute("CREATE TABLE things AS SELECT printf('k%03d', i) AS key, "
                "CASE WHEN list_contains($neg, i) THEN -1 ELSE i END AS value FROM range(?) t(i)".replace("?", str(n)),
                {"neg": list(negative)})
    return con


def statuses(con):
    return dict(con.execute("SELECT status, count(*) FROM ops.sync_state GROUP BY ALL").fetchall())


def test_batches_carry_per_record_outcomes_and_chunks_hold_whole_batches():
    con = world(10, negative=(4,))
    client = BatchClient()
    res = run_sync(con, spec(3), client, run_id="r1", markets=[], now=NOW,
                   settings=SyncSettings(chunk_size=4, concurrency=2))
    assert sorted(len(b) for b in client.batches) == [1, 3, 3, 3]           # chunk 4 → 3 (whole batches)
    assert statuses(con) == {"ok": 9, "failed": 1}
    assert con.execute("SELECT record_key, last_status_code, last_error FROM ops.sync_state WHERE status = 'failed'"
                       ).fetchall() == [("k004", 400, "NEGATIVE")]
    assert (res.sent, res.failed, res.attempted) == (9, 1, 10)
    assert con.execute("SELECT count(*) FROM ops.sync_log WHERE run_id = 'r1'").fetchall() == [(10,)]

    client.batches.clear()
    again = run_sync(con, spec(3), client, run_id="r2", markets=[], now=NOW)
    assert client.batches == [] and again.attempted == 0                     # nothing changed: nothing sent


def test_a_failed_request_applies_to_every_record_of_its_batch():
    con = world(5)
    client = BatchClient()
    client.fail_next = 1
    run_sync(con, spec(5), client, run_id="r1", markets=[], now=NOW, settings=SyncSettings(concurrency=1))
    assert statuses(con) == {"retry": 5}
    run_sync(con, spec(5), client, run_id="r2", markets=[], now=NOW.replace(year=NOW.year + 1))
    assert statuses(con) == {"ok": 5}                                        # due: re-sent, accepted

    refused = world(4)
    client = BatchClient()
    client.fail_next, client.fail_with = 1, ApiError("POST", "/batch", 400, "MALFORMED_REQUEST")
    run_sync(refused, spec(5), client, run_id="r1", markets=[], now=NOW)
    assert refused.execute("SELECT DISTINCT status, last_status_code, last_error FROM ops.sync_state").fetchall() == \
        [("failed", 400, "MALFORMED_REQUEST")]


def test_batch_size_may_depend_on_the_delta():
    con = world(7)
    client = BatchClient()
    run_sync(con, spec(lambda delta: delta), client, run_id="r1", markets=[], now=NOW)
    assert [len(b) for b in client.batches] == [7]
