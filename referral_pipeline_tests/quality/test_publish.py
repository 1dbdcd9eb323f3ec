"""The published read-only copy: a readable DuckDB file equal in content, replaced atomically."""
from __future__ import annotations

import os

import duckdb
import pytest

from referral_pipeline.analyst import publish_copy, published_path

from .support import good_world, insert, order, warehouse


def _tables(con, catalog):
    return sorted(con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
                              "AND NOT temporary", [catalog]).fetchall())


def assert_same_content(db, copy):
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute("ATTACH $p AS pub (READ_ONLY)", {"p": str(copy)})
        live = _tables(con, db.stem)
        assert live == _tables(con, "pub") and len(live) > 10
        for schema, table in live:
            for a, b in ((f'"{db.stem}".{schema}.{table}', f"pub.{schema}.{table}"),
                         (f"pub.{schema}.{table}", f'"{db.stem}".{schema}.{table}')):
                assert con.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").fetchall() \
                    == [(0,)], (schema, table)
        views = "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ? AND NOT internal ORDER BY ALL"
        assert con.execute(views, [db.stem]).fetchall() == con.execute(views, ["pub"]).fetchall()


@pytest.mark.parametrize("logical", [False, True])
def test_published_copy_is_readable_and_equal(tmp_path, logical):
    db = tmp_path / "referral.duckdb"
    con = warehouse(str(db))
    good_world(con)
    result = publish_copy(con, db, force_logical=logical)
    dest = published_path(db)
    assert (result.path, result.method) == (str(dest), "copy_from_database" if logical else "file_copy")
    assert result.tables == len(_tables(con, db.stem)) and result.bytes == dest.stat().st_size
    assert not os.access(dest, os.W_OK) or os.geteuid() == 0           # read-only on disk
    assert oct(dest.stat().st_mode & 0o777) == "0o444"
    con.close()
    assert_same_content(db, dest)


def test_republish_replaces_atomically_while_a_reader_holds_the_old_copy(tmp_path):
    db = tmp_path / "referral.duckdb"
    con = warehouse(str(db))
    good_world(con)
    publish_copy(con, db)
    reader = duckdb.connect(str(published_path(db)), read_only=True)
    assert reader.execute("SELECT count(*) FROM analytics.orders").fetchall() == [(3,)]
    insert(con, "analytics.orders", [order("sf:new")])                 # uncommitted-to-file changes (WAL)
    publish_copy(con, db)
    # the open reader still sees its consistent snapshot; a new reader sees the new copy
    assert reader.execute("SELECT count(*) FROM analytics.orders").fetchall() == [(3,)]
    reader.close()
    with duckdb.connect(str(published_path(db)), read_only=True) as fresh:
        assert fresh.execute("SELECT count(*) FROM analytics.orders").fetchall() == [(4,)]
    assert sorted(p.name for p in published_path(db).parent.iterdir()) == ["referral.duckdb"]   # no temp files
    con.close()
    assert_same_content(db, published_path(db))
