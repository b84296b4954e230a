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

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.global_latency import _wait as wait_for
from bench.report import table
from bench.summary import at_most, record
from components.cloudflare_dns import (
    MONITOR_CONSECUTIVE_DOWN,
    MONITOR_CONSECUTIVE_UP,
    CloudflareLatencyDNSArgs,
)
from components.config import DEFAULTS
from functions.edge_router import ANSWER_SECONDS
from local.edge import CLIENT_REGION_HEADER, SERVED_BY_HEADER
from local.stack import LocalStack
from local.topology import Topology

#: Local drills run every router timing 60x faster: Cloudflare's 60 s monitor takes 1 s,
#: Route 53's 30 s checks 0.5 s (its TTL and the router's answer cache scale with them).
TIME_SCALE = 1 / 60
DRILL_REGION = "us-west-2"
FIRST_REQUEST = "first request after the kill (served elsewhere)"
#: A local drill may take up to 10% longer than the configured worst case: the
#: probes' own time and the drill's polling are not scaled down with the timings.
LOCAL_SLACK = 1.1


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


def local_drill(router: str) -> dict[str, float]:
    """Kill DRILL_REGION's functions, then restart them; seconds until each step."""
    interval = (
        CloudflareLatencyDNSArgs.monitor_interval
        if router == "cloudflare"
        else DEFAULTS["healthCheckIntervalSeconds"]
    ) * TIME_SCALE
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-{router}-") as tmp,
        LocalStack(
            Path(tmp),
            topology=Topology(scale=1.0),
            monitor_interval=interval,
            edge_port=0,
            cache_seconds=0,
            router=router,
        ) as stack,
    ):

        def served_by() -> str:
            response = requests.get(
                f"{stack.endpoints.edge_url}/docs",
                headers={CLIENT_REGION_HEADER: DRILL_REGION},
                allow_redirects=False,
                timeout=10,
            )
            return (
                response.headers.get(SERVED_BY_HEADER, "none")
                if response.ok or response.is_redirect
                else "error"
            )

        def healthy() -> bool:
            return stack.edge.regions[DRILL_REGION].healthy

        killed = time.perf_counter()
        stack.kill_region(DRILL_REGION)
        first = served_by()
        answered = time.perf_counter() - killed
        out = wait_for(lambda: not healthy()) - killed
        # Route 53: resolvers still hold the old answer for the TTL (requests meanwhile
        # reach the dead region and go on to the failover origin).
        moved = (
            wait_for(lambda: stack.edge.latency_answer(DRILL_REGION) != DRILL_REGION) - killed
            if router == "route53"
            else out
        )
        restarted = time.perf_counter()
        stack.restart_region(DRILL_REGION)
        back = wait_for(lambda: served_by() == DRILL_REGION) - restarted
    return {
        FIRST_REQUEST: answered if first not in ("error", DRILL_REGION) else float("nan"),
        "region out of the answers": out,
        "clients sent elsewhere directly (no retry)": moved,
        "clients back after restart": back,
    }


def run() -> None:
    drills = {router: local_drill(router) for router in ("cloudflare", "route53")}
    print(
        f"Local drill ({DRILL_REGION}'s functions killed, then restarted), every router "
        f"timing {1 / TIME_SCALE:.0f}x faster; in brackets what that is at AWS speed"
    )

    def shown(router: str, measure: str) -> str:
        seconds = drills[router][measure]
        if measure == FIRST_REQUEST:  # a round trip to the next region: real time
            return f"{seconds * 1000:.0f} ms"
        return f"{seconds * 1000:.0f} ms ({seconds / TIME_SCALE:.0f} s)"

    rows = [[m, *(shown(r, m) for r in ("cloudflare", "route53"))] for m in drills["cloudflare"]]
    print(table(["measure", "cloudflare", "route53"], rows))
    print()
    print("On AWS with the configured timings (worst case)")
    print(
        table(
            ["router", "out of the answers", "+ cached answers", "clients moved", "back after"],
            aws_rows(aws_timings()),
        )
    )
    fast = aws_timings(route53_interval=10)[1]
    print(f"route53 with fast health checks (10 s): clients moved after {fast.failover_s:.0f} s")
    _record(drills, aws_timings(), fast)


def _record(drills: dict, aws: list[RouterTimings], fast: RouterTimings) -> None:
    """The summary's rows: local drills against the configured worst case, scaled alike."""
    for configured in aws:
        router, drill = configured.router, drills[configured.router]
        first = drill[FIRST_REQUEST]
        record(
            "a region dies: first request (local)",
            router,
            f"{first * 1000:.0f} ms, served by the next region",
            target="answered",
            ok=not math.isnan(first),  # NaN: an error, or the dead region answered
        )
        for measure, seconds, limit in (
            ("a region dies: out of the answers", drill["region out of the answers"], "detect_s"),
            (
                "a region dies: clients sent elsewhere directly",
                drill["clients sent elsewhere directly (no retry)"],
                "failover_s",
            ),
        ):
            worst = getattr(configured, limit) * TIME_SCALE
            ratio, target, ok = at_most(seconds / worst, LOCAL_SLACK)
            record(
                f"{measure} (local, {1 / TIME_SCALE:.0f}x faster)",
                router,
                f"{seconds * 1000:.0f} ms vs configured worst {worst * 1000:.0f} ms",
                ratio,
                target=target,
                ok=ok,
            )
        back = drill["clients back after restart"]
        record(
            f"a region returns: clients back (local, {1 / TIME_SCALE:.0f}x faster)",
            router,
            f"{back * 1000:.0f} ms (start-up included) vs configured "
            f"{configured.recover_s * TIME_SCALE * 1000:.0f} ms",
            back / (configured.recover_s * TIME_SCALE),
        )
        fast_checks = f"; {fast.failover_s:.0f} s with 10 s checks" if router == fast.router else ""
        record(
            "worst-case failover on AWS (configured timings)",
            router,
            f"{configured.failover_s:.0f} s ({configured.detect_s:.0f} s to detect "
            f"+ {configured.stale_s:.0f} s cached answers){fast_checks}",
        )
