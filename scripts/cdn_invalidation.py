"""Invalidate paths on every region's CloudFront distribution and wait until they complete.

One CreateInvalidation per distribution (all paths in one batch; regions that
share a distribution, as every region does with the Route 53 router, share
its one invalidation), then
GetInvalidation is polled until each reports `Completed`: only then does every
edge location answer from the origin. A distribution that already has as many
invalidations in progress as CloudFront allows, a throttled call or a network
error is retried until the deadline; a refusal (no such distribution, access
denied) is final for that distribution.
The client is boto3's (`AWS_ENDPOINT_URL_CLOUDFRONT` points it elsewhere, e.g.
at the local edge).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

#: CloudFront's answer while the distribution has too many invalidations in progress.
BUSY = "TooManyInvalidationsInProgress"


@dataclass
class DistributionState:
    regions: tuple[str, ...]
    """The regions whose clients go through the distribution."""
    distribution_id: str
    invalidation_id: str | None = None
    status: str | None = None
    completed_after: float | None = None
    error: str | None = None
    refused: bool = False

    @property
    def completed(self) -> bool:
        return self.completed_after is not None


def cloudfront_client():
    import boto3  # noqa: PLC0415 - only publishing needs it

    return boto3.client("cloudfront", region_name="us-east-1")  # a global service


def invalidate_everywhere(
    client,
    distributions: dict[str, str],
    paths: tuple[str, ...],
    *,
    reference: str,
    timeout: float,
    interval: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[DistributionState]:
    """Invalidate `paths` on every distribution (region -> id; each distinct one once) and
    wait for all to complete.

    `reference` names the publish (CloudFront's CallerReference gets a random
    suffix, so a re-run invalidates again). Never raises for a CloudFront error:
    it is recorded in the distribution's state.
    """
    regions_of: dict[str, list[str]] = {}
    for region, dist in distributions.items():
        regions_of.setdefault(dist, []).append(region)
    states = [DistributionState(tuple(regions), dist) for dist, regions in regions_of.items()]
    if not paths:
        for state in states:
            state.status, state.completed_after = "nothing to invalidate", 0.0
        return states
    started = clock()
    deadline = started + timeout
    while True:
        for state in states:
            if state.completed or state.refused:
                continue
            try:
                _advance(client, state, paths, f"{reference}-{secrets.token_hex(4)}")
            except (BotoCoreError, ClientError) as exc:
                state.error, state.refused = str(exc), _is_refusal(exc)
                continue
            state.error = None
            if state.status and state.status.lower() == "completed":
                state.completed_after = clock() - started
        if all(s.completed or s.refused for s in states) or clock() >= deadline:
            return states
        sleep(min(interval, max(0.0, deadline - clock())))


def _advance(client, state: DistributionState, paths: tuple[str, ...], caller_reference: str):
    if state.invalidation_id is None:
        try:
            response = client.create_invalidation(
                DistributionId=state.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": list(paths)},
                    "CallerReference": caller_reference,
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != BUSY:
                raise
            state.status = "waiting: too many invalidations in progress"
            return
    else:
        response = client.get_invalidation(
            DistributionId=state.distribution_id, Id=state.invalidation_id
        )
    invalidation = response["Invalidation"]
    state.invalidation_id, state.status = invalidation["Id"], invalidation["Status"]


def _is_refusal(exc: Exception) -> bool:
    """A client error that asking again will not change (throttling aside)."""
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    code = exc.response.get("Error", {}).get("Code", "")
    return 400 <= status < 500 and status != 429 and "Throttl" not in code


def report(states: list[DistributionState], paths: tuple[str, ...]) -> str:
    shown = ", ".join(paths[:5]) + (f" (+{len(paths) - 5} more)" if len(paths) > 5 else "")
    lines = [f"invalidating {len(paths)} path(s) on every CDN: {shown or 'none'}"]
    for s in states:
        result = f"completed after {s.completed_after:.1f} s" if s.completed else "NOT COMPLETED"
        detail = s.error or s.status or ""
        lines.append(
            f"  {', '.join(s.regions):<15} {s.distribution_id:<16} {s.invalidation_id or '-':<16} "
            f"{result}  {detail}".rstrip()
        )
    return "\n".join(lines)
