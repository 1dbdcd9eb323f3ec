"""Shared helpers for the Salesforce source tests: small fixture orgs, a simulator serving them,
a client pointed at it (client-credentials login, fast backoff), and one-call extraction and
staging of every entity into an in-memory DuckDB."""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import orjson
import requests

from referral_pipeline.clients.salesforce import SalesforceClient
from referral_pipeline.config.programs import Programs
from referral_pipeline.extract.base import ExtractResult, extract
from referral_pipeline.extract.salesforce import ENTITIES, SalesforceExtractor
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.core.stamps import fmt_salesforce
from referral_pipeline.sandbox.salesforce import SalesforceSimulator
from referral_pipeline.sandbox.salesforce.schema import make_id
from referral_pipeline.sandbox.testing import serve_in_thread
from referral_pipeline.sources.salesforce import staging_specs
from referral_pipeline.transform.staging.runner import StagingResult, ensure_staging_schema, run_staging
from referral_pipeline.warehouse.schema import ensure_schema

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
SOURCE = "sf"
PROGRAMS = Programs.model_validate({
    "sources": [{"id": SOURCE, "type": "salesforce"}],
    "markets": [
        {"id": "us", "business_unit": "acme-us", "currency": "USD", "match": [{"source": SOURCE, "currency": "USD"}],
         "advocate_reward": {"amount": 20, "currency": "USD"}},
        {"id": "uk", "business_unit": "acme-uk", "currency": "GBP", "match": [{"source": SOURCE, "currency": "GBP"}],
         "advocate_reward": {"amount": 15, "currency": "GBP"}},
    ]})
PROGRAMS_YAML = """
sources:
  - {id: sf, type: salesforce, env_prefix: SALESFORCE, page_size: 200, overlap_seconds: 300, bulk_threshold: 100000}
markets:
  - {id: us, business_unit: acme-us, currency: USD, match: [{source: sf, currency: USD}],
     advocate_reward: {amount: 20, currency: USD}}
  - {id: uk, business_unit: acme-uk, currency: GBP, match: [{source: sf, currency: GBP}],
     advocate_reward: {amount: 15, currency: GBP}}
"""


def at(minutes: float) -> str:
    """A SystemModstamp ``minutes`` after T0, as Salesforce writes it."""
    return fmt_salesforce(T0 + timedelta(minutes=minutes))


def sid(prefix: str, n: int) -> str:
    return make_id(prefix, n)


def account(n: int, minutes: float, **over) -> dict:
    return {"Id": sid("001", n), "Name": f"Account {n}", "CurrencyIsoCode": "USD",
            "CreatedDate": at(minutes), "SystemModstamp": at(minutes), **over}


def contact(n: int, minutes: float, **over) -> dict:
    return {"Id": sid("003", n), "AccountId": sid("001", n), "Email": f"Person{n}@Example.com", "FirstName": f"Pat{n}",
            "LastName": f"Lee{n}", "HasOptedOutOfEmail": n % 3 == 0, "MailingCountry": "United States",
            "CreatedDate": at(minutes - 60), "SystemModstamp": at(minutes), **over}


def order(n: int, minutes: float, contact_n: int | None = None, **over) -> dict:
    c = n if contact_n is None else contact_n
    created = T0 + timedelta(minutes=minutes - 30)
    return {"Id": sid("801", n), "AccountId": sid("001", c), "BillToContactId": sid("003", c),
            "OrderNumber": f"{100 + n:08d}", "EffectiveDate": created.strftime("%Y-%m-%d"), "Status": "Activated",
            "CurrencyIsoCode": "USD", "TotalAmount": 100.0 + n, "Discount_Amount__c": 10.0, "Tax_Amount__c": 7.5,
            "Shipping_Amount__c": 4.99, "Refunded_Amount__c": 0.0, "Coupon_Code__c": None, "Referral_Code__c": None,
            "Friendbuy_Attribution_Id__c": None, "IP_Address__c": f"10.0.0.{n % 250}", "User_Agent__c": "Mozilla/5.0",
            "Channel__c": "web", "Market__c": "us", "CreatedDate": fmt_salesforce(created),
            "SystemModstamp": at(minutes), **over}


def order_item(n: int, order_n: int, minutes: float, **over) -> dict:
    return {"Id": sid("802", n), "OrderId": sid("801", order_n), "SKU__c": f"SKU-{n}", "Product_Name__c": f"Thing {n}",
            "Quantity": 2.0, "UnitPrice": 12.5, "TotalPrice": 25.0, "CreatedDate": at(minutes),
            "SystemModstamp": at(minutes), **over}


def reward(n: int, minutes: float, **over) -> dict:
    return {"Id": sid("a0B", n), "Name": f"RWD-{n:07d}", "Reward_Key__c": f"rw-{n}", "Status__c": "on_hold",
            "Amount__c": 20.0, "CurrencyIsoCode": "USD", "Review_Decision__c": "approve" if n % 2 else None,
            "CreatedDate": at(minutes), "SystemModstamp": at(minutes), **over}


