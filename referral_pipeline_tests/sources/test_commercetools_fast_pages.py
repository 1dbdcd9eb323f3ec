"""commercetools pages parsed by DuckDB (``extract.json_pages``): the same raw rows, counts and
cursors as the Python path, the fallback for bodies only the lenient Python path handles, and the
extraction connection's memory limit."""
from __future__ import annotations

import orjson
import pytest
from dagster_duckdb import DuckDBResource

from referral_pipeline.extract.base import duckdb_settings, extract, memory_limited
from referral_pipeline.extract.commercetools import CommercetoolsExtractor, trim_expanded_codes
from referral_pipeline.extract.json_pages import PageParser
from referral_pipeline.http.jsonbody import decode_json
from referral_pipeline.warehouse.landing import read_cursor

from .commercetools_support import (OVERLAP, SOURCE, cart_discount, client_for, customer, discount_code, new_db,
                                    order, serve, uid, write_fixtures)


def _run(sim, fast: bool, entity: str, page_size: int = 7):
    con = new_db()
    extractor = CommercetoolsExtractor(client_for(sim), SOURCE, entity, page_size, fast=fast)
    result = extract(con, extractor, "r1", overlap=OVERLAP, flush_rows=10)
    rows = con.execute(f"SELECT pk, stamp, payload, payload_hash FROM raw.{SOURCE}__{entity} ORDER BY pk").fetchall()
    return result, rows, read_cursor(con, SOURCE, entity), extractor.fast_pages


@pytest.mark.parametrize("entity", ["orders", "customers", "discount_codes"])
def test_fast_pages_land_the_same_rows_and_cursor_as_the_python_path(tmp_path, entity):
    root = write_fixtures(tmp_path, customers=[customer(i) for i in range(9)],
                          orders=[order(i, codes=[uid("d", 1 + i % 2)] if i % 3 == 0 else []) for i in range(30)],
                          discount_codes=[discount_code(1, "FRIEND-20", [1]), discount_code(2, "SPRING", [1])],
                          cart_discounts=[cart_discount(1)])
    with serve(root) as sim:
        fast, fast_rows, fast_cursor, fast_pages = _run(sim, True, entity)
        slow, slow_rows, slow_cursor, slow_pages = _run(sim, False, entity)
    assert fast_pages == fast.pages > 0 and slow_pages == 0
    assert fast_rows == slow_rows and len(fast_rows) == fast.counts.fetched
    assert fast_cursor == slow_cursor and fast_cursor.value is not None
    assert (fast.counts.new, fast.counts.quarantined) == (slow.counts.new, slow.counts.quarantined)
    if entity == "orders":
        trimmed = [orjson.loads(p) for _, _, p, _ in fast_rows if '"discountCodes":[{' in p]
        assert trimmed and all(set(dc["discountCode"]["obj"]) == {"id", "code"}
                               for o in trimmed for dc in o["discountCodes"])


def test_parser_trims_like_python_and_keeps_key_order():
    recs = [{"id": "o1", "discountCodes": [{"discountCode": {"typeId": "discount-code", "id": "d1",
                                                             "obj": {"id": "d1", "version": 3, "code": "A"}},
                                            "state": "MatchesCart"}, {"discountCode": {"id": "d2"}}, 5],
             "lastModifiedAt": "2024-01-01T00:00:00.000Z", "x": 1.5, "k\"q": {"u": "é\\\""}},
            {"id": "o0", "discountCodes": [], "lastModifiedAt": "2023-01-01T00:00:00.123Z"}]
    parsed = PageParser(trim_discount_codes=True).parse(orjson.dumps({"results": recs}))
    assert parsed.batch["payload"].to_pylist() == [orjson.dumps(trim_expanded_codes(r)).decode() for r in recs]
    assert (parsed.cursor.id, parsed.last[1]) == ("o1", "o0")


@pytest.mark.parametrize("body", [
    b'{"results":[{"id":"a","lastModifiedAt":"2024-01-01T00:00:00.000Z","n":NaN}]}',
    b'{"results":[{"id":"a","lastModifiedAt":"2024-01-01T00:00:00.000Z","n":[1, -Infinity]}]}',
    b'{"results":[{"id":"a","lastModifiedAt":"2024-01-01T00:00:00.000Z","s":"\xff"}]}',
    b'{"results":[{"id":7,"lastModifiedAt":"2024-01-01T00:00:00.000Z"}]}',
    b'{"results":[{"lastModifiedAt":"2024-01-01T00:00:00.000Z"}]}',
    b'{"results":[{"id":"a","lastModifiedAt":"2024-01-01 00:00:00"}]}',
    b'{"results":[{"id":"a",',
])
def test_bodies_only_the_python_path_handles_are_left_to_it(body):
    assert PageParser().parse(body) is None


