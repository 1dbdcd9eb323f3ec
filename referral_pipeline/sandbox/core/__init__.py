"""Shared machinery for the simulators: record store, clock/stamps, faults, rate limits, base app."""
