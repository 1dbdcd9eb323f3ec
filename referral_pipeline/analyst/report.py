"""The analysts' HTML report (product §10): funnel by market and channel, conversion over time,
rewards by status, fraud flags by rule, and the state of the data-quality checks.

Every section is one small aggregate query in DuckDB (only results travel to Python). A section
whose tables do not exist yet says so instead of failing; the funnel and the time series use
``analytics.referral_funnel_daily`` when it exists and fall back to the Friendbuy events in
``staging.referral_events`` otherwise. No Dagster import.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import duckdb

from .template import REPORT_TEMPLATE

REWARD_STATUS_ORDER = ["pending", "on_hold", "approved", "issued", "canceled", "reversed", "not_eligible"]
MAX_WEEKS = 26
# a week's click → conversion rate is shown (table and line) only with at least this many clicks:
# with a handful of clicks one conversion swings it by tens of points and flattens every other week
MIN_RATE_CLICKS = 20


@dataclass
class Column:
    name: str
    numeric: bool = False


@dataclass
class Bar:
    label: str
    value: float
    pct: float
    text: str
    css: str = ""


@dataclass
class Section:
    id: str
    title: str
    source: str | None = None
    note: str | None = None
    columns: list[Column] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    svg: Any = None
    available: bool = True
    error: str | None = None
    missing_tables: list[str] = field(default_factory=list)


@dataclass
class ReportResult:
    path: str
    bytes: int
    sections: dict[str, bool]            # section id -> had data
    errors: dict[str, str]               # section id -> error (query failed)
    missing_tables: list[str]


# ---- helpers -------------------------------------------------------------------------------------

def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                            [schema, name]).fetchall()[0][0])


def _fmt_int(v: Any) -> str:
    return "–" if v is None else f"{int(v):,}"


def _fmt_money(v: Any) -> str:
    return "–" if v is None else f"{float(v):,.2f}"


def _fmt_pct(num: Any, den: Any) -> str:
    if not den:
        return "–"
    return f"{100.0 * float(num or 0) / float(den):.1f}%"


def _fmt_ts(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if v.tzinfo else v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def _bars(items: Sequence[tuple[str, float, str, str]]) -> list[Bar]:
    top = max((float(v or 0) for _, v, _, _ in items), default=0.0)
    return [Bar(label, float(v or 0), (100.0 * float(v or 0) / top) if top else 0.0, text, css)
            for label, v, text, css in items]


def _missing(section: Section, tables: Sequence[str]) -> Section:
    section.available = False
    section.missing_tables = list(tables)
    what = tables[0] if len(tables) == 1 else "none of " + ", ".join(tables)
    section.note = f"No data yet: {what} {'does not exist' if len(tables) == 1 else 'exists'} in this database."
    return section


# ---- sections ------------------------------------------------------------------------------------

def _campaign_markets(con: duckdb.DuckDBPyConnection, campaign_markets: Sequence[tuple[str, str]]) -> None:
    import pyarrow as pa

    table = pa.table({"campaign_id": pa.array([c for c, _ in campaign_markets], pa.string()),
                      "market_id": pa.array([m for _, m in campaign_markets], pa.string())})
    con.register("__report_campaigns", table)


def _event_source(con, campaign_markets: Sequence[tuple[str, str]]) -> tuple[str, str, str] | None:
    """Friendbuy events for the fallbacks: (label, FROM clause, market expression). The attribution
    stage's ``analytics.referral_events`` carries the market; staging's gets it from the campaign."""
    if _exists(con, "analytics.referral_events"):
        return "analytics.referral_events", "analytics.referral_events e", "e.market_id"
    if _exists(con, "staging.referral_events"):
        _campaign_markets(con, campaign_markets)
        return ("staging.referral_events",
                "staging.referral_events e LEFT JOIN __report_campaigns m ON m.campaign_id = e.campaign_id",
                "coalesce(m.market_id, '(unknown campaign)')")
    return None


def funnel_section(con, campaign_markets: Sequence[tuple[str, str]]) -> Section:
    s = Section("funnel", "Funnel by market and channel")
    events = None if _exists(con, "analytics.referral_funnel_daily") else _event_source(con, campaign_markets)
    if events is None and not _exists(con, "analytics.referral_funnel_daily"):
        return _missing(s, ["analytics.referral_funnel_daily", "analytics.referral_events", "staging.referral_events"])
    if events is None:
        s.source = "analytics.referral_funnel_daily"
        rows = con.execute("""
            SELECT market_id, coalesce(channel, '(none)') AS channel, sum(shares), sum(clicks), sum(signups),
                   sum(conversions), sum(revenue), sum(rewards_approved)
            FROM analytics.referral_funnel_daily GROUP BY ALL ORDER BY 1, 2""").fetchall()
        reward_label = "rewards approved"
    else:
        label, from_sql, market_sql = events
        s.source = f"{label} (Friendbuy's events; analytics.referral_funnel_daily is not built yet)"
        rows = con.execute(f"""
            SELECT {market_sql} AS market_id, coalesce(e.channel, '(none)') AS channel,
                   count(*) FILTER (WHERE e.kind = 'share'), count(*) FILTER (WHERE e.kind = 'click'),
                   count(*) FILTER (WHERE e.kind = 'signup'), count(*) FILTER (WHERE e.kind = 'purchase'),
                   sum(e.amount) FILTER (WHERE e.kind = 'purchase'), count(*) FILTER (WHERE e.kind = 'advocate_reward')
            FROM {from_sql} GROUP BY ALL ORDER BY 1, 2""").fetchall()
        reward_label = "rewards distributed"
    s.columns = [Column("market"), Column("channel"), Column("shares", True), Column("clicks", True),
                 Column("sign-ups", True), Column("conversions", True), Column("click → conversion", True),
                 Column("revenue", True), Column(reward_label, True)]
    s.rows = [[m, ch, _fmt_int(sh), _fmt_int(cl), _fmt_int(su), _fmt_int(cv), _fmt_pct(cv, cl), _fmt_money(rev),
               _fmt_int(rw)] for m, ch, sh, cl, su, cv, rev, rw in rows]
    s.bars = _bars([(f"{m} · {ch}", cv or 0, f"{_fmt_int(cv)} conv.", "") for m, ch, _, _, _, cv, _, _ in rows])
    if not rows:
        s.note = "No referral activity yet."
    return s


def _time_svg(points: list[tuple[str, int, float | None]]):
    """Bars = conversions per week, line = click → conversion rate (right scale); the line breaks at
    weeks without a rate (too few clicks)."""
    from markupsafe import Markup, escape

    width, height, pad_l, pad_b, pad_t, pad_r = 900, 220, 40, 28, 14, 44
    n = len(points)
    plot_w, plot_h = width - pad_l - pad_r, height - pad_b - pad_t
    top = max((c for _, c, _ in points), default=0) or 1
    top_rate = max((r for _, _, r in points if r is not None), default=0.0) or 1.0
    step = plot_w / max(n, 1)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             f'aria-label="conversions per week">',
             f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" stroke="#cbd2d9"/>',
             f'<text x="{pad_l - 6}" y="{pad_t + 4}" font-size="10" text-anchor="end" fill="#616e7c">{top:,}</text>',
             f'<text x="{pad_l - 6}" y="{pad_t + plot_h}" font-size="10" text-anchor="end" fill="#616e7c">0</text>',
             f'<text x="{pad_l + plot_w + 6}" y="{pad_t + 4}" font-size="10" fill="#ef6c00">{top_rate:.1f}%</text>']
    segments: list[list[str]] = [[]]
    for i, (label, conv, rate) in enumerate(points):
        h = plot_h * conv / top
        x = pad_l + i * step
        parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{pad_t + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{h:.1f}" fill="#2f6fed"><title>{escape(label)}: {conv:,} conversions</title></rect>')
        if rate is not None:
            segments[-1].append(f"{x + step / 2:.1f},{pad_t + plot_h - plot_h * rate / top_rate:.1f}")
        elif segments[-1]:
            segments.append([])
        if i in (0, n - 1) or (n > 8 and i == n // 2):
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 10}" font-size="10" text-anchor="middle" '
                         f'fill="#616e7c">{escape(label)}</text>')
    for line in segments:
        if len(line) > 1:
            parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#ef6c00" stroke-width="2"/>')
        elif line:
            x, y = line[0].split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="#ef6c00"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _has_column(con, table: str, column: str) -> bool:
    schema, name = table.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                            "AND column_name = ?", [schema, name, column]).fetchall()[0][0])


def _rate(conversions: Any, clicks: Any) -> float | None:
    """Click → conversion rate in percent; None for a week with fewer than MIN_RATE_CLICKS clicks."""
    if not clicks or int(clicks) < MIN_RATE_CLICKS:
        return None
    return 100.0 * float(conversions or 0) / float(clicks)


def _fmt_revenue(parts: Sequence[tuple[str | None, Any]]) -> str:
    """Revenue per currency (or market), never summed across them: '1,234.00 USD · 56.00 GBP'."""
    shown = [(unit or "?", amount) for unit, amount in sorted(parts, key=lambda p: str(p[0])) if amount]
    return " · ".join(f"{_fmt_money(a)} {u}" for u, a in shown) or "–"


def conversion_section(con, campaign_markets: Sequence[tuple[str, str]]) -> Section:
    s = Section("conversion", "Conversion over time (weekly)")
    if _exists(con, "analytics.referral_funnel_daily"):
        s.source = "analytics.referral_funnel_daily"
        # revenue is in each market's program currency: split by currency (by market on a table without it)
        unit = "currency" if _has_column(con, "analytics.referral_funnel_daily", "currency") else "market_id"
        base = f"""SELECT CAST(date_trunc('week', day) AS DATE) AS week, clicks, signups, conversions, revenue,
                          {unit} AS unit FROM analytics.referral_funnel_daily"""
    elif (events := _event_source(con, campaign_markets)) is not None:
        s.source = f"{events[0]} (Friendbuy's events)"
        base = f"""SELECT CAST(date_trunc('week', e.occurred_at AT TIME ZONE 'UTC') AS DATE) AS week,
                          CAST(e.kind = 'click' AS INTEGER) AS clicks, CAST(e.kind = 'signup' AS INTEGER) AS signups,
                          CAST(e.kind = 'purchase' AS INTEGER) AS conversions,
                          CASE WHEN e.kind = 'purchase' THEN e.amount END AS revenue,
                          coalesce(e.currency, {events[2]}) AS unit
                   FROM {events[1]}"""
    else:
        return _missing(s, ["analytics.referral_funnel_daily", "analytics.referral_events", "staging.referral_events"])
    weeks = con.execute(f"""
        WITH b AS ({base}),
        last AS (SELECT week FROM b GROUP BY week ORDER BY week DESC LIMIT {MAX_WEEKS})
        SELECT week, sum(clicks), sum(signups), sum(conversions),
               list({{'unit': unit, 'revenue': revenue}}) FILTER (WHERE revenue IS NOT NULL)
        FROM (SELECT week, unit, sum(clicks) AS clicks, sum(signups) AS signups, sum(conversions) AS conversions,
                     sum(revenue) AS revenue
              FROM b WHERE week IN (SELECT week FROM last) GROUP BY week, unit)
        GROUP BY week ORDER BY week""").fetchall()
    s.columns = [Column("week of"), Column("clicks", True), Column("sign-ups", True), Column("conversions", True),
                 Column("click → conversion", True), Column("revenue (per currency)", True)]
    s.rows = []
    for w, cl, su, cv, rev in weeks:
        rate = _rate(cv, cl)
        s.rows.append([_fmt_ts(w), _fmt_int(cl), _fmt_int(su), _fmt_int(cv), "–" if rate is None else f"{rate:.1f}%",
                       _fmt_revenue([(r["unit"], r["revenue"]) for r in rev or []])])
    if weeks:
        s.svg = _time_svg([(_fmt_ts(w), int(cv or 0), _rate(cv, cl)) for w, cl, _, cv, _ in weeks])
        s.note = (f"Last {len(weeks)} week(s). Bars: conversions; line: click → conversion rate, shown for weeks "
                  f"with at least {MIN_RATE_CLICKS} clicks. Revenue is per currency, never summed across them.")
    else:
        s.note = "No referral activity yet."
    return s


def rewards_section(con) -> Section:
    s = Section("rewards", "Rewards by status", source="analytics.rewards")
    if not _exists(con, "analytics.rewards"):
        return _missing(s, ["analytics.rewards"])
    totals = dict((st, n) for st, n in con.execute("SELECT status, count(*) FROM analytics.rewards GROUP BY 1").fetchall())
    order = REWARD_STATUS_ORDER + sorted(k for k in totals if k not in REWARD_STATUS_ORDER)
    s.bars = _bars([(st, totals[st], _fmt_int(totals[st]), st) for st in order if st in totals])
    rows = con.execute("""
        SELECT market_id, status, currency, count(*), sum(amount), count(DISTINCT advocate_customer_key)
        FROM analytics.rewards GROUP BY ALL""").fetchall()
    rank = {st: i for i, st in enumerate(order)}
    rows.sort(key=lambda r: (str(r[0]), rank.get(r[1], 99), str(r[2])))
    s.columns = [Column("market"), Column("status"), Column("rewards", True), Column("amount", True),
                 Column("currency"), Column("advocates", True)]
    s.rows = [[m or "–", st, _fmt_int(n), _fmt_money(a), cur or "–", _fmt_int(adv)] for m, st, cur, n, a, adv in rows]
    if not rows:
        s.note = "No rewards yet."
    return s


def fraud_section(con) -> Section:
    s = Section("fraud", "Fraud flags by rule", source="audit.fraud_flags")
    if not _exists(con, "audit.fraud_flags"):
        return _missing(s, ["audit.fraud_flags"])
    rows = con.execute("""
        SELECT rule, severity, count(*), count(DISTINCT subject_key), count(DISTINCT advocate_customer_key),
               min(detected_at), max(detected_at)
        FROM audit.fraud_flags GROUP BY ALL ORDER BY 3 DESC, 1""").fetchall()
    s.bars = _bars([(f"{rule} ({sev})", n, _fmt_int(n), sev or "") for rule, sev, n, *_ in rows])
    s.columns = [Column("rule"), Column("severity"), Column("flags", True), Column("subjects", True),
                 Column("advocates", True), Column("first seen"), Column("last seen")]
    s.rows = [[rule, sev, _fmt_int(n), _fmt_int(subj), _fmt_int(adv), _fmt_ts(first), _fmt_ts(last)]
              for rule, sev, n, subj, adv, first, last in rows]
    if not rows:
        s.note = "No fraud flags."
    return s


def quality_section(con) -> Section:
    s = Section("quality", "Data-quality checks", source="ops.dq_progress")
    if not _exists(con, "ops.dq_progress"):
        return _missing(s, ["ops.dq_progress"])
    rows = con.execute("""SELECT table_name, success, failed_expectations, rows_validated, rows_validated_total, updated_at
                          FROM ops.dq_progress ORDER BY 1""").fetchall()
    s.columns = [Column("table"), Column("result"), Column("failed expectations"), Column("rows last validated", True),
                 Column("rows validated (total)", True), Column("last change")]
    s.rows = [[t, "passed" if ok else "FAILED", ", ".join(failed or []) or "–", _fmt_int(n), _fmt_int(total), _fmt_ts(at)]
              for t, ok, failed, n, total, at in rows]
    if not rows:
        s.note = "No data-quality check has run yet."
    return s


def headline_cards(con) -> list[dict[str, str]]:
    cards = []
    for label, table, sql in [
        ("customers", "analytics.customers", "SELECT count(*) FROM analytics.customers"),
        ("orders", "analytics.orders", "SELECT count(*) FROM analytics.orders"),
        ("attributed orders", "analytics.referral_attribution", "SELECT count(*) FROM analytics.referral_attribution"),
        ("rewards", "analytics.rewards", "SELECT count(*) FROM analytics.rewards"),
        ("fraud flags", "audit.fraud_flags", "SELECT count(*) FROM audit.fraud_flags"),
        ("quarantined records", "audit.quarantine", "SELECT count(*) FROM audit.quarantine WHERE resolved_at IS NULL"),
    ]:
        if _exists(con, table):
            try:
                cards.append({"label": label, "value": _fmt_int(con.execute(sql).fetchall()[0][0])})
            except duckdb.Error:
                continue
    return cards


SECTION_BUILDERS = [
    ("funnel", "Funnel by market and channel", lambda con, cm: funnel_section(con, cm)),
    ("conversion", "Conversion over time (weekly)", lambda con, cm: conversion_section(con, cm)),
    ("rewards", "Rewards by status", lambda con, cm: rewards_section(con)),
    ("fraud", "Fraud flags by rule", lambda con, cm: fraud_section(con)),
    ("quality", "Data-quality checks", lambda con, cm: quality_section(con)),
]


def build_sections(con: duckdb.DuckDBPyConnection, campaign_markets: Sequence[tuple[str, str]] = ()) -> list[Section]:
    sections = []
    for sid, title, build in SECTION_BUILDERS:
        try:
            sections.append(build(con, campaign_markets))
        except duckdb.Error as exc:   # a table with an unexpected shape: say so, keep the rest of the report
            msg = str(exc).splitlines()[0][:300]
            sections.append(Section(sid, title, available=False, error=msg, note=f"Could not build this section: {msg}"))
    con.unregister("__report_campaigns")     # registered by the Friendbuy-events fallback (no-op otherwise)
    return sections


def render_report(sections: list[Section], cards: list[dict[str, str]], *, as_of: str | None, run_id: str | None,
                  database: str, generated_at: str | None = None) -> str:
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(REPORT_TEMPLATE).render(
        sections=sections, cards=cards, as_of=as_of, run_id=run_id, database=database,
        generated_at=generated_at or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def write_report(con: duckdb.DuckDBPyConnection, path: str | os.PathLike, *, as_of: str | None = None,
                 run_id: str | None = None, campaign_markets: Sequence[tuple[str, str]] = (),
                 database: str = "") -> ReportResult:
    """Builds the report from ``con`` and writes it to ``path`` atomically (temp file + rename)."""
    sections = build_sections(con, campaign_markets)
    html = render_report(sections, headline_cards(con), as_of=as_of, run_id=run_id, database=database)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    missing = sorted({t for s in sections for t in s.missing_tables})
    return ReportResult(path=str(target), bytes=len(html.encode("utf-8")),
                        sections={s.id: s.available and bool(s.rows or s.bars) for s in sections},
                        errors={s.id: s.error for s in sections if s.error}, missing_tables=missing)
