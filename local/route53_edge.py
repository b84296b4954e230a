"""The local edge for `trafficRouter: route53`: one CloudFront, the real Lambda@Edge router,
Route 53 latency answers and health checks.

- Health checks: every `interval` each region's `/healthz` is probed *without*
  the origin-verify header (Route 53's checkers cannot send one); a region
  leaves the latency answers after `failure_threshold` failed probes in a row
  and returns after as many good ones.
- Latency answers: for a client's location, the nearest region whose check
  passes (all regions when none does), as Route 53 answers `origin.<domain>`;
  a resolver keeps an answer for `record_ttl`.
- The router: `functions/edge_router.py` itself, one copy of the module per
  client location (each regional edge cache runs its own containers, with its
  own answer cache, its `ANSWER_SECONDS` scaled like the other delays), on the
  origin-request event CloudFront sends (tests/events/cloudfront-origin-request.json).
  If the chosen region refuses (no connection or 5xx), the request goes to the
  origin group's failover origin, which runs the router again.
- CloudFront: one distribution (`DISTRIBUTION_ID` for every region, as the
  stack exports it) with one cache for every viewer, keyed and kept as
  CloudFront does (the path and query as sent; `Cache-Control`); a hit never
  reaches the router or a region, and is answered from the edge location near
  the client. The static site comes from the primary region's bucket (the
  first of its origin group). The API's behaviour allows GET, HEAD and OPTIONS
  only (an origin group serves no other method): anything else is a 403 from
  CloudFront. Its invalidation API purges the one cache for every viewer.

Timings are Route 53's defaults (30 s, 3 failures, 60 s TTL, the router's 5 s)
scaled so that 30 s is `interval`.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from functions import edge_router
from functions.origin import ORIGIN_VERIFY_HEADER
from local.edge import (
    CLIENT_REGION_HEADER,
    SERVED_BY_HEADER,
    BadRequest,
    Distribution,
    Edge,
    RegionState,
    precise_sleep,
)
from local.topology import REGIONS

EVENT = Path(__file__).resolve().parents[1] / "tests" / "events" / "cloudfront-origin-request.json"
DOMAIN = "go.localhost"
ROUTE53_INTERVAL_S = 30
ROUTE53_THRESHOLD = 3
ROUTE53_TTL_S = 60
FAILOVER_STATUSES = {500, 502, 503, 504}
#: The local stand-in for the stack's one CloudFront distribution.
DISTRIBUTION_ID = "LOCAL-GLOBAL"
#: What an origin group serves (the API's cache behaviour allows no more).
ALLOWED_METHODS = {"GET", "HEAD", "OPTIONS"}


class Route53Edge(Edge):
    """Edge whose routing is Route 53 latency records + health checks + the Lambda@Edge router."""

    def __init__(self, *args, failure_threshold: int = ROUTE53_THRESHOLD, **kwargs):
        super().__init__(*args, **kwargs)
        scale = self.interval / ROUTE53_INTERVAL_S
        self.failure_threshold = failure_threshold
        self.record_ttl = ROUTE53_TTL_S * scale
        # A resolver keeps an answer for the TTL, then the router its copy for its own while.
        self.answers_kept_s = self.record_ttl + edge_router.ANSWER_SECONDS * scale
        self.routing = edge_router.routing_name(DOMAIN)
        self._streaks: dict[str, int] = {}
        self._resolver_cache: dict[str, tuple[float, str]] = {}
        self._routers = {region: _router_copy(region, scale) for region in REGIONS}
        self._event = json.loads(EVENT.read_text())

    def distribution_ids(self) -> dict[str, str]:
        """Region -> distribution: the one distribution for every region."""
        return dict.fromkeys(self.regions, DISTRIBUTION_ID)

    # -- Route 53 health checks ---------------------------------------------------

    async def _probe(self, region: RegionState) -> None:
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=max(self.interval * 0.8, 0.05))
        try:
            async with self._session.get(f"{region.url}/healthz", timeout=timeout) as response:
                body = await response.json(content_type=None)
            passed = response.status == 200  # Route 53 also takes 2xx/3xx; /healthz answers 200
            region.status = body.get("status")
            region.error = None if passed else f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
            passed, region.status = False, "unreachable"
            region.error = f"{type(exc).__name__}: {exc}".strip(": ")
        region.probe_ms = (time.perf_counter() - started) * 1000
        first = region.last_probe is None
        region.last_probe = time.time()
        if first:  # a new health check starts from its first result
            region.healthy = passed
            return
        streak = self._streaks.get(region.name, 0)
        streak = (max(streak, 0) + 1) if passed else (min(streak, 0) - 1)
        self._streaks[region.name] = streak
        if region.healthy != passed and abs(streak) >= self.failure_threshold:
            region.healthy = passed
            change = "back in the latency answers" if passed else f"out ({region.error})"
            self.report(f"route53: {region.name} {change}")

    def latency_answer(self, client_region: str) -> str:
        """What a resolver near `client_region` has for the routing name (kept for the TTL)."""
        now = time.monotonic()
        cached = self._resolver_cache.get(client_region)
        if cached and cached[0] > now:
            return cached[1]
        nearest = self.topology.by_latency(client_region)
        healthy = [r for r in nearest if self.regions[r].healthy]
        answer = (healthy or nearest)[0]  # none healthy: Route 53 answers as if all were
        self._resolver_cache[client_region] = (now + self.record_ttl, answer)
        return answer

    # -- CloudFront + the router ----------------------------------------------------

    def _route_with_router(self, client_region: str, failover: bool) -> str:
        event = copy.deepcopy(self._event)
        origin = event["Records"][0]["cf"]["request"]["origin"]["custom"]
        regions = ",".join(self.topology.by_latency(self.topology.primary))
        origin["domainName"] = (
            edge_router.regional_origin(self.topology.primary, self.routing)
            if failover
            else self.routing
        )
        origin["customHeaders"] = {
            ORIGIN_VERIFY_HEADER: [{"key": ORIGIN_VERIFY_HEADER, "value": self.origin_verify}],
            edge_router.REGIONS_HEADER: [{"key": edge_router.REGIONS_HEADER, "value": regions}],
        }
        if failover:
            origin["customHeaders"][edge_router.ROUTE_HEADER] = [
                {"key": edge_router.ROUTE_HEADER, "value": edge_router.FAILOVER_ROUTE}
            ]

        def resolve(name: str):
            answer = self.latency_answer(client_region)
            return edge_router.regional_origin(answer, name), [name], ["127.0.0.1"]

        request = self._routers[client_region].handler(event, None, resolve=resolve)
        return request["origin"]["custom"]["domainName"].split(".", 1)[0]

    async def _serve(self, request: web.BaseRequest) -> web.StreamResponse:
        client_region = request.headers.get(CLIENT_REGION_HEADER, self.topology.primary)
        if client_region not in REGIONS:
            raise BadRequest(f"unknown {CLIENT_REGION_HEADER}")
        distribution = self.distributions[DISTRIBUTION_ID]
        reached = client_region  # what the client's round trip goes to
        if static := self._static_site_answer(self.topology.primary, request):
            response, reached = static, self.topology.primary
            response.headers[SERVED_BY_HEADER] = reached
        elif request.method not in ALLOWED_METHODS:
            response = _method_not_allowed()
            response.headers[SERVED_BY_HEADER] = "none"
        elif cached := self._cached_response(distribution, request):
            response = cached  # from the edge location near the client
        else:
            response, reached = await self._from_api(client_region, request, distribution)
        await precise_sleep(self.topology.rtt_ms(client_region, reached) / 1000)
        return response

    async def _from_api(
        self, client_region: str, request: web.BaseRequest, distribution: Distribution
    ) -> tuple[web.Response, str]:
        """The API origin group: the router's region, then the failover origin's; and which."""
        response, region_name = None, "none"
        for failover in (False, True):
            region_name = self._route_with_router(client_region, failover)
            region = self.regions[region_name]
            response = await self._from_origin(region, request, distribution)
            if response is not None and response.status not in FAILOVER_STATUSES:
                break
        if response is None:
            response, region_name = web.Response(status=502, text="no region answered\n"), "none"
        response.headers[SERVED_BY_HEADER] = region_name
        return response, region_name if region_name in self.regions else client_region

    async def _status(self, request: web.BaseRequest) -> web.Response:
        body = {
            "router": "route53",
            "primary_region": self.topology.primary,
            "health_check_interval_s": self.interval,
            "failure_threshold": self.failure_threshold,
            "record_ttl_s": self.record_ttl,
            "regions": [region.as_json() for region in self.regions.values()],
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})


def _router_copy(location: str, scale: float):
    """A fresh copy of the router module: one regional edge cache's containers."""
    spec = importlib.util.spec_from_file_location(
        f"edge_router_at_{location.replace('-', '_')}", edge_router.__file__
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.ANSWER_SECONDS = edge_router.ANSWER_SECONDS * scale
    return module


def _method_not_allowed() -> web.Response:
    """CloudFront's answer to a method the cache behaviour does not allow."""
    response = web.Response(
        status=403, text="403 Forbidden: this distribution does not allow the request method\n"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
