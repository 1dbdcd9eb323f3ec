"""The commercetools client: token request shape, scopes, predicates and literals, body parsing,
bad credentials, and paging past records whose stamp cannot be parsed."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from referral_pipeline.clients.commercetools import (CommercetoolsClient, Credentials, format_stamp, keyset_predicate,
                                                     literal, parse_body, parse_stamp, split_scopes, token_url)
from referral_pipeline.http.client import ApiError

from .commercetools_support import PROJECT, UrlLog, client_for, customer, serve, uid, write_fixtures


def test_helpers():
    assert split_scopes("view_orders:p,view_customers:p") == ("view_orders:p", "view_customers:p")
    assert split_scopes("view_orders:p  manage_project:p") == ("view_orders:p", "manage_project:p")
    assert split_scopes(None) == ()
    assert token_url("https://auth.example.com") == "https://auth.example.com/oauth/token"
    assert token_url("https://auth.example.com/") == "https://auth.example.com/oauth/token"
    assert token_url("https://auth.example.com/custom/token") == "https://auth.example.com/custom/token"
    assert literal('a"b\\c') == '"a\\"b\\\\c"'
    assert keyset_predicate("2024-01-01T00:00:00.000Z", "x") == \
        'lastModifiedAt > "2024-01-01T00:00:00.000Z" or (lastModifiedAt = "2024-01-01T00:00:00.000Z" and id > "x")'
    assert format_stamp(datetime(2024, 1, 2, 3, 4, 5, 678999, tzinfo=timezone.utc)) == "2024-01-02T03:04:05.678Z"
    assert parse_stamp("2024-01-02T03:04:05.678Z") == datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    assert parse_stamp(None) is None
    with pytest.raises(ValueError):
        parse_stamp("yesterday")


def test_lone_surrogates_become_replacement_characters():
    body = parse_body(b'{"results": [{"id": "x", "firstName": "Ren\\ud800e", "ok": "\\ud83d\\ude00"}]}')
    assert body["results"][0] == {"id": "x", "firstName": "Ren\ufffde", "ok": "\U0001F600"}


def test_token_request_and_bad_credentials(tmp_path):
    with serve(write_fixtures(tmp_path, customers=[customer(1)])) as sim:
        log = UrlLog()
        sent = []
        log.session.hooks["response"].append(lambda r, *a, **k: sent.append((r.request.headers.get("Authorization"),
                                                                             r.request.body)))
        client = client_for(sim, session=log.session)
        assert client.query("customers")["results"][0]["id"] == uid("c", 1)
        auth, body = sent[0]
        assert auth.startswith("Basic ") and body == f"grant_type=client_credentials&scope=manage_project%3A{PROJECT}"
        assert sent[1][0].startswith("Bearer ")

        bad = CommercetoolsClient(Credentials(PROJECT, "sandbox-ct-client", "wrong", (), sim.base_url, sim.base_url))
        with pytest.raises(ApiError, match="commercetools token request failed \\(401\\)") as info:
            bad.query("customers")
        assert info.value.status == 401
        assert sim.request_counts["POST /oauth/token"] == 2       # one each; a bad secret is not retried


def test_records_with_unparseable_stamps_are_paged_by_offset_until_a_stamp_parses(tmp_path):
    broken = [customer(i, lastModifiedAt="not a date") for i in range(3)]
    good = [customer(i) for i in range(3, 8)]
    with serve(write_fixtures(tmp_path, customers=broken + good)) as sim:
        log = UrlLog()
        pages = list(client_for(sim, session=log.session).iter_modified("customers", page_size=2))
        assert [len(p) for p in pages] == [2, 2, 2, 2]
        assert sorted(r["id"] for p in pages for r in p) == sorted(r["id"] for r in broken + good)
        queries = log.queries("customers")
        assert [q.get("offset") for q in queries] == [None, ["2"], None, None, None]
        assert queries[2]["where"] == [keyset_predicate("2025-03-01T00:03:00.000Z", uid("c", 3))]
