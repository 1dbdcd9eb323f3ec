"""Runs the identity stage in one DuckDB transaction (docs/identity.md).

Inputs: ``staging.customers``, ``staging.orders``, ``staging.referral_events`` and the programs file
(``system_of_record_precedence``, markets). Outputs: ``identity.customer_map`` and
``identity.email_index`` (persistent, append-only), ``identity.referral_parties``,
``identity.record_state`` and ``identity.order_state`` (what the stage has processed),
``analytics.customers``, and the view ``analytics.orders``.

Incremental: each input is read from its ``load_seq`` watermark (``ops.stage_progress``), with a
row-count check that falls back to a whole-table comparison when rows left staging or arrived with
an older ``load_seq``; customers are recomputed only for the keys the changes touch. ``rebuild=True`` recomputes every output except the persistent map and index (whose keys it
reuses), e.g. after a staging ``rebuild``.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import duckdb

from ...config.programs import Programs
from ...warehouse import schema as warehouse_schema
from ...warehouse.schema import ensure_schema
from ..runtime import digest, setup_once
from ..staging import runner as staging_runner
from ..staging.runner import ensure_staging_schema
from .countries import COUNTRY_NAMES as COUNTRY_ALIASES

PACKAGE = resources.files(__package__)
# the columns of analytics.orders over a staged order `o` and its map entry `m` (schema.sql)
ORDERS_SELECT = """o.order_key, o.source, o.source_order_id, m.customer_key, o.market_id, o.placed_at, o.status,
       o.currency, o.gross_amount, o.discount_amount, o.tax_amount, o.shipping_amount, o.refunded_amount,
       o.net_amount, o.coupon_codes, o.referral_code, o.attribution_id, o.ip_address, o.user_agent,
       o.order_number, o.channel, o.device_id, o.email_normalized, o.updated_at,
       o.source_type, o.customer_record_key, o.customer_record_key IS NULL AS is_guest, o.store, o.source_status,
       o.is_deleted,
       o.status NOT IN ('cancelled', 'declined', 'incomplete') AND NOT o.is_deleted AS counts_as_order,
       o.load_seq"""
SCHEMA_SQL = PACKAGE.joinpath("schema.sql").read_text().replace("{orders_select}", ORDERS_SELECT)
MACROS_SQL = PACKAGE.joinpath("macros.sql").read_text()
STEP_MARKER = re.compile(r"^-- step: ([a-z_]+)\s*$", re.MULTILINE)
PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
# bump when the SQL changes what analytics.customers holds: the next run recomputes every customer
LOGIC_VERSION = "identity-2"

INPUTS = {
    "customers": ("staging.customers", "staging.customers -> identity"),
    "orders": ("staging.orders", "staging.orders -> identity"),
    "events": ("staging.referral_events", "staging.referral_events -> identity"),
}
FINGERPRINT_STAGE = "programs -> identity"


def _load_steps(name: str) -> dict[str, str]:
    text = PACKAGE.joinpath(name).read_text()
    parts = STEP_MARKER.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


DELTAS = _load_steps("deltas.sql")
IDENTITIES = _load_steps("identities.sql")
ORDERS = _load_steps("orders.sql")
CUSTOMERS = _load_steps("customers.sql")


COUNTRY_NAMES = {iso: {name.lower() for name in names} for iso, names in COUNTRY_ALIASES.items()}


@dataclass
class MarketHints:
    """How a customer record without orders is placed in a market (docs/identity.md, "market_id")."""

    rows: list[tuple[str, str | None, str | None, str | None, str]]   # kind, source, store, country, market_id
    currencies: list[tuple[str, str]]                                 # market_id, program currency
    precedence: list[str]

    def fingerprint(self) -> int:
        payload = json.dumps([LOGIC_VERSION, sorted(self.rows, key=str), sorted(self.currencies), self.precedence])
        return int(hashlib.sha256(payload.encode()).hexdigest()[:15], 16)


def market_hints(programs: Programs) -> MarketHints:
    """Store hints (a source+store that feeds one market), source hints (a source all of whose match
    rules name one market) and country hints (a country, ISO code or English name, of exactly one
    market's locales)."""
    rows: list[tuple[str, str | None, str | None, str | None, str]] = []
    by_source: dict[str, set[str]] = {}
    by_store: dict[tuple[str, str], set[str]] = {}
    by_country: dict[str, set[str]] = {}
    for market in programs.markets:
        for rule in market.match:
            by_source.setdefault(rule.source, set()).add(market.id)
            if rule.store is not None:
                by_store.setdefault((rule.source, rule.store), set()).add(market.id)
        for locale in market.locales:
            region = locale.replace("_", "-").split("-")[-1].upper() if "-" in locale or "_" in locale else ""
            if len(region) == 2:
                for name in {region.lower()} | COUNTRY_NAMES.get(region, set()):
                    by_country.setdefault(name, set()).add(market.id)
    rows += [("store", source, store, None, next(iter(m))) for (source, store), m in sorted(by_store.items()) if len(m) == 1]
    rows += [("source", source, None, None, next(iter(m))) for source, m in sorted(by_source.items()) if len(m) == 1]
    rows += [("country", None, None, name, next(iter(m))) for name, m in sorted(by_country.items()) if len(m) == 1]
    currencies = [(m.id, m.currency) for m in programs.markets]
    return MarketHints(rows=rows, currencies=currencies, precedence=list(programs.system_of_record_precedence))


@dataclass
class IdentityResult:
    records_changed: int = 0
    records_removed: int = 0
    orders_changed: int = 0
    orders_removed: int = 0
    events_changed: int = 0
    events_removed: int = 0
    new_identities: dict[str, int] = field(default_factory=dict)
    new_emails: int = 0
    customers_recomputed: int = 0
    full_compare: list[str] = field(default_factory=list)
    all_customers: bool = False
    rebuild: bool = False
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {"records_changed": self.records_changed, "records_removed": self.records_removed,
                "orders_changed": self.orders_changed, "orders_removed": self.orders_removed,
                "events_changed": self.events_changed, "events_removed": self.events_removed,
                "new_identities": dict(self.new_identities), "new_emails": self.new_emails,
                "customers_recomputed": self.customers_recomputed, "full_compare": list(self.full_compare),
                "all_customers": self.all_customers, "rebuild": self.rebuild, "seconds": round(self.seconds, 3)}

    def slowest_steps(self, n: int = 8) -> dict[str, float]:
        top = sorted(self.step_seconds.items(), key=lambda item: -item[1])[:n]
        return {name: round(seconds, 3) for name, seconds in top}


def ensure_identity_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The warehouse, staging and identity tables, macros and views; once per connection and
    version of their SQL (``runtime.setup_once``: ~0.1 s of DDL and catalog look-ups per run)."""
    def create() -> None:
        ensure_schema(con)
        ensure_staging_schema(con)
        con.execute(MACROS_SQL)
        _drop_old_order_state(con)
        con.execute(SCHEMA_SQL)

    setup_once(con, "identity_schema", SCHEMA_VERSION, create)


SCHEMA_VERSION = digest(warehouse_schema.SCHEMA_SQL, staging_runner.CANONICAL_SQL, staging_runner.MACROS_SQL,
                        MACROS_SQL, SCHEMA_SQL)


def _drop_old_order_state(con: duckdb.DuckDBPyConnection) -> None:
    """An ``identity.order_state`` of an older layout (without the order figures) is dropped; the
    next run finds it empty and rewrites it from every staged order (``run_identity``)."""
    columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                         "WHERE table_schema = 'identity' AND table_name = 'order_state'").fetchall()}
    if columns and "counts_as_order" not in columns:
        con.execute("DROP TABLE identity.order_state")


def _exec(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None,
          timings: dict[str, float] | None = None, name: str = ""):
    started = time.perf_counter()
    used = {key: params[key] for key in dict.fromkeys(PARAM.findall(sql))} if params else {}
    out = con.execute(sql, used or None)
    if timings is not None and name:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started
    return out


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params).fetchall()[0][0]


def run_identity(con: duckdb.DuckDBPyConnection, programs: Programs, run_id: str | None,
                 as_of: datetime | None = None, rebuild: bool = False) -> IdentityResult:
    """One identity run, in one transaction. ``as_of`` stamps new map and index rows (default: now)."""
    started = time.perf_counter()
    ensure_identity_schema(con)
    hints = market_hints(programs)
    fingerprint = hints.fingerprint()
    params = {"as_of": as_of or datetime.now(timezone.utc), "run_id": run_id, "precedence": hints.precedence}
    result = IdentityResult(rebuild=rebuild)
    timings = result.step_seconds

    def step(name: str, sql: str):
        return _exec(con, sql, params, timings, name)

    con.execute("BEGIN TRANSACTION")
    try:
        _load_run_tables(con, hints)
        params["map_seq"] = _scalar(con, "SELECT nextval('identity.map_seq')")   # (stamped on the map rows it adds)
        marks = dict(con.execute("SELECT stage, last_seq FROM ops.stage_progress WHERE stage IN (?, ?, ?, ?)",
                                 [*(stage for _, stage in INPUTS.values()), FINGERPRINT_STAGE]).fetchall())
        if rebuild:
            for table in ("identity.record_state", "identity.order_state", "identity.referral_parties"):
                step("rebuild_clear", f"DELETE FROM {table}")
        watermarks = {name: -1 if rebuild else marks.get(stage, -1) for name, (_, stage) in INPUTS.items()}
        if _scalar(con, "SELECT count(*) FROM identity.order_state") == 0:
            watermarks["orders"] = -1        # (first run, or a new layout of the table: every staged order)
        con.executemany("INSERT INTO id_watermarks VALUES (?, ?)", list(watermarks.items()))
        map_before = _scalar(con, "SELECT count(*) FROM identity.customer_map")
        index_before = _scalar(con, "SELECT count(*) FROM identity.email_index")

        for kind, label in (("records", "customers"), ("orders", "orders"), ("events", "events")):
            if kind == "events":
                step("retry_events", DELTAS["retry_events"])
            step(f"d_{kind}", DELTAS[f"d_{kind}"])
            if watermarks[INPUT_OF[kind]] >= 0:
                _materialize_delta(con, kind, timings)
            staged, processed, new_keys = step(f"count_{kind}", DELTAS[f"count_{kind}"]).fetchall()[0]
            if processed + new_keys != staged:
                for name in (f"d_{kind}_full", f"d_{kind}_full_view", f"gone_{kind}_full"):
                    step(name, DELTAS[name])
                result.full_compare.append(label)
            else:
                step(f"gone_{kind}_none", DELTAS[f"gone_{kind}_none"])
            setattr(result, f"{kind}_changed", _scalar(con, f"SELECT count(*) FROM d_{kind}"))
            setattr(result, f"{kind}_removed", _scalar(con, f"SELECT count(*) FROM gone_{kind}"))
        step("affected_before", DELTAS["affected_before"])

        for name, sql in IDENTITIES.items():
            step(name, sql)
        result.new_identities = {k: v for k, v in con.execute(
            "SELECT identity_type, count(*) FROM assigned GROUP BY 1 UNION ALL SELECT 'friendbuy', count(*) FROM fb_new "
            "ORDER BY 1").fetchall() if v}
        for name, sql in ORDERS.items():
            step(name, sql)

        result.all_customers = rebuild or marks.get(FINGERPRINT_STAGE) != fingerprint
        for name in ("affected_all" if result.all_customers else "affected_after", "affected_keys"):
            step(name, CUSTOMERS[name])
        result.customers_recomputed = _scalar(con, "SELECT count(*) FROM affected_keys")
        if result.customers_recomputed:
            params["write_seq"] = _scalar(con, "SELECT nextval('identity.customer_write_seq')")
            for name in ("keep_loyalty", "customers_delete", "customers_insert"):
                step(name, CUSTOMERS[name])
        result.new_emails = _scalar(con, "SELECT count(*) FROM identity.email_index") - index_before
        new_map_rows = _scalar(con, "SELECT count(*) FROM identity.customer_map") - map_before
        if new_map_rows != sum(result.new_identities.values()):
            raise RuntimeError(f"identity map grew by {new_map_rows}, expected {result.new_identities}")

        _store_progress(con, fingerprint)
        _drop_run_tables(con)
        step("commit", "COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass                   # the transaction is already gone (e.g. COMMIT failed): keep the first error
        raise
    result.seconds = time.perf_counter() - started
    return result


INPUT_OF = {"records": "customers", "orders": "orders", "events": "events"}


def _materialize_delta(con: duckdb.DuckDBPyConnection, kind: str, timings: dict[str, float]) -> None:
    """On an incremental run, the delta view ``d_<kind>`` becomes a view over a TEMP copy of its rows:
    the steps read it half a dozen times, and each read of the view filters staging again (the whole
    table when changed rows sit in old row groups, e.g. rewritten in place, so zone maps cannot skip
    them). A full run (watermark -1) keeps the plain view, so it holds no copy of its input."""
    _exec(con, f"CREATE OR REPLACE TEMP TABLE d_{kind}_rows AS SELECT * FROM d_{kind}", None, timings, f"d_{kind}_rows")
    con.execute(f"CREATE OR REPLACE TEMP VIEW d_{kind} AS SELECT * FROM d_{kind}_rows")


def _load_run_tables(con: duckdb.DuckDBPyConnection, hints: MarketHints) -> None:
    con.execute("CREATE OR REPLACE TEMP TABLE id_watermarks (input VARCHAR, seq BIGINT)")
    con.execute("""CREATE OR REPLACE TEMP TABLE id_market_hints (kind VARCHAR, source VARCHAR, store VARCHAR,
                   country VARCHAR, market_id VARCHAR)""")
    con.execute("CREATE OR REPLACE TEMP TABLE id_market_currency (market_id VARCHAR, currency VARCHAR)")
    _insert_rows(con, "id_market_hints", hints.rows, 5)
    _insert_rows(con, "id_market_currency", hints.currencies, 2)


def _insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple], width: int) -> None:
    """One INSERT of every row (executemany runs one statement per row: ~15 ms for 30 rows)."""
    if rows:
        row = "(" + ", ".join("?" * width) + ")"
        con.execute(f"INSERT INTO {table} VALUES {', '.join(row for _ in rows)}", [v for r in rows for v in r])


RUN_TABLES = ("id_watermarks", "id_market_hints", "id_market_currency", "d_record_keys", "gone_records",
              "d_order_keys", "gone_orders", "retry_event_keys", "d_event_keys", "gone_events", "affected",
              "assigned", "fb_parties", "fb_ids", "fb_new", "fb_resolved", "affected_keys", "kept_loyalty",
              "d_records_rows", "d_orders_rows", "d_events_rows")
RUN_VIEWS = ("d_records", "d_orders", "d_events")


def _drop_run_tables(con: duckdb.DuckDBPyConnection) -> None:
    for view in RUN_VIEWS:
        con.execute(f"DROP VIEW IF EXISTS temp.main.{view}")
    for table in RUN_TABLES:
        con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")


def _store_progress(con: duckdb.DuckDBPyConnection, fingerprint: int) -> None:
    maxima = con.execute("SELECT " + ", ".join(f"(SELECT max(load_seq) FROM {table})" for table, _ in INPUTS.values())
                         ).fetchall()[0]
    rows = [(stage, seq) for (_, stage), seq in zip(INPUTS.values(), maxima) if seq is not None]
    rows.append((FINGERPRINT_STAGE, fingerprint))
    con.execute(f"""INSERT INTO ops.stage_progress
                    SELECT stage, last_seq, now() FROM (VALUES {', '.join('(?, ?)' for _ in rows)}) v(stage, last_seq)
                    ON CONFLICT (stage) DO UPDATE SET last_seq = excluded.last_seq, updated_at = excluded.updated_at
                    WHERE ops.stage_progress.last_seq <> excluded.last_seq""", [x for row in rows for x in row])
