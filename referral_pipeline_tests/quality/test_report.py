"""The analysts' HTML report: renders with data, with the funnel fallback, and with no tables at all;
self-contained and escaped. Plus the Dagster assets writing the report and the published copy."""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
from dagster import materialize
from dagster_duckdb import DuckDBResource

from referral_pipeline.analyst import published_path, report_path, write_report
from referral_pipeline.assets.analyst import build_analyst_assets
from referral_pipeline.quality import SUITES, run_suites
from referral_pipeline.resources import PipelineSettings

from .support import FUNNEL_DDL, good_world, insert, referral_event, warehouse

PROGRAMS = str(Path(__file__).resolve().parents[2] / "data" / "programs.yaml")
CAMPAIGNS = [("camp-us", "us"), ("camp-uk", "uk"), ("camp-eu", "eu")]


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    return html[start:html.index("</section>", start)]


def _self_contained(html: str) -> None:
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<script" not in html and not re.search(r"""(src|href)=["'](https?:)?//""", html)
    assert "@import" not in html and "url(" not in html


def test_report_with_funnel_table(tmp_path):
    con = warehouse()
    good_world(con)
    con.execute(FUNNEL_DDL)
    insert(con, "analytics.referral_funnel_daily", [
        dict(day=date(2026, 3, 2) + timedelta(days=d), market_id=m, campaign_id=f"camp-{m}", channel=ch,
             shares=10, clicks=8, signups=4, conversions=2 if ch == "email" else 1, revenue=180, rewards_approved=1)
        for d in range(21) for m in ("us", "uk") for ch in ("email", "<script>alert(1)</script>")])
    run_suites(con, SUITES, markets=["us", "uk", "eu"])
    result = write_report(con, tmp_path / "r.html", as_of="2026-04-01T00:00:00+00:00", run_id="run-1",
                          campaign_markets=CAMPAIGNS, database="w.duckdb")
    html = (tmp_path / "r.html").read_text()
    _self_contained(html)
    assert result.sections == {"funnel": True, "conversion": True, "rewards": True, "fraud": True, "quality": True}
    assert (result.errors, result.missing_tables) == ({}, [])

    funnel = _section(html, "funnel")
    assert "source: analytics.referral_funnel_daily" in funnel
    # us/email over 21 days: 210 shares, 168 clicks, 84 sign-ups, 42 conversions (25.0 %), revenue 3,780.00
    assert re.search(r"<td>us</td><td>email</td><td class=\"n\">210</td><td class=\"n\">168</td>"
                     r"<td class=\"n\">84</td><td class=\"n\">42</td><td class=\"n\">25.0%</td>"
                     r"<td class=\"n\">3,780.00</td>", funnel)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in funnel and "<script>" not in funnel   # escaped
    conversion = _section(html, "conversion")
    assert "<svg" in conversion and "<polyline" in conversion
    assert conversion.count("<tr>") == 1 + 3          # header + the weeks of 2026-03-02, -09, -16 (Mondays)
    rewards = _section(html, "rewards")
    assert re.search(r'class="bar approved" style="width: 100.0%"', rewards)
    assert "<td>us</td><td>not_eligible</td><td class=\"n\">1</td><td class=\"n\">20.00</td><td>USD</td>" in rewards
    fraud = _section(html, "fraud")
    assert "SAME_IP_AS_ADVOCATE (hold)" in fraud and "SELF_REFERRAL (reject)" in fraud
    quality = _section(html, "quality")
    assert quality.count("passed") == len(SUITES) and "FAILED" not in quality
    assert 'class="v">3</div><div class="l">customers' in html
    assert "as of 2026-04-01T00:00:00+00:00" in html and "run run-1" in html


def test_report_falls_back_to_friendbuy_events(tmp_path):
    con = warehouse(analytics=False)
    insert(con, "staging.referral_events", [
        referral_event("fb:share:1", 1, kind="share"), referral_event("fb:click:1", 2),
        referral_event("fb:click:2", 3), referral_event("fb:purchase:1", 4, kind="purchase", amount=55),
        referral_event("fb:click:3", 5, campaign_id="camp-uk", channel="sms"),
        referral_event("fb:click:4", 6, campaign_id="camp-unknown", channel=None)])
    result = write_report(con, tmp_path / "r.html", campaign_markets=CAMPAIGNS)
    html = (tmp_path / "r.html").read_text()
    funnel = _section(html, "funnel")
    assert "source: staging.referral_events" in funnel
    rows = re.findall(r"<tr><td>([^<]*)</td><td>([^<]*)</td>((?:<td class=\"n\">[^<]*</td>)+)</tr>", funnel)
    cells = {(m, ch): re.findall(r">([^<]*)<", rest)[::2] for m, ch, rest in rows}
    assert cells == {("(unknown campaign)", "(none)"): ["0", "1", "0", "0", "0.0%", "–", "0"],
                     ("uk", "sms"): ["0", "1", "0", "0", "0.0%", "–", "0"],
                     ("us", "email"): ["1", "2", "0", "1", "50.0%", "55.00", "0"]}
    assert result.sections["funnel"] and result.sections["conversion"]
    assert not result.sections["rewards"] and "analytics.rewards" in result.missing_tables
    assert "No data yet: analytics.rewards does not exist" in _section(html, "rewards")


