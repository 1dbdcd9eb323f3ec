"""Fixture data and clients shared by the Salesforce simulator tests."""
from __future__ import annotations

import json
from pathlib import Path

import requests
from simple_salesforce import Salesforce

from referral_pipeline.http.salesforce_session import session_for_instance
from referral_pipeline.sandbox.core.config import FaultSpec, SystemConfig
from referral_pipeline.sandbox.salesforce import SalesforceSimulator
from referral_pipeline.sandbox.salesforce.schema import make_id

TOKEN = "test-static-token"
VERSION = "62.0"

A1, A2 = make_id("001", 901), make_id("001", 902)
C1, C2, C3, C4, C5 = (make_id("003", n) for n in range(901, 906))
O1, O2 = make_id("801", 901), make_id("801", 902)
I1 = make_id("802", 901)
R1 = make_id("a0A", 901)
W1 = make_id("a0B", 901)


def _stamp(day: int) -> str:
    return f"2025-01-{day:02d}T10:00:00.000+0000"


FIXTURES = {
    "Account": [
        {"Id": A1, "Name": "Acme", "CurrencyIsoCode": "USD", "SystemModstamp": _stamp(1), "CreatedDate": _stamp(1)},
        {"Id": A2, "Name": "Globex", "CurrencyIsoCode": "EUR", "SystemModstamp": _stamp(2), "CreatedDate": _stamp(2)},
    ],
    "Contact": [
        {"Id": C1, "AccountId": A1, "FirstName": "Ann", "LastName": "Smith", "Email": "ann@example.com",
         "HasOptedOutOfEmail": False, "MailingCountry": "US", "SystemModstamp": _stamp(3), "CreatedDate": _stamp(1)},
        {"Id": C2, "AccountId": A1, "FirstName": "Bob", "LastName": "Jones", "Email": "bob@example.com",
         "HasOptedOutOfEmail": True, "MailingCountry": "US", "SystemModstamp": _stamp(4), "CreatedDate": _stamp(1)},
        {"Id": C3, "AccountId": A2, "LastName": "Planted", "Email": "not-an-email",
         "Referral_Customer_Key__c": "dup-key", "SystemModstamp": _stamp(5), "CreatedDate": _stamp(1),
         "Shoe_Size__c": 42},
        {"Id": C4, "AccountId": A2, "LastName": "Twin", "Referral_Customer_Key__c": "dup-key",
         "SystemModstamp": _stamp(6), "CreatedDate": _stamp(1)},
        {"Id": C5, "AccountId": A2, "LastName": "Gone", "IsDeleted": True, "SystemModstamp": _stamp(7),
         "CreatedDate": _stamp(1)},
    ],
    "Order": [
        {"Id": O1, "AccountId": A1, "BillToContactId": C1, "OrderNumber": "00000101", "EffectiveDate": "2025-01-05",
         "Status": "Activated", "CurrencyIsoCode": "USD", "TotalAmount": 120.0, "Coupon_Code__c": "FRIEND-ANN",
         "SystemModstamp": _stamp(5), "CreatedDate": _stamp(5)},
        {"Id": O2, "AccountId": A1, "BillToContactId": C2, "OrderNumber": "00000102", "EffectiveDate": "2025-01-06",
         "Status": "Shipped?", "CurrencyIsoCode": "USD", "TotalAmount": -5, "SystemModstamp": _stamp(6),
         "CreatedDate": _stamp(6)},
    ],
    "OrderItem": [
        {"Id": I1, "OrderId": O1, "SKU__c": "SKU-1", "Product_Name__c": "Widget", "Quantity": 2.0,
         "UnitPrice": 60.0, "TotalPrice": 120.0, "SystemModstamp": _stamp(5)},
    ],
    "Referral__c": [
        {"Id": R1, "Name": "REF-0000001", "Referral_Key__c": "ref-1", "Advocate_Contact__c": C1,
         "Friend_Contact__c": C2, "Referral_Code__c": "ANN10", "SystemModstamp": _stamp(8), "CreatedDate": _stamp(8)},
    ],
    "Referral_Reward__c": [
        {"Id": W1, "Name": "RWD-0000001", "Reward_Key__c": "rw-1", "Advocate_Contact__c": C1, "Status__c": "pending",
         "Amount__c": 20.0, "CurrencyIsoCode": "USD", "SystemModstamp": _stamp(9), "CreatedDate": _stamp(9)},
    ],
}


def write_fixtures(root: Path, extra: dict[str, list[dict]] | None = None) -> Path:
    folder = root / "salesforce"
    folder.mkdir(parents=True, exist_ok=True)
    data = {k: list(v) for k, v in FIXTURES.items()}
    for name, records in (extra or {}).items():
        data.setdefault(name, []).extend(records)
    for name, records in data.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root


def make_sim(root: Path | None = None, faults: dict | None = None, rate_limit: dict | None = None,
             options: dict | None = None, credentials: dict | None = None,
             state_dir: Path | None = None) -> SalesforceSimulator:
    config = SystemConfig(credentials={"access_token": TOKEN, **(credentials or {})},
                          faults=FaultSpec(**(faults or {})), rate_limit=rate_limit or {}, options=options or {})
    return SalesforceSimulator(config, data_root=root, state_dir=state_dir)


def sf_client(sim: SalesforceSimulator, version: str = VERSION, token: str = TOKEN) -> Salesforce:
    """simple-salesforce in direct-session mode, through the https->http adapter."""
    return Salesforce(instance_url=sim.base_url, session_id=token, session=session_for_instance(sim.base_url),
                      version=version)


class Api:
    """Raw HTTP against the data API (for exact statuses, headers and bodies)."""

    def __init__(self, sim: SalesforceSimulator, version: str = VERSION, token: str | None = TOKEN):
        self.base = f"{sim.base_url}/services/data/v{version}"
        self.http = requests.Session()
        if token:
            self.http.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.http.post(self.base + path, **kw)

    def patch(self, path: str, **kw) -> requests.Response:
        return self.http.patch(self.base + path, **kw)

    def put(self, path: str, **kw) -> requests.Response:
        return self.http.put(self.base + path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.http.delete(self.base + path, **kw)

    def query(self, soql: str, all_rows: bool = False, **kw) -> requests.Response:
        return self.get("/queryAll" if all_rows else "/query", params={"q": soql}, **kw)
