"""Clients of the same credentials share one token per process; a 401 or expiry refreshes it
once for all of them; other credentials get their own; the secret is only kept as a digest."""
from __future__ import annotations

import itertools

from referral_pipeline.http.client import BearerToken, TokenCache, token_cache_key


def fetcher(ttl: float = 3600.0):
    calls = []
    counter = itertools.count(1)

    def fetch():
        calls.append(1)
        return f"tok-{next(counter)}", ttl
    return fetch, calls


def test_same_key_shares_the_token_and_each_fetch_goes_through_the_fetching_client():
    cache = TokenCache()
    key = token_cache_key("friendbuy", "https://mapi.example/", "key-1", "s3cret")
    fetch_a, calls_a = fetcher()
    fetch_b, calls_b = fetcher()
    a = BearerToken(fetch_a, cache_key=key, cache=cache)
    b = BearerToken(fetch_b, cache_key=key, cache=cache)
    assert a.headers() == b.headers() == {"Authorization": "Bearer tok-1"}
    assert (len(calls_a), len(calls_b)) == (1, 0)
    assert "s3cret" not in repr(key)


def test_a_401_refreshes_once_and_a_stale_invalidate_keeps_the_new_token():
    cache = TokenCache()
    key = token_cache_key("commercetools", "https://auth.example/oauth/token", "client", "secret")
    fetch_a, calls_a = fetcher()
    fetch_b, calls_b = fetcher()
    a = BearerToken(fetch_a, cache_key=key, cache=cache)
    b = BearerToken(fetch_b, cache_key=key, cache=cache)
    a.headers(), b.headers()                      # both hold tok-1
    a.invalidate()                                # a got a 401 with tok-1
    assert a.headers() == {"Authorization": "Bearer tok-2"}
    b.invalidate()                                # b's 401 was for tok-1 as well: tok-2 stays shared
    assert b.headers() == {"Authorization": "Bearer tok-2"}
    assert (len(calls_a), len(calls_b)) == (2, 0)


def test_expired_shared_token_is_fetched_again_and_other_credentials_are_separate():
    cache = TokenCache()
    key = token_cache_key("friendbuy", "https://mapi.example", "key-1", "s3cret")
    fetch_a, calls_a = fetcher(ttl=0.0)           # expires at once
    a = BearerToken(fetch_a, cache_key=key, cache=cache, margin_seconds=0)
    a.headers(), a.headers()
    assert len(calls_a) == 2
    other = token_cache_key("friendbuy", "https://mapi.example", "key-1", "another secret")
    fetch_c, calls_c = fetcher()
    BearerToken(fetch_c, cache_key=other, cache=cache).headers()
    assert len(calls_c) == 1 and other != key


def test_without_a_key_nothing_is_shared():
    fetch_a, calls_a = fetcher()
    fetch_b, calls_b = fetcher()
    BearerToken(fetch_a).headers(), BearerToken(fetch_b).headers()
    assert (len(calls_a), len(calls_b)) == (1, 1)
