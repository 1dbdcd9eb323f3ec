"""Staging: raw source rows -> canonical typed tables, with bad rows routed to ``audit.quarantine``."""
