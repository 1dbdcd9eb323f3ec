"""Friendbuy simulator parsers tested directly: body validation, analytics query/page tokens,
access tokens and settings."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from referral_pipeline.sandbox.friendbuy import validation as v
from referral_pipeline.sandbox.friendbuy.auth import TokenIssuer, b64url_decode, parse_authorization_body
from referral_pipeline.sandbox.friendbuy.errors import MapiError
from referral_pipeline.sandbox.friendbuy.paging import decode_page_token, encode_page_token, parse_query
from referral_pipeline.sandbox.friendbuy.settings import parse_settings

NOW = datetime(2025, 3, 1, 12, 0, 0, 500_000, tzinfo=timezone.utc)
SHARE_FILTERS = frozenset({"campaignId", "advocateEmail", "advocateCustomerId", "channel"})


def problem(body, schema):
    with pytest.raises(MapiError) as err:
        v.validate_body(body, schema)
    return err.value.status, err.value.message


# ---- body validation -------------------------------------------------------------------------
def test_purchase_requires_documented_fields():
    assert problem({}, v.PURCHASE) == (422, '"orderId" is required; "customerId" is required; '
                                            '"amount" is required; "currency" is required')
    base = {"orderId": "o1", "customerId": "c1", "amount": 10.5, "currency": "USD"}
    assert v.validate_body(base, v.PURCHASE) == base
    assert problem({**base, "amount": "10.5"}, v.PURCHASE) == (422, '"amount" must be a number')
    assert problem({**base, "amount": True}, v.PURCHASE) == (422, '"amount" must be a number')
    assert problem({**base, "amount": -1}, v.PURCHASE) == (422, '"amount" must be greater than or equal to 0')
    assert problem({**base, "currency": "dollars"}, v.PURCHASE) == (422, '"currency" must be a 3-letter currency code')
    assert problem({**base, "customerId": 42}, v.PURCHASE) == (422, '"customerId" must be a string')
    assert problem({**base, "orderId": " "}, v.PURCHASE) == (422, '"orderId" is not allowed to be empty')
    assert problem({**base, "email": "not-an-email"}, v.PURCHASE) == (422, '"email" must be a valid email')
    assert problem({**base, "isNewCustomer": "yes"}, v.PURCHASE) == (422, '"isNewCustomer" must be a boolean')


def test_purchase_products_are_checked_item_by_item():
    base = {"orderId": "o1", "customerId": "c1", "amount": 10, "currency": "USD"}
    ok = [{"sku": "A", "name": "Thing", "quantity": 2, "price": 10.0, "imageUrl": "http://i"}]
    assert v.validate_body({**base, "products": ok}, v.PURCHASE)["products"] == ok
    assert problem({**base, "products": {}}, v.PURCHASE) == (422, '"products" must be an array')
    assert problem({**base, "products": [{"name": "x"}]}, v.PURCHASE) == (422, '"products[0].sku" is required')
    assert problem({**base, "products": [ok[0], {"sku": "B", "quantity": 1.5}]}, v.PURCHASE) == \
        (422, '"products[1].quantity" must be an integer')
    assert problem({**base, "products": ["A"]}, v.PURCHASE) == (422, '"products[0]" must be of type object')
    assert v.validate_body({**base, "products": [{"sku": "A", "quantity": 2.0}]}, v.PURCHASE)  # 2.0 is an integer in JSON


def test_nulls_unknown_fields_and_non_objects():
    body = {"email": "a@b.co", "customerId": "c1", "firstName": None, "favouriteColour": "green"}
    assert v.validate_body(body, v.CUSTOMER) == body
    assert problem({"email": None, "customerId": "c1"}, v.CUSTOMER) == (422, '"email" is required')
    assert problem([body], v.CUSTOMER) == (400, "Invalid input, object invalid")
    assert problem("text", v.CUSTOMER)[0] == 400


def test_customer_optional_field_types():
    base = {"email": "a@b.co", "customerId": "c1"}
    assert v.validate_body({**base, "birthday": {"day": 29, "month": 2}, "age": 31,
                            "timezone": "America/Los_Angeles"}, v.CUSTOMER)
    assert problem({**base, "birthday": {"day": 32, "month": 1}}, v.CUSTOMER) == \
        (422, '"birthday.day" must be less than or equal to 31')
    assert problem({**base, "birthday": {"day": 1}}, v.CUSTOMER) == (422, '"birthday.month" is required')
    assert problem({**base, "birthday": "1990-01-01"}, v.CUSTOMER) == (422, '"birthday" must be of type object')
    assert problem({**base, "age": "31"}, v.CUSTOMER) == (422, '"age" must be an integer')
    assert problem({**base, "timezone": "Mars/Olympus"}, v.CUSTOMER) == (422, '"timezone" must be a valid IANA time zone')


def test_sign_up_and_custom_required_fields():
    assert problem({"customerId": "c1"}, v.SIGN_UP) == (422, '"email" is required')
    assert problem({"email": "a@b.co"}, v.CUSTOM) == (422, '"eventType" is required')
    assert problem({"email": "a@b.co", "eventType": "x", "deduplicationId": 7}, v.CUSTOM) == \
        (422, '"deduplicationId" must be a string')
    assert v.validate_body({"email": "a@b.co", "eventType": "Download"}, v.CUSTOM)  # customerId optional


def test_additional_properties_are_dropped_never_fatal():
    props = {"k0": 1, "k1": "x" * 129, "k2": None, **{f"s{i}": f"v{i}" for i in range(12)}}
    assert v.clean_additional_properties(props) == {f"s{i}": f"v{i}" for i in range(10)}
    assert v.clean_additional_properties("nope") is None
    body = v.validate_body({"email": "a@b.co", "customerId": "c1", "additionalProperties": ["a"]}, v.CUSTOMER)
    assert "additionalProperties" not in body
    body = v.validate_body({"email": "a@b.co", "customerId": "c1", "additionalProperties": {"a": 1, "b": "ok"}},
                           v.CUSTOMER)
    assert body["additionalProperties"] == {"b": "ok"}


# ---- analytics query and page tokens ---------------------------------------------------------
def query_problem(params, filters=SHARE_FILTERS, enums=None):
    with pytest.raises(MapiError) as err:
        parse_query(params, filters, 1000, enums)
    assert err.value.status == 422
    return err.value.message


def test_query_window_and_defaults():
    q = parse_query({"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-01-02"}, SHARE_FILTERS, 1000)
    assert (q.from_micros, q.to_micros) == (1704067200_000_000, 1704153600_000_000)
    assert q.page_size == 200 and q.zone == "UTC" and q.filters == () and q.search_after is None
    q = parse_query({"fromDate": "2024-01-01T00:00:00", "toDate": "2024-01-02T00:00:00-08:00",
                     "zone": "America/Los_Angeles", "pageSize": "5", "channel": "email"}, SHARE_FILTERS, 1000)
    assert q.from_micros == 1704067200_000_000 + 8 * 3600_000_000  # naive dates are in the zone
    assert q.page_size == 5 and q.filters == (("channel", "email"),)


def test_query_errors():
    assert query_problem({}) == '"fromDate" and "toDate" are required unless "pageToken" is given'
    assert query_problem({"fromDate": "2024-01-01"}) == '"fromDate" and "toDate" are required unless "pageToken" is given'
    window = {"fromDate": "2024-01-01", "toDate": "2024-02-01"}
    assert query_problem({**window, "limit": "10"}) == '"limit" is not allowed'
    assert query_problem({**window, "pageSize": "0"}) == '"pageSize" must be between 1 and 1000'
    assert query_problem({**window, "pageSize": "1001"}) == '"pageSize" must be between 1 and 1000'
    assert query_problem({**window, "pageSize": "ten"}) == '"pageSize" must be an integer'
    assert query_problem({**window, "fromDate": "Mon, 1 Jan 2024"}) == '"fromDate" must be a valid ISO 8601 date'
    assert query_problem({**window, "toDate": "2024-13-01"}) == '"toDate" must be a valid ISO 8601 date'
    assert query_problem({"fromDate": "2024-02-01", "toDate": "2024-01-01"}) == \
        '"toDate" must be greater than or equal to "fromDate"'
    assert query_problem({**window, "zone": "Nowhere"}) == '"zone" must be a valid IANA time zone'
    assert query_problem({**window, "channel": ""}) == '"channel" is not allowed to be empty'
    assert query_problem({**window, "widgetType": "banner"}, frozenset({"widgetType"}),
                         {"widgetType": ("advocateShare", "emailCapture")}) == \
        '"widgetType" must be one of [advocateShare, emailCapture]'
    assert query_problem({"pageToken": "!!!"}) == '"pageToken" is invalid'


def test_page_token_shape_and_round_trip():
    q = parse_query({"fromDate": "2024-01-01T00:00:00Z", "toDate": "2024-02-01T00:00:00Z", "pageSize": "50"},
                    SHARE_FILTERS, 1000)
    token = encode_page_token(q, 1704070800_123_000, "shares-7")
    assert "=" not in token and "+" not in token and "/" not in token
    assert orjson.loads(b64url_decode(token)) == {
        "searchAfter": [1704070800123, "shares-7"], "fromDate": "2024-01-01T00:00:00Z",
        "toDate": "2024-02-01T00:00:00Z", "pageSize": 50, "zone": "UTC"}
    back = decode_page_token(token, 1000, SHARE_FILTERS)
    assert back.search_after == (1704070800_123_000, "shares-7")
    assert (back.from_micros, back.to_micros, back.page_size) == (q.from_micros, q.to_micros, 50)
    # the token wins over query parameters sent alongside it
    assert parse_query({"pageToken": token, "pageSize": "3"}, SHARE_FILTERS, 1000).page_size == 50


def test_page_token_keeps_sub_millisecond_positions_and_filters():
    q = parse_query({"fromDate": "2024-01-01", "toDate": "2024-02-01", "advocateEmail": "A@x.com"},
                    SHARE_FILTERS, 1000)
    token = encode_page_token(q, 1704070800_123_456, "k")
    body = orjson.loads(b64url_decode(token))
    assert body["searchAfter"] == [1704070800123.456, "k"] and body["filters"] == {"advocateEmail": "A@x.com"}
    back = decode_page_token(token, 1000, SHARE_FILTERS)
    assert back.search_after == (1704070800_123_456, "k") and back.filters == (("advocateEmail", "A@x.com"),)
    with pytest.raises(MapiError):  # a filter this report does not have
        decode_page_token(token, 1000, frozenset({"campaignId"}))


@pytest.mark.parametrize("body", [
    {"fromDate": "2024-01-01", "toDate": "2024-02-01", "pageSize": 10},  # no searchAfter
    {"searchAfter": [1, 2], "fromDate": "2024-01-01", "toDate": "2024-02-01", "pageSize": 10},
    {"searchAfter": [1, "k"], "fromDate": "soon", "toDate": "2024-02-01", "pageSize": 10},
    {"searchAfter": [1, "k"], "fromDate": "2024-01-01", "toDate": "2024-02-01", "pageSize": 5000},
    ["not", "an", "object"],
])
def test_invalid_page_tokens(body):
    token = base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()
    with pytest.raises(MapiError, match="pageToken"):
        decode_page_token(token, 1000, SHARE_FILTERS)


# ---- access tokens ---------------------------------------------------------------------------
def issuer(secret="s3cret", ttl=1200):
    return TokenIssuer("key-1", secret, "merchant-1", "ops@example.com", ttl)


def test_token_shape_and_lifetime():
    answer = issuer().issue(NOW)
    assert answer["tokenType"] == "Bearer" and answer["expires"] == "2025-03-01T12:20:00.500Z"
    header, payload, signature = answer["token"].split(".")
    assert orjson.loads(b64url_decode(header)) == {"alg": "RS256", "typ": "JWT"}
    claims = orjson.loads(b64url_decode(payload))
    assert claims == {"exp": claims["iat"] + 1200, "userId": "email:ops@example.com", "merchantId": "merchant-1",
                      "role": "admin", "iat": int(NOW.timestamp())}
    assert len(b64url_decode(signature)) == 256


def test_token_verification():
    tokens = issuer()
    token = tokens.issue(NOW)["token"]
    assert tokens.verify_header(f"Bearer {token}", NOW)["merchantId"] == "merchant-1"
    assert tokens.verify_header(token, NOW + timedelta(minutes=19))["role"] == "admin"
    assert tokens.verify_header(f"bearer  {token}", NOW)
    for header, when in [(None, NOW), ("", NOW), ("Bearer ", NOW), ("Bearer abc", NOW),
                         (token, NOW + timedelta(minutes=20)), (token[:-2] + "AA", NOW),
                         (issuer(secret="other").issue(NOW)["token"], NOW)]:
        with pytest.raises(MapiError) as err:
            tokens.verify_header(header, when)
        assert (err.value.status, err.value.message) == (401, "Unauthorized")


def test_authorization_body():
    assert parse_authorization_body({"key": "k", "secret": "s"}) == ("k", "s")
    for body, message in [({}, '"key" is required; "secret" is required'),
                          ({"key": "k", "secret": 5}, '"secret" must be a string')]:
        with pytest.raises(MapiError) as err:
            parse_authorization_body(body)
        assert (err.value.status, err.value.message) == (422, message)
    with pytest.raises(MapiError) as err:
        parse_authorization_body(["k", "s"])
    assert err.value.status == 400


# ---- settings --------------------------------------------------------------------------------
def test_settings_defaults_and_errors():
    s = parse_settings({}, {})
    assert (s.duplicate_purchase, s.auto_reward, s.advocate_reward_amount, s.requests_per_second) == \
        ("accept", True, 20, 0)
    assert parse_settings({"duplicate_purchase": "reject"}, {"requests_per_second": 5}).requests_per_second == 5
    for options, rate_limit, match in [({"duplicate_purchase": "drop"}, {}, "duplicate_purchase"),
                                       ({"advocate_reward_type": "Cash"}, {}, "advocate_reward_type"),
                                       ({"colour": 1}, {}, "unknown option"),
                                       ({}, {"per_minute": 1}, "unknown option"),
                                       ({}, {"requests_per_second": -1}, "requests_per_second")]:
        with pytest.raises(ValueError, match=match):
            parse_settings(options, rate_limit)
