"""Salesforce simulator: REST API, SOQL, sObject Collections, Bulk API 2.0 and OAuth of one org
(see ``docs/sandbox/salesforce.md``)."""
from .simulator import SalesforceSimulator

__all__ = ["SalesforceSimulator"]
