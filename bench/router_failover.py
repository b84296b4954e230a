"""`python -m bench router_failover`: how long each traffic router takes to move clients.

The AWS figures follow from the configured timings (Pulumi.yaml defaults, the
Cloudflare monitor's settings in components/cloudflare_dns.py):

- Cloudflare: the monitor probes every `interval` and a pool leaves the rotation
  after `consecutive_down` failures; the load balancer is a proxy, so there is
  no DNS TTL to wait out.
- Route 53: a health checker probes every `healthCheckIntervalSeconds`, the
  region leaves the latency answers after `healthCheckFailureThreshold`
  failures, then resolvers may keep the old answer for the records' TTL
  (`originRecordTtl`), and the Lambda@Edge router keeps an answer for
  ANSWER_SECONDS more.

Both retry a request whose region refuses at once (Cloudflare on another
origin, CloudFront on the origin group's failover origin), so an outright dead
region costs no failed requests, only slower ones, until it leaves the answers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import table
from components.cloudflare_dns import (
    MONITOR_CONSECUTIVE_DOWN,
    MONITOR_CONSECUTIVE_UP,
    CloudflareLatencyDNSArgs,
)
from components.config import DEFAULTS
from functions.edge_router import ANSWER_SECONDS


@dataclass(frozen=True)
class RouterTimings:
    router: str
    detect_s: float
    """From the first failed probe until the region is out of the answers (worst case)."""
    stale_s: float
    """How much longer a client may still be sent to it (cached answers)."""
    recover_s: float
    """From the region answering again until it is back in the answers."""

    @property
    def failover_s(self) -> float:
        return self.detect_s + self.stale_s


def aws_timings(
    *,
    cloudflare_interval: int = CloudflareLatencyDNSArgs.monitor_interval,
    cloudflare_down: int = MONITOR_CONSECUTIVE_DOWN,
    cloudflare_up: int = MONITOR_CONSECUTIVE_UP,
    route53_interval: int = DEFAULTS["healthCheckIntervalSeconds"],
    route53_threshold: int = DEFAULTS["healthCheckFailureThreshold"],
    record_ttl: int = DEFAULTS["originRecordTtl"],
    answer_s: float = ANSWER_SECONDS,
) -> list[RouterTimings]:
    """Worst-case failover and recovery on AWS with these settings."""
    return [
        RouterTimings(
            "cloudflare",
            detect_s=cloudflare_interval * cloudflare_down,
            stale_s=0,
            recover_s=cloudflare_interval * cloudflare_up,
        ),
        RouterTimings(
            "route53",
            detect_s=route53_interval * route53_threshold,
            stale_s=record_ttl + answer_s,
            recover_s=route53_interval * route53_threshold + record_ttl + answer_s,
        ),
    ]


def aws_rows(timings: list[RouterTimings]) -> list[list[str]]:
    return [
        [
            t.router,
            f"{t.detect_s:.0f} s",
            f"{t.stale_s:.0f} s",
            f"{t.failover_s:.0f} s",
            f"{t.recover_s:.0f} s",
        ]
        for t in timings
    ]


def run() -> None:
    print("On AWS with the configured timings (worst case)")
    print(
        table(
            ["router", "out of the answers", "+ cached answers", "clients moved", "back after"],
            aws_rows(aws_timings()),
        )
    )
    fast = aws_timings(route53_interval=10)[1]
    print(f"route53 with fast health checks (10 s): clients moved after {fast.failover_s:.0f} s")
