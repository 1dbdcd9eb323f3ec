"""The incremental staging runner: changed rows only, quarantine in and out, accounting invariant."""
from __future__ import annotations

from datetime import datetime, timezone

import duckdb
import pytest

from referral_pipeline.transform.staging.runner import StagingSpec, ensure_staging_schema, run_staging
from referral_pipeline.warehouse.landing import RawWriter
from referral_pipeline.warehouse.schema import ensure_schema

SQL = """
SELECT 'x:' || pk AS order_item_key, 'x:o' AS order_key, 'x' AS source, payload->>'sku' AS sku, NULL AS name,
       parse_amount(payload->>'qty') AS quantity, NULL AS unit_price, NULL AS total_price, NULL AS currency,
       load_seq, pk AS source_id, payload AS raw_payload,
       CASE WHEN parse_amount(payload->>'qty') IS NULL THEN 'unparseable_amount'
            WHEN parse_amount(payload->>'qty') < 0 THEN 'negative_amount' END AS quarantine_reason,
       NULL AS quarantine_detail
FROM raw_delta
"""
SPEC = StagingSpec(name="x.items", source="x", entity="item", raw="raw.x__item", target="staging.order_items",
                   key="order_item_key", sql=SQL, delete_scope="source = 'x'")


@pytest.fixture
def con():
    c = duckdb.connect()
    ensure_schema(c)
    ensure_staging_schema(c)
    yield c


def land(con, records, run_id):
    w = RawWriter(con, "x", "item", run_id, pk_of=lambda r: r["id"],
                  stamp_of=lambda r: datetime(2024, 1, r["d"], tzinfo=timezone.utc))
    w.add(records)
    w.commit(None)


def staged_keys(con):
    return [r[0] for r in con.execute("SELECT order_item_key FROM staging.order_items ORDER BY 1").fetchall()]


def current_quarantine(con):
    return con.execute("SELECT source_id, reason FROM audit.quarantine_current ORDER BY 1").fetchall()


def test_incremental_staging_and_quarantine_lifecycle(con):
    land(con, [{"id": "a", "d": 1, "qty": "1"}, {"id": "b", "d": 1, "qty": "oops"}, {"id": "c", "d": 1, "qty": "-2"}], "r1")
    res = run_staging(con, SPEC, "r1")
    assert (res.processed, res.staged, res.quarantined) == (3, 1, 2)
    assert res.reasons == {"negative_amount": 1, "unparseable_amount": 1}
    assert staged_keys(con) == ["x:a"]
    assert current_quarantine(con) == [("b", "unparseable_amount"), ("c", "negative_amount")]

    # nothing changed: nothing processed, nothing duplicated
    assert run_staging(con, SPEC, "r2").processed == 0
    # b is fixed at the source, a becomes bad: b leaves quarantine, a leaves staging
    land(con, [{"id": "b", "d": 2, "qty": "3"}, {"id": "a", "d": 2, "qty": "nan?"}], "r3")
    res = run_staging(con, SPEC, "r3")
    assert res.processed == 2
    assert staged_keys(con) == ["x:b"]
    assert current_quarantine(con) == [("a", "unparseable_amount"), ("c", "negative_amount")]
    # invariant: staged + currently quarantined = distinct source records
    total = con.execute("SELECT count(*) FROM raw.x__item").fetchone()[0]
    assert len(staged_keys(con)) + len(current_quarantine(con)) == total
    # a full rebuild gives the same result
    run_staging(con, SPEC, "r4", rebuild=True)
    assert staged_keys(con) == ["x:b"] and len(current_quarantine(con)) == 2


CHILD_SQL = """
SELECT 'x:' || pk || ':' || CAST(u.line AS VARCHAR) AS order_item_key, 'x:' || pk AS order_key, 'x' AS source,
       NULL AS sku, NULL AS name, 1 AS quantity, NULL AS unit_price, NULL AS total_price, NULL AS currency,
       load_seq, pk AS source_id, payload AS raw_payload, NULL AS quarantine_reason, NULL AS quarantine_detail
FROM raw_delta, unnest(CAST(CAST(payload AS JSON)->'lines' AS INTEGER[])) AS u(line)
"""


def test_derived_rows_are_replaced_as_a_set_by_their_owner(con):
    spec = StagingSpec(name="x.lines", source="x", entity="item", raw="raw.x__item", target="staging.order_items",
                       key="order_item_key", sql=CHILD_SQL, delete_scope="source = 'x'",
                       owner_column="order_key", owner_expr="'x:' || pk")
    land(con, [{"id": "o", "d": 1, "lines": [1, 2, 3]}], "r1")
    run_staging(con, spec, "r1")
    assert staged_keys(con) == ["x:o:1", "x:o:2", "x:o:3"]
    land(con, [{"id": "o", "d": 2, "lines": [1]}], "r2")  # two lines removed at the source
    run_staging(con, spec, "r2")
    assert staged_keys(con) == ["x:o:1"]
