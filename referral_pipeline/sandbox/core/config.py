"""Sandbox configuration: credentials, fault injection, rate limits and policies per simulator.

Read from ``DIR/sandbox.yaml`` (fixture directories), ``--faults SPEC`` on the command line and
``POST /_sandbox/faults`` at run time. Layout of ``sandbox.yaml``::

    seed: 7                       # seeds every fault injector (deterministic faults)
    faults: {p_429: 0.05}         # defaults for all five simulators
    salesforce:
      credentials: {client_id: ..., client_secret: ...}
      faults: {p_503: 0.1, slow_seconds: 5}
      rate_limit: {daily_api_requests: 15000}
      options: {}
    friendbuy: {options: {duplicate_purchase: reject}}
    yotpo: {rate_limit: {requests_per_second: 5}, options: {duplicate_order: accept}}
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

SYSTEMS = ("salesforce", "commercetools", "bigcommerce", "friendbuy", "yotpo")
PORT_OFFSETS = {name: i + 1 for i, name in enumerate(SYSTEMS)}


class FaultSpec(BaseModel):
    """Probabilities (0..1) of each injected fault, drawn once per API request."""

    model_config = ConfigDict(extra="forbid")

    p_429: float = Field(0.0, ge=0, le=1, description="rate-limited response with the API's own headers")
    p_500: float = Field(0.0, ge=0, le=1)
    p_502: float = Field(0.0, ge=0, le=1)
    p_503: float = Field(0.0, ge=0, le=1)
    p_slow: float = Field(0.0, ge=0, le=1, description="request is processed, response delayed by slow_seconds")
    p_drop: float = Field(0.0, ge=0, le=1, description="connection closed before any response byte")
    p_truncate: float = Field(0.0, ge=0, le=1, description="connection closed in the middle of the body")
    slow_seconds: float = Field(30.0, ge=0)
    retry_after_seconds: float = Field(1.0, ge=0, description="wait announced by injected 429s")
    seed: int | None = None

    def total(self) -> float:
        return self.p_429 + self.p_500 + self.p_502 + self.p_503 + self.p_slow + self.p_drop + self.p_truncate


class SystemConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: dict[str, Any] = Field(default_factory=dict)
    faults: FaultSpec = Field(default_factory=FaultSpec)
    rate_limit: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class SandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    systems: dict[str, SystemConfig] = Field(default_factory=dict)

    def for_system(self, name: str) -> SystemConfig:
        cfg = self.systems.get(name, SystemConfig())
        if cfg.faults.seed is None:
            cfg = cfg.model_copy(update={"faults": cfg.faults.model_copy(update={"seed": self.seed + PORT_OFFSETS.get(name, 0)})})
        return cfg


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def config_from_mapping(raw: dict | None) -> SandboxConfig:
    """Build a config from the ``sandbox.yaml`` layout (top-level ``faults`` apply to all systems)."""
    raw = dict(raw or {})
    seed = int(raw.pop("seed", 0) or 0)
    default_faults = raw.pop("faults", {}) or {}
    unknown = set(raw) - set(SYSTEMS)
    if unknown:
        raise ValueError(f"sandbox config: unknown top-level keys {sorted(unknown)}; expected seed, faults, {', '.join(SYSTEMS)}")
    systems = {}
    for name in SYSTEMS:
        section = dict(raw.get(name) or {})
        section["faults"] = _merge(default_faults, section.get("faults") or {})
        systems[name] = SystemConfig.model_validate(section)
    return SandboxConfig(seed=seed, systems=systems)


def merge_config(cfg: SandboxConfig, raw: dict | None) -> SandboxConfig:
    """Overlay a ``sandbox.yaml``-shaped mapping (e.g. from ``--faults``) on a config."""
    if not raw:
        return cfg
    base = {"seed": cfg.seed, **{n: s.model_dump(exclude_none=True) for n, s in cfg.systems.items()}}
    raw = dict(raw)
    default_faults = raw.pop("faults", None) or {}
    if "seed" in raw:
        base["seed"] = raw.pop("seed")
    for name in SYSTEMS:
        section = base.setdefault(name, {})
        if default_faults:
            section["faults"] = _merge(section.get("faults", {}), default_faults)
        if name in raw:
            base[name] = _merge(section, raw.pop(name) or {})
    if raw:
        raise ValueError(f"fault spec: unknown keys {sorted(raw)}")
    return config_from_mapping(base)


def parse_fault_spec(spec: str) -> dict:
    """``--faults SPEC``: a YAML/JSON file path, inline YAML/JSON, or the compact form
    ``p_429=0.1,p_503=0.05;yotpo:p_slow=0.2,slow_seconds=3`` (a part without ``system:`` applies
    to all simulators)."""
    spec = spec.strip()
    if not spec:
        return {}
    path = Path(spec)
    if path.suffix in (".yaml", ".yml", ".json") and path.exists():
        return yaml.safe_load(path.read_text()) or {}
    if spec.startswith("{"):
        return yaml.safe_load(spec) or {}
    out: dict = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        system, _, body = part.rpartition(":") if ":" in part.split("=", 1)[0] else ("", "", part)
        target = out.setdefault(system, {}).setdefault("faults", {}) if system else out.setdefault("faults", {})
        for item in filter(None, (i.strip() for i in body.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"fault spec: expected key=value, got {item!r}")
            key = key.strip()
            if key == "seed" and not system:
                out["seed"] = int(value)
                continue
            target[key] = json.loads(value)
    return out


def load_config_file(path: Path) -> dict:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data
