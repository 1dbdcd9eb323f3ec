"""The summary ``make run`` prints after the job: what was extracted, staged, quarantined,
attributed, rewarded, flagged and pushed — read back from DuckDB (stages not built yet are skipped)."""
from __future__ import annotations

import duckdb


def _table_exists(con, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, table]).fetchone()[0])


def _rows(con, sql: str, params=None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def collect_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str, list[tuple]]]:
    sections: list[tuple[str, list[tuple]]] = []
    if _table_exists(con, "ops.extract_log"):
        sections.append(("rows extracted per source (fetched / new / updated / quarantined / requests)", _rows(con, """
            SELECT source, sum(fetched), sum(new), sum(updated), sum(quarantined), sum(requests)
            FROM ops.extract_log WHERE run_id = ? GROUP BY source ORDER BY source""", [run_id])))
    if _table_exists(con, "audit.quarantine"):
        sections.append(("quarantined records by reason (this run / all time)", _rows(con, """
            SELECT reason, count(*) FILTER (WHERE run_id = ?), count(*) FROM audit.quarantine GROUP BY reason ORDER BY reason""",
                                                                                        [run_id])))
    for table, label in (("staging.customers", "customer records (all sources)"), ("staging.orders", "orders"),
                         ("analytics.customers", "customers (resolved people)")):
        if _table_exists(con, table):
            sections.append((label, _rows(con, f"SELECT count(*) FROM {table}")))
    if _table_exists(con, "analytics.referral_attribution"):
        sections.append(("attributed orders by method", _rows(con, """
            SELECT attribution_method, count(*) FROM analytics.referral_attribution GROUP BY 1 ORDER BY 1""")))
    if _table_exists(con, "analytics.rewards"):
        sections.append(("rewards by status", _rows(con, "SELECT status, count(*) FROM analytics.rewards GROUP BY 1 ORDER BY 1")))
    if _table_exists(con, "audit.fraud_flags"):
        sections.append(("fraud flags by rule", _rows(con, "SELECT rule, count(*) FROM audit.fraud_flags GROUP BY 1 ORDER BY 1")))
    if _table_exists(con, "ops.sync_log") and _table_exists(con, "ops.sync_state"):
        sections.append(("pushes per destination and entity (sent / unchanged / failed or pending retry)", _rows(con, """
            WITH attempted AS (SELECT DISTINCT destination, entity, record_key FROM ops.sync_log WHERE run_id = ?)
            SELECT st.destination || ' ' || st.entity,
                   count(*) FILTER (WHERE a.record_key IS NOT NULL AND st.status = 'ok'),
                   count(*) FILTER (WHERE a.record_key IS NULL AND st.status = 'ok'),
                   count(*) FILTER (WHERE st.status <> 'ok')
            FROM ops.sync_state st LEFT JOIN attempted a USING (destination, entity, record_key)
            GROUP BY 1 ORDER BY 1""", [run_id])))
    return sections


def print_summary(database: str, run_id: str, ok: bool, seconds: float) -> None:
    print()
    print(f"run {run_id} {'SUCCEEDED' if ok else 'FAILED'} in {seconds:.1f}s — {database}")
    try:
        con = duckdb.connect(database, read_only=True)
    except duckdb.Error as exc:
        print(f"  (cannot open {database}: {exc})")
        return
    with con:
        for title, rows in collect_summary(con, run_id):
            print(f"  {title}:")
            if not rows:
                print("    (none)")
            for row in rows:
                print("    " + "  ".join("-" if v is None else str(v) for v in row))
