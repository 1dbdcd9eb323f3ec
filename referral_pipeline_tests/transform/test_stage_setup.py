"""The referral stages set up their schema, TEMP macros and program tables once per connection
(runtime.setup_once): a later run on the same connection must still see changed programs, a
rolled-back setup must be redone, and batched progress writes must store every value."""
from __future__ import annotations

import duckdb
import pytest

from referral_pipeline.transform.attribution import prepare_referral_context
from referral_pipeline.transform.runtime import (programs_fingerprint, read_progress_many, setup_once, transaction,
                                                 write_progress_many)

from .referrals_support import new_db, programs


def test_setup_runs_once_per_version_and_a_rollback_forgets_it():
    con = duckdb.connect()
    made = []

    def create():
        made.append(1)
        con.execute("CREATE OR REPLACE TEMP TABLE setup_probe AS SELECT 1 AS x")

    assert setup_once(con, "probe", 1, create) is True
    assert setup_once(con, "probe", 1, create) is False
    assert setup_once(con, "probe", 2, create) is True
    assert len(made) == 2
    with pytest.raises(RuntimeError):
        with transaction(con):
            setup_once(con, "probe", 3, create)
            raise RuntimeError("stage failed")
    # the rollback removed what create made and its record: version 3 is set up again
    assert setup_once(con, "probe", 3, create) is True
    assert con.execute("SELECT x FROM setup_probe").fetchall() == [(1,)]
    assert len(made) == 4
    # another connection keeps its own record
    other = duckdb.connect()
    assert setup_once(other, "probe", 3, lambda: made.append(1)) is True


def test_changed_programs_on_the_same_connection_replace_the_program_tables_and_fingerprint():
    con = new_db()
    with transaction(con):
        prepare_referral_context(con, programs())
    first = programs_fingerprint(con)
    assert con.execute("SELECT min_order_value FROM program_rules WHERE market_id = 'us'").fetchall()[0][0] == 50
    with transaction(con):
        prepare_referral_context(con, programs(return_window_days=14))
    assert con.execute("SELECT DISTINCT return_window_days FROM program_rules").fetchall() == [(14,)]
    second = programs_fingerprint(con)
    assert second != first
    with transaction(con):   # back to the first programs: the first fingerprint again
        prepare_referral_context(con, programs())
    assert programs_fingerprint(con) == first
    assert con.execute("SELECT DISTINCT return_window_days FROM program_rules").fetchall() == [(30,)]
    # the TEMP macros and views are there on every stage run
    assert con.execute("SELECT ref_email_canonical(' A.B+x@GoogleMail.com ')").fetchall() == [("ab@gmail.com",)]
    assert con.execute("SELECT count(*) FROM fb_events").fetchall() == [(0,)]


def test_batched_progress_writes_store_every_value_and_overwrite():
    con = new_db()
    with transaction(con):
        prepare_referral_context(con, programs())
    write_progress_many(con, {"a -> s": 1, "b -> s": 2 ** 60, "c -> s": -1})
    write_progress_many(con, {"a -> s": 7})
    assert read_progress_many(con, ["a -> s", "b -> s", "c -> s", "missing -> s"]) == {
        "a -> s": 7, "b -> s": 2 ** 60, "c -> s": -1, "missing -> s": None}
