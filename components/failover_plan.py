"""The failover update while a region is unreachable: which resources it may touch.

After a Datastore failover the program moves writes to the promoted region. A
plain `pulumi up` would also delete the old primary's sync function, its S3
notification and replication configuration, and add a lag alarm there: calls
into the region that is down, so the update would fail. The program is arranged
so that writes never depend on those calls (readers carry no primary region,
each replication configuration is named after its source region, providers ask
STS in the edge region); what is left is to tell Pulumi to leave the
unreachable region alone: `pulumi up --target` with every change of the preview
that touches only reachable regions or nothing regional at all (Cloudflare,
global IAM, the stack's outputs).

Pure: `pulumi preview --json` in, the target URNs out (docs/deploy.md, runbook).
The changes left out are applied by the first full `pulumi up` once the region
is back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Steps that change nothing in the cloud.
NO_CHANGE = frozenset({"same", "read", "refresh", "discard"})
STACK_TYPE = "pulumi:pulumi:Stack"
AWS_PROVIDER_TYPE = "pulumi:providers:aws"


class FailoverBlocked(ValueError):
    """The failover cannot be done without the unreachable region; the message says why."""


@dataclass(frozen=True)
class FailoverTargets:
    targets: list[str]
    """URNs for `pulumi up --target`, in preview order, the stack first."""
    deferred: list[tuple[str, str]]
    """(operation, URN) left for the first full `pulumi up` after the region is back."""


def _provider_urn(reference: str) -> str:
    """`<urn>::<id>` -> `<urn>` (URNs contain `::` themselves; the id never does)."""
    return reference.rsplit("::", 1)[0]


def urn_type(urn: str) -> str:
    """urn:pulumi:<stack>::<project>::<parent types$>type::<name> -> type."""
    parts = urn.split("::")
    return parts[2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


def _states(step: dict) -> list[dict]:
    return [state for state in (step.get("oldState"), step.get("newState")) if state]


def provider_regions(steps: list[dict], exported: dict | None = None) -> dict[str, str]:
    """Every AWS provider's URN -> its region, from the provider steps themselves and, if
    given, the stack's state (`pulumi stack export`), which lists every provider."""
    states = [s for step in steps for s in _states(step)]
    states += ((exported or {}).get("deployment") or {}).get("resources") or []
    return {
        state["urn"]: (state.get("inputs") or {}).get("region", "")
        for state in states
        if isinstance(state, dict) and state.get("type") == AWS_PROVIDER_TYPE and "urn" in state
    }


def regions_touched(step: dict, providers: dict[str, str]) -> set[str]:
    """The AWS regions a step calls into (empty: Cloudflare, random, components, the stack)."""
    touched = set()
    for state in _states(step):
        if state.get("type") == AWS_PROVIDER_TYPE:
            touched.add((state.get("inputs") or {}).get("region", ""))
            continue
        reference = state.get("provider") or step.get("provider") or ""
        urn = _provider_urn(reference)
        if reference and urn_type(urn) == AWS_PROVIDER_TYPE:
            if urn not in providers:
                raise FailoverBlocked(f"{step['urn']}: its provider {urn} is not in the preview")
            touched.add(providers[urn])
    return touched


def _orphaned_creates(created: dict[str, dict], chosen: set[str]) -> list[str]:
    """Targeted creates whose parent or dependency would not be created: Pulumi refuses."""
    orphaned = []
    for urn, state in created.items():
        needs = [state.get("parent"), *(state.get("dependencies") or [])]
        missing = sorted({n for n in needs if n in created and n not in chosen})
        if urn in chosen and missing:
            orphaned.append(f"create {urn} needs {missing}, which would not be created")
    return orphaned


def failover_targets(
    preview: dict, unreachable: Iterable[str], exported: dict | None = None
) -> FailoverTargets:
    """What a failover update may change while `unreachable` regions are down.

    `exported` (optional): `pulumi stack export`, for the regions of providers
    the preview does not show.

    Raises FailoverBlocked when a needed change cannot be split from the
    unreachable region (a replacement moving between regions), or when a target
    would be created under or after something that is left out (Pulumi refuses
    such a targeted update).
    """
    down = set(unreachable)
    steps = preview.get("steps") if isinstance(preview, dict) else None
    if not isinstance(steps, list) or not all(
        isinstance(s, dict) and isinstance(s.get("op"), str) and isinstance(s.get("urn"), str)
        for s in steps
    ):
        raise FailoverBlocked("not the output of `pulumi preview --json`: no steps with op and urn")
    providers = provider_regions(steps, exported)
    unknown = down - set(providers.values())
    if unknown:
        raise FailoverBlocked(f"{sorted(unknown)}: no provider of this stack is in that region")

    targets: list[str] = []
    deferred: list[tuple[str, str]] = []
    blocked: list[str] = []
    created: dict[str, dict] = {}
    for step in steps:
        op, urn = step["op"], step["urn"]
        state = step.get("newState") or step.get("oldState") or {}
        if state.get("type") == STACK_TYPE:
            # The stack's outputs (index_s3_uri, primary_region) are what CI publishes by.
            targets.insert(0, urn)
            continue
        if op in NO_CHANGE:
            continue
        touched = regions_touched(step, providers)
        if touched & down and touched - down:
            blocked.append(f"{op} {urn} spans {sorted(touched)}")
        elif touched & down:
            deferred.append((op, urn))
        elif urn not in targets:
            targets.append(urn)
        if op in ("create", "create-replacement") and step.get("newState"):
            created[urn] = step["newState"]

    blocked.extend(_orphaned_creates(created, set(targets)))
    if blocked:
        raise FailoverBlocked(
            "the failover update cannot leave "
            + ", ".join(sorted(down))
            + " alone:\n  "
            + "\n  ".join(blocked)
        )
    return FailoverTargets(targets, deferred)
