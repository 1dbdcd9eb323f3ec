"""Pure pieces of the Salesforce source: SOQL building, value conversion, throttle classification,
the resource's environment binding and the shared client's ``refused`` hook."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
import requests
from dagster import EnvVar

from referral_pipeline.clients.salesforce import (SalesforceClientError, SalesforceResource, csv_records, csv_value,
                                                  is_concurrency_throttle, is_idempotent, storable)
from referral_pipeline.extract.salesforce import ENTITIES, parse_sf_datetime, soql_datetime, soql_id, where_clause
from referral_pipeline.sources.salesforce import PLUGIN, staging_specs
from referral_pipeline.warehouse.landing import Cursor

T = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
ENV = ("INSTANCE_URL", "ACCESS_TOKEN", "CLIENT_ID", "CLIENT_SECRET", "DOMAIN", "API_VERSION")


def test_where_clause_is_a_keyset_after_the_cursor():
    assert where_clause(Cursor(), None) == ""
    assert where_clause(Cursor(T, "003SB0000000001AAA"), None) == (
        " WHERE (SystemModstamp > 2026-03-01T10:00:00.123Z OR (SystemModstamp = 2026-03-01T10:00:00.123Z"
        " AND Id > '003SB0000000001AAA'))")
    # an overlap-shifted cursor has no id: inclusive bound; a backfill window adds an exclusive end
    assert where_clause(Cursor(T, None), T + timedelta(days=1)) == (
        " WHERE SystemModstamp >= 2026-03-01T10:00:00.123Z AND SystemModstamp < 2026-03-02T10:00:00.123Z")
    assert soql_datetime(datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == "2026-03-01T10:00:00.000Z"


def test_ids_spliced_into_soql_must_be_ids():
    assert soql_id("003SB0000000001") == "'003SB0000000001'"
    for bad in ("x' OR Name != '", "003SB00000000 01AAA", ""):
        with pytest.raises(ValueError):
            soql_id(bad)


def test_every_entity_selects_id_stamp_and_delete_flag():
    for spec in ENTITIES.values():
        fields = spec.select.split(", ")
        assert fields[0] == "Id" and {"SystemModstamp", "IsDeleted", "CreatedDate"} <= set(fields)
        assert len(fields) == len(set(fields)), spec.entity
    assert [e.entity for e in PLUGIN.entities] == ["account", "contact", "order", "order_item", "referral_reward"]
    assert [(s.name, s.entity, s.target) for s in staging_specs("sf")] == [
        ("sf.customers", "contact", "staging.customers"), ("sf.orders", "order", "staging.orders"),
        ("sf.refunds", "order", "staging.refunds"), ("sf.order_items", "order_item", "staging.order_items")]


def test_salesforce_datetimes_parse_to_aware_utc():
    assert parse_sf_datetime("2026-03-01T10:00:00.123+0000") == T.replace(microsecond=123000)
    assert parse_sf_datetime("2026-03-01T12:00:00.000+0200") == T.replace(microsecond=0)
    assert parse_sf_datetime(None) is None
    with pytest.raises(ValueError):
        parse_sf_datetime("2026-13-01T00:00:00Z")


def test_bulk_csv_cells_become_rest_values():
    assert csv_value("", "boolean") is False and csv_value("true", "boolean") is True
    assert csv_value("", "currency") is None and csv_value("12.5", "currency") == 12.5 and csv_value("3", "int") == 3
    assert csv_value("12,34", "currency") == "12,34" and csv_value("NaN", "double") == "NaN"
    assert csv_value("2026-03-01T10:00:00.000Z", "datetime") == "2026-03-01T10:00:00.000+0000"
    assert csv_value("2026-03-01", "date") == "2026-03-01" and csv_value("x", None) == "x"
    text = 'Id,Name,Amount__c,IsDeleted\n001A,"Acme, ""Inc""",,false\n'
    types = {"Id": "id", "Name": "string", "Amount__c": "currency", "IsDeleted": "boolean"}
    assert list(csv_records(text, types)) == [{"Id": "001A", "Name": 'Acme, "Inc"', "Amount__c": None,
                                               "IsDeleted": False}]


def test_values_are_made_storable():
    assert storable({"a": "ok\ud800", "b": [math.nan, 1.5], "c": math.inf}) == {"a": "ok\ufffd", "b": ["nan", 1.5],
                                                                                "c": "inf"}


def _response(status: int, body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, body
    return response


def test_throttles_are_told_apart_from_the_daily_allowance():
    concurrent = b'[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]'
    daily = b'[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]'
    assert is_concurrency_throttle(_response(403, concurrent)) and is_concurrency_throttle(_response(429, concurrent))
    assert not is_concurrency_throttle(_response(403, daily))
    assert not is_concurrency_throttle(_response(403, b'[{"errorCode":"INSUFFICIENT_ACCESS","message":"no"}]'))
    assert not is_concurrency_throttle(_response(403, b"<html>forbidden</html>"))
    assert is_idempotent("GET", "https://x/services/data/v62.0/query")
    assert is_idempotent("POST", "https://x/services/data/v62.0/jobs/query")
    assert not is_idempotent("POST", "https://x/services/data/v62.0/jobs/ingest")


def test_resource_binds_only_the_variables_that_are_set(monkeypatch):
    for suffix in ENV:
        monkeypatch.delenv(f"SF_EU_{suffix}", raising=False)
    empty = SalesforceResource.from_env_prefix("SF_EU")
    assert empty.instance_url == "" and empty.env_prefix == "SF_EU"
    with pytest.raises(SalesforceClientError, match="SF_EU_INSTANCE_URL"):
        empty.client()
    monkeypatch.setenv("SF_EU_INSTANCE_URL", "https://acme.my.salesforce.com")
    monkeypatch.setenv("SF_EU_CLIENT_ID", "id")
    with pytest.raises(SalesforceClientError, match="SF_EU_ACCESS_TOKEN, or SF_EU_CLIENT_ID"):
        SalesforceResource.from_env_prefix("SF_EU").client()
    monkeypatch.setenv("SF_EU_CLIENT_SECRET", "very-secret")
    bound = SalesforceResource.from_env_prefix("SF_EU")
    # what the resource holds is the variable's name (resolved by Dagster at launch), never its value
    assert isinstance(bound.client_secret, EnvVar) and bound.client_secret.env_var_name == "SF_EU_CLIENT_SECRET"
    assert "very-secret" not in repr(bound)
    assert (bound.access_token, bound.domain, bound.api_version) == ("", "", "62.0")
