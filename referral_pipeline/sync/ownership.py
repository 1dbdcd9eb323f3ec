"""Field ownership (product §8.1): which fields of a destination object the pipeline may write.

``data/field_ownership.yaml`` lists, per destination object (``yotpo.customers``) and field, its
``owner`` and ``policy``: ``always`` (sent whenever our value changes), ``if_empty`` (sent only
while the destination does not have the record yet, i.e. on the first accepted send), ``never``
(not sent). ``clear: true`` lets a NULL be sent (clearing the field); otherwise NULLs are left out.
A field the mapper produces but the file does not list is never sent.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "field_ownership.yaml"
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class FieldRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: str
    policy: Literal["always", "if_empty", "never"]
    clear: bool = False

    @model_validator(mode="after")
    def _check(self) -> "FieldRule":
        if self.owner != "pipeline" and self.policy != "never":
            raise ValueError(f"a field owned by {self.owner!r} must have policy 'never'")
        return self


class ObjectOwnership(BaseModel):
    """The rules of one destination object; field order is the file's order."""

    name: str
    fields: dict[str, FieldRule]

    def by_policy(self, policy: str) -> list[str]:
        return [f for f, rule in self.fields.items() if rule.policy == policy]

    @property
    def sendable(self) -> list[str]:
        return [f for f, rule in self.fields.items() if rule.policy != "never"]

    @property
    def clearable(self) -> frozenset[str]:
        return frozenset(f for f, rule in self.fields.items() if rule.clear)

    def select(self, row: dict, is_new: bool) -> dict:
        """The fields of ``row`` to send: ``always`` fields, ``if_empty`` fields only for a record the
        destination has not accepted yet; NULLs only where clearing is intended."""
        out = {}
        for name, rule in self.fields.items():
            if rule.policy == "never" or (rule.policy == "if_empty" and not is_new) or name not in row:
                continue
            value = row[name]
            if value is None and not rule.clear:
                continue
            out[name] = value
        return out


class FieldOwnership(BaseModel):
    objects: dict[str, ObjectOwnership]

    def for_object(self, name: str) -> ObjectOwnership:
        try:
            return self.objects[name]
        except KeyError:
            raise KeyError(f"field ownership: no entry for {name!r}") from None


def parse_ownership(raw: dict) -> FieldOwnership:
    objects = {}
    for name, fields in (raw or {}).items():
        for field in fields:
            if not FIELD_NAME.match(field):
                raise ValueError(f"field ownership {name}: invalid field name {field!r}")
        objects[name] = ObjectOwnership(name=name, fields={k: FieldRule.model_validate(v) for k, v in fields.items()})
    return FieldOwnership(objects=objects)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> FieldOwnership:
    return parse_ownership(yaml.safe_load(Path(path).read_text()))


def load_ownership(path: str | Path | None = None) -> FieldOwnership:
    p = Path(path or os.environ.get("REFERRAL_FIELD_OWNERSHIP") or DEFAULT_PATH)
    return _load(str(p), p.stat().st_mtime)
