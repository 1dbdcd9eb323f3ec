"""Raw landing: merge by key (newest wins), cursor in the same commit, quarantine of keyless rows."""
from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pytest

from referral_pipeline.warehouse.landing import Cursor, RawWriter, read_cursor, raw_table
from referral_pipeline.warehouse.schema import ensure_schema


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_schema(c)
    yield c
    c.close()


def writer(con, run_id="r1"):
    return RawWriter(con, "sf", "contact", run_id, pk_of=lambda r: r.get("Id"),
                     stamp_of=lambda r: ts(r["m"]) if r.get("m") else None)


def rows(con):
    return con.execute("SELECT pk, payload::JSON->>'v', run_id FROM raw.sf__contact ORDER BY pk").fetchall()


def test_merge_counts_newest_wins_and_cursor_atomic(con):
    w = writer(con)
    w.add([{"Id": "a", "m": "2024-01-01T00:00:00", "v": "1"}, {"Id": "b", "m": "2024-01-01T00:00:00", "v": "1"},
           {"Id": "a", "m": "2024-01-02T00:00:00", "v": "2"}, {"v": "no key"}])
    c = w.commit(Cursor(ts("2024-01-02T00:00:00"), "a"))
    assert (c.new, c.updated, c.unchanged, c.quarantined) == (2, 0, 0, 1)
    assert rows(con) == [("a", "2", "r1"), ("b", "1", "r1")]
    assert read_cursor(con, "sf", "contact") == Cursor(ts("2024-01-02T00:00:00"), "a")
    assert con.execute("SELECT reason FROM audit.quarantine").fetchall() == [("missing_primary_key",)]

    w2 = writer(con, "r2")
    w2.add([{"Id": "a", "m": "2024-01-01T00:00:00", "v": "old"},   # older version: ignored
            {"Id": "b", "m": "2024-01-01T00:00:00", "v": "1"},     # identical: unchanged
            {"Id": "c", "m": "2024-01-03T00:00:00", "v": "1"}, {"v": "no key"}])
    c = w2.commit(Cursor(ts("2024-01-03T00:00:00"), "c"))
    assert (c.new, c.updated, c.unchanged) == (1, 0, 2)
    assert rows(con) == [("a", "2", "r1"), ("b", "1", "r1"), ("c", "1", "r2")]
    assert con.execute("SELECT count(*) FROM audit.quarantine").fetchone()[0] == 1  # not duplicated

    w3 = writer(con, "r3")
    w3.add([{"Id": "b", "m": "2024-01-04T00:00:00", "v": "2"}])
    assert w3.commit(None).updated == 1
    assert rows(con)[1] == ("b", "2", "r3")


def test_failed_commit_keeps_old_cursor_and_data(con, monkeypatch):
    w = writer(con)
    w.add([{"Id": "a", "m": "2024-01-01T00:00:00", "v": "1"}])
    w.commit(Cursor(ts("2024-01-01T00:00:00"), "a"))
    w.add([{"Id": "z", "m": "2024-02-01T00:00:00", "v": "1"}])
    import referral_pipeline.warehouse.landing as landing

    def boom(*a, **k):
        raise RuntimeError("crash between merge and cursor")
    monkeypatch.setattr(landing, "write_cursor", boom)
    with pytest.raises(RuntimeError):
        w.commit(Cursor(ts("2024-02-01T00:00:00"), "z"))
    assert [r[0] for r in rows(con)] == ["a"]
    assert read_cursor(con, "sf", "contact").id == "a"


def test_identifiers_are_checked():
    with pytest.raises(ValueError):
        raw_table("sf; drop", "x")


def test_update_keeps_first_seen_and_moves_load_seq(con):
    w = writer(con, "r1")
    w.add([{"Id": "a", "m": "2024-01-01T00:00:00", "v": "1"}, {"Id": "b", "m": "2024-01-01T00:00:00", "v": "1"}])
    w.commit(None)
    before = dict(((pk, (first, seq)) for pk, first, seq in
                   con.execute("SELECT pk, first_seen_at, load_seq FROM raw.sf__contact").fetchall()))
    w2 = writer(con, "r2")
    w2.add([{"Id": "a", "m": "2024-01-02T00:00:00", "v": "2"},                           # changed
            {"Id": "b", "m": "2024-01-01T00:00:00", "v": "1"},                           # identical
            {"Id": "c", "m": "2024-01-02T00:00:00", "v": "1"}, {"Id": "c", "m": "2024-01-03T00:00:00", "v": "3"}])
    c = w2.commit(None)
    assert (c.new, c.updated, c.unchanged) == (1, 1, 1)
    after = {pk: (first, seq, run, v) for pk, first, seq, run, v in con.execute(
        "SELECT pk, first_seen_at, load_seq, run_id, payload::JSON->>'v' FROM raw.sf__contact").fetchall()}
    assert after["a"][0] == before["a"][0] and after["a"][1] > before["a"][1] and after["a"][2:] == ("r2", "2")
    assert after["b"][1:3] == (before["b"][1], "r1")                                     # untouched
    assert after["c"][2:] == ("r2", "3")                                                 # newest of the batch
    assert con.execute("SELECT count(*) FROM raw.sf__contact").fetchall() == [(3,)]
