"""What every validator reads: a stack's resources as plain data, and the stack's facts.

Validators are pure functions `(Stack) -> list[str]` (one message per violation,
starting with the offending resource's URN). They run in two places:

- `pulumi preview|up --policy-pack policy`: the pack turns the engine's
  resources (wire property names, unknowns during preview) into a `Stack`;
- `make test`: tests/infra turns the mocked deployment's records into the very
  same engine resources and runs the pack's policies on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StackFacts:
    """What the stack's configuration says (the stack file, read by the pack)."""

    stack: str
    account_id: str
    primary_region: str
    """The region that takes writes now (golinks:primaryRegion)."""
    public_hostname: str
    """The service's hostname (golinks:domain)."""
    github_repository: str
    """owner/repository, or the immutable owner@id/repository@id form (golinks:githubRepository)."""
    disposable: bool = False
    """May be destroyed and re-created at will (golinks:disposable; absent: False)."""
    traffic_router: str = "cloudflare"
    """cloudflare or route53 (golinks:trafficRouter; absent: cloudflare)."""
    link_store: str = "elasticache"
    """elasticache or dynamodb (golinks:linkStore; absent: elasticache)."""


@dataclass
class Resource:
    """One resource: its properties by their Python SDK names (snake_case)."""

    type: str
    urn: str
    name: str
    props: dict
    region: str | None = None
    """The region of its AWS provider (None for non-AWS resources)."""
    dependencies: list[str] = field(default_factory=list)
    """URNs of the resources it depends on."""
    protect: bool = False
    ignore_changes: tuple[str, ...] = ()
    """Properties (Python SDK names) whose changes the engine ignores."""

    def __getitem__(self, key: str):
        return self.props.get(key)

    def policy_document(self, key: str = "policy") -> dict:
        value = self.props.get(key)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class Stack:
    facts: StackFacts
    resources: list[Resource]

    @property
    def stack(self) -> str:
        return self.facts.stack

    @property
    def account_id(self) -> str:
        return self.facts.account_id

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_]


def violation(resource: Resource, message: str) -> str:
    return f"{resource.urn}: {message}"


def split_violation(message: str) -> tuple[str | None, str]:
    """("urn", "message") from a validator's line; a stack-wide one has no URN."""
    if message.startswith("urn:pulumi:") and ": " in message:
        urn, text = message.split(": ", 1)
        return urn, text
    return None, message


def as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def statements(document: dict) -> Iterable[dict]:
    return as_list(document.get("Statement", []))