def test_lone_surrogates_are_repaired_as_in_the_python_path():
    body = (b'{"results":[{"id":"a","lastModifiedAt":"2024-01-01T00:00:00.000Z","s":"Wr\\ud800ght",'
            b'"e":"\\ud83d\\ude00","t":"\\\\ud800"}]}')
    expected = [orjson.dumps(r).decode() for r in decode_json(body)["results"]]
    assert "\ufffd" in expected[0] and PageParser().parse(body).batch["payload"].to_pylist() == expected


def test_the_text_nan_stays_on_the_fast_path():
    body = b'{"results":[{"id":"a","lastModifiedAt":"2024-01-01T00:00:00.000Z","c":"NaN","d":"x Infinity"}]}'
    assert PageParser().parse(body).batch["payload"].to_pylist() == [
        '{"id":"a","lastModifiedAt":"2024-01-01T00:00:00.000Z","c":"NaN","d":"x Infinity"}']


def test_extract_connection_has_its_settings_and_later_connections_do_not(tmp_path):
    resource = DuckDBResource(database=str(tmp_path / "w.duckdb"))

    def settings(con) -> tuple[str, str]:
        return con.execute("SELECT current_setting('memory_limit'), current_setting('checkpoint_threshold')").fetchall()[0]

    with resource.get_connection() as con:
        default = settings(con)
    with resource.get_connection() as con, duckdb_settings(con, memory_limit="512MB", checkpoint_threshold="256MB"):
        assert settings(con) == ("488.2 MiB", "244.1 MiB")
    with resource.get_connection() as con, memory_limited(con, "300MB"):
        assert settings(con) == ("286.1 MiB", default[1])
    with resource.get_connection() as con:     # a transform asset's connection
        assert settings(con) == default and "488.2 MiB" not in default and "244.1 MiB" not in default
    with pytest.raises(ValueError):
        with resource.get_connection() as con, memory_limited(con, "1GB; DROP TABLE x"):
            pass
    with pytest.raises(ValueError):
        with resource.get_connection() as con, duckdb_settings(con, threads="1"):
            pass


def test_extract_assets_run_with_the_limit_and_staging_assets_without(tmp_path, monkeypatch):
    from dagster import materialize

    from referral_pipeline.assets import extract as extract_assets
    from referral_pipeline.assets import staging as staging_assets
    from referral_pipeline.resources import PipelineSettings
    from referral_pipeline.sources.commercetools import PLUGIN

    from .commercetools_support import PROGRAMS_YAML
    from .test_commercetools_assets import ct_assets

    seen: dict[str, set[str]] = {"extract": set(), "staging": set()}

    def recording(kind, original):
        def ensure(con):
            seen[kind].add(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
            seen[kind].add(con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0])
            return original(con)
        return ensure

    monkeypatch.setattr(extract_assets, "ensure_schema", recording("extract", extract_assets.ensure_schema))
    monkeypatch.setattr(staging_assets, "ensure_schema", recording("staging", staging_assets.ensure_schema))
    monkeypatch.setenv("REFERRAL_EXTRACT_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("REFERRAL_EXTRACT_CHECKPOINT_THRESHOLD", "100MB")
    world = write_fixtures(tmp_path / "world", customers=[customer(i) for i in range(3)],
                           orders=[order(i) for i in range(4)], discount_codes=[discount_code(1, "F", [1])],
                           cart_discounts=[cart_discount(1)])
    programs = tmp_path / "programs.yaml"
    programs.write_text(PROGRAMS_YAML)
    with serve(world) as sim:
        for key, value in sim.env_vars(sim.base_url).items():
            monkeypatch.setenv(key, value)
        result = materialize(ct_assets(programs), resources={
            "duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb")),
            "settings": PipelineSettings(config_path=str(programs)), "api_ct": PLUGIN.make_resource("CTP")})
    assert result.success
    assert seen["extract"] == {"286.1 MiB", "95.3 MiB"}
    assert seen["staging"] and not {"286.1 MiB", "95.3 MiB"} & seen["staging"]