def test_report_renders_on_an_empty_database(tmp_path):
    con = duckdb.connect()
    result = write_report(con, tmp_path / "sub" / "r.html")
    html = (tmp_path / "sub" / "r.html").read_text()
    _self_contained(html)
    assert result.sections == {"funnel": False, "conversion": False, "rewards": False, "fraud": False, "quality": False}
    assert result.errors == {}
    assert html.count("No data yet") == 5
    assert ("none of analytics.referral_funnel_daily, analytics.referral_events, staging.referral_events exists"
            in _section(html, "funnel"))
    assert list((tmp_path / "sub").iterdir()) == [tmp_path / "sub" / "r.html"]    # no temp file left


def test_report_section_with_an_unexpected_shape_says_so(tmp_path):
    con = warehouse(analytics=False)
    con.execute("CREATE TABLE analytics.rewards (reward_key VARCHAR)")          # no status column
    result = write_report(con, tmp_path / "r.html")
    assert set(result.errors) == {"rewards"} and "status" in result.errors["rewards"]
    assert "Could not build this section" in _section((tmp_path / "r.html").read_text(), "rewards")


def test_report_and_published_copy_assets(tmp_path):
    db = tmp_path / "data" / "referral.duckdb"
    db.parent.mkdir()
    with warehouse(str(db)) as con:
        good_world(con)
    assets = build_analyst_assets([])
    result = materialize(assets, resources={"duckdb": DuckDBResource(database=str(db)),
                                            "settings": PipelineSettings(config_path=PROGRAMS,
                                                                         as_of="2026-04-01T00:00:00Z")})
    assert result.success
    assert report_path(db) == tmp_path / "data" / "reports" / "referral_report.html"
    assert published_path(db) == tmp_path / "data" / "published" / "referral.duckdb"
    html = report_path(db).read_text()
    assert "as of 2026-04-01T00:00:00+00:00" in html and "SAME_IP_AS_ADVOCATE" in html
    meta = {m.asset_key.to_user_string(): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert meta["reports/referral_report"]["path"].value == str(report_path(db))
    assert meta["reports/published_copy"]["method"].value == "file_copy"
    with duckdb.connect(str(published_path(db)), read_only=True) as ro:
        assert ro.execute("SELECT count(*) FROM analytics.rewards").fetchall() == [(2,)]


def test_report_prefers_the_attributed_events_for_the_fallback(tmp_path):
    """analytics.referral_events (the attribution stage's, with market_id) wins over staging's."""
    con = warehouse(analytics=False)
    insert(con, "staging.referral_events", [referral_event("fb:click:1", 1)])
    con.execute("CREATE TABLE analytics.referral_events AS SELECT * EXCLUDE (load_seq), 'uk' AS market_id "
                "FROM staging.referral_events")
    insert(con, "analytics.referral_events", [dict(event_key="fb:purchase:1", kind="purchase", market_id="uk",
                                                   channel="email", occurred_at=referral_event("x", 0)["occurred_at"],
                                                   amount=40)])
    write_report(con, tmp_path / "r.html", campaign_markets=CAMPAIGNS)
    funnel = _section((tmp_path / "r.html").read_text(), "funnel")
    assert "source: analytics.referral_events" in funnel and "rewards distributed" in funnel
    assert re.search(r"<td>uk</td><td>email</td><td class=\"n\">0</td><td class=\"n\">1</td><td class=\"n\">0</td>"
                     r"<td class=\"n\">1</td><td class=\"n\">100.0%</td><td class=\"n\">40.00</td>", funnel)
    assert "<td>us</td>" not in funnel


def test_weekly_revenue_is_split_by_currency_and_low_click_weeks_have_no_rate(tmp_path):
    con = warehouse(analytics=False)
    con.execute(FUNNEL_DDL)
    con.execute("ALTER TABLE analytics.referral_funnel_daily ADD COLUMN currency VARCHAR")
    monday = date(2026, 3, 2)
    rows = [dict(day=monday + timedelta(days=d), market_id=m, campaign_id=f"camp-{m}", channel="email", shares=5,
                 clicks=10, signups=2, conversions=1, revenue=rev, rewards_approved=0, currency=cur)
            for d in range(7) for m, cur, rev in (("us", "USD", 100), ("uk", "GBP", 40))]
    # the next week: 3 clicks and 2 conversions (67%): an outlier that must not make the line
    rows.append(dict(day=monday + timedelta(days=7), market_id="us", campaign_id="camp-us", channel="email", shares=1,
                     clicks=3, signups=1, conversions=2, revenue=50, rewards_approved=0, currency="USD"))
    insert(con, "analytics.referral_funnel_daily", rows)
    write_report(con, tmp_path / "r.html", campaign_markets=CAMPAIGNS)
    conversion = _section((tmp_path / "r.html").read_text(), "conversion")
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", conversion)[1:]]
    assert cells == [["2026-03-02", "140", "28", "14", "10.0%", "280.00 GBP · 700.00 USD"],   # not 980.00
                     ["2026-03-09", "3", "1", "2", "–", "50.00 USD"]]                            # 3 clicks < 20
    # one week with a rate: a single point, no line through the outlier
    assert "<polyline" not in conversion and conversion.count("<circle") == 1