def small_org(n: int = 12, step: float = 17) -> dict[str, list[dict]]:
    """``n`` contacts with accounts, one order each with two items, and a few rewards."""
    return {
        "Account": [account(i, i * step) for i in range(1, n + 1)],
        "Contact": [contact(i, i * step + 1) for i in range(1, n + 1)],
        "Order": [order(i, i * step + 2) for i in range(1, n + 1)],
        "OrderItem": [order_item(2 * i + k, i, i * step + 3) for i in range(1, n + 1) for k in (0, 1)],
        "Referral_Reward__c": [reward(i, i * step + 4) for i in range(1, 4)],
    }


def write_org(root: Path, org: dict[str, list[dict]]) -> Path:
    folder = root / "salesforce"
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in org.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


@contextmanager
def salesforce_sim(data_root: Path | None, faults: dict | None = None, options: dict | None = None,
                   rate_limit: dict | None = None, credentials: dict | None = None) -> Iterator[SalesforceSimulator]:
    config = SystemConfig(faults=FaultSpec(**(faults or {})), options={"bulk_polls_to_complete": 1, **(options or {})},
                          rate_limit=rate_limit or {}, credentials=credentials or {})
    with serve_in_thread(SalesforceSimulator(config, data_root=data_root)) as sim:
        yield sim


def client_for(sim: SalesforceSimulator, **kwargs) -> SalesforceClient:
    """A client-credentials client with short backoffs (the production retry policy, only faster)."""
    env = sim.env_vars(sim.base_url)
    options = dict(client_id=env["SALESFORCE_CLIENT_ID"], client_secret=env["SALESFORCE_CLIENT_SECRET"],
                   domain=env["SALESFORCE_DOMAIN"], api_version=env["SALESFORCE_API_VERSION"],
                   backoff_base=0.01, backoff_cap=0.05, timeout=(2.0, 10.0), bulk_poll_seconds=0.0)
    return SalesforceClient(env["SALESFORCE_INSTANCE_URL"], **{**options, **kwargs})


def new_warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ensure_schema(con)
    ensure_staging_schema(con, PROGRAMS)
    return con


def extractor(client: SalesforceClient, entity: str, page_size: int = 2000, bulk_threshold: int = 100_000,
              bulk_page_size: int = 50_000) -> SalesforceExtractor:
    return SalesforceExtractor(client, SOURCE, ENTITIES[entity], page_size=page_size, bulk_threshold=bulk_threshold,
                               bulk_page_size=bulk_page_size)


def extract_all(con, client: SalesforceClient, run_id: str, overlap: timedelta = timedelta(minutes=5),
                **kwargs) -> dict[str, ExtractResult]:
    """Every entity into ``raw.sf__<entity>`` (what the five extraction assets do)."""
    return {entity: extract(con, extractor(client, entity, **kwargs), run_id, overlap=overlap) for entity in ENTITIES}


def stage_all(con, run_id: str) -> dict[str, StagingResult]:
    return {spec.name: run_staging(con, spec, run_id) for spec in staging_specs(SOURCE)}


def raw_rows(con, entity: str) -> list[tuple]:
    """(pk, stamp, is_deleted, payload as dict) of a raw table, by pk."""
    return [(pk, stamp, deleted, orjson.loads(payload)) for pk, stamp, deleted, payload in con.execute(
        f"SELECT pk, stamp, is_deleted, payload FROM raw.sf__{entity} ORDER BY pk").fetchall()]


def table(con, name: str, order_by: str) -> list[tuple]:
    """Every row of a table except the load bookkeeping (load_seq), in a stable order."""
    cols = [c for (c,) in con.execute(f"SELECT column_name FROM (DESCRIBE {name})").fetchall() if c != "load_seq"]
    return con.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {order_by}").fetchall()


def snapshot(con) -> dict[str, list]:
    """Everything a run leaves behind that must not depend on faults or paths."""
    out = {f"raw.{e}": [(pk, stamp, d, p) for pk, stamp, d, p in raw_rows(con, e)] for e in ENTITIES}
    out["cursors"] = con.execute("SELECT entity, cursor_value, cursor_id FROM ops.sync_cursors ORDER BY 1").fetchall()
    for name, key in (("staging.customers", "customer_record_key"), ("staging.orders", "order_key"),
                      ("staging.order_items", "order_item_key"), ("staging.refunds", "refund_key")):
        out[name] = table(con, name, key)
    out["quarantine"] = con.execute("SELECT entity, source_id, reason FROM audit.quarantine ORDER BY 1, 2, 3").fetchall()
    return out


def post(sim: SalesforceSimulator, path: str, body: dict) -> dict:
    response = requests.post(sim.base_url + path, json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def upsert(sim: SalesforceSimulator, collection: str, records: list[dict]) -> list[dict]:
    """Change source data as a Salesforce user would (``POST /_sandbox/records``)."""
    return post(sim, "/_sandbox/records", {"collection": collection, "records": records})["records"]


def requests_made(sim: SalesforceSimulator, template: str) -> int:
    return sim.request_counts.get(template, 0)


QUERY = "GET /services/data/v{version}/queryAll"
QUERY_MORE = "GET /services/data/v{version}/query/{locator}"
BULK_CREATE = "POST /services/data/v{version}/jobs/query"
BULK_RESULTS = "GET /services/data/v{version}/jobs/query/{job_id}/results"
TOKEN = "POST /services/oauth2/token"
